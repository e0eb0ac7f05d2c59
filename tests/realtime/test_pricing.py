"""Prices: one dated row for every model the app offers; snapshots priced as their family; unknown is None."""

from __future__ import annotations

import datetime as dt

import pytest

from realtime.metrics import UsageTotals
from realtime.pricing import PRICES, PRICES_AS_OF, ModelPrice, estimate_cost, price_for
from realtime.settings import DEFAULT_MODEL, MODELS


def test_every_offered_model_has_a_price():
    missing = [m for m in MODELS if price_for(m) is None]
    assert missing == []
    assert price_for(DEFAULT_MODEL) is PRICES["gpt-realtime-2.1"]


def test_the_table_is_dated():
    assert dt.date.fromisoformat(PRICES_AS_OF) >= dt.date(2026, 1, 1)


@pytest.mark.parametrize(
    "model, family",
    [
        ("gpt-realtime-2025-08-28", "gpt-realtime"),
        ("gpt-realtime-mini-2025-10-06", "gpt-realtime-mini"),
        ("gpt-realtime-mini-2025-12-15", "gpt-realtime-mini"),
        ("gpt-realtime-2.1-2026-05-07", "gpt-realtime-2.1"),
        ("GPT-Realtime-2", "gpt-realtime-2"),
    ],
)
def test_dated_snapshots_are_priced_as_their_family(model, family):
    assert price_for(model) is PRICES[family]


@pytest.mark.parametrize("model", ["", "my-own-model", "gpt-4o-realtime-preview", "gpt-audio-1.5", "gpt-realtime-9"])
def test_an_unknown_model_has_no_price(model):
    assert price_for(model) is None


def test_the_figures():
    flagship = ModelPrice(4.00, 0.40, 24.00, 32.00, 0.40, 64.00, 5.00, 0.50)
    assert PRICES["gpt-realtime-2"] == PRICES["gpt-realtime-2.1"] == flagship
    assert PRICES["gpt-realtime-2.1-mini"] == ModelPrice(0.60, 0.06, 2.40, 10.00, 0.30, 20.00, 0.80, 0.08)
    assert PRICES["gpt-realtime-1.5"] == ModelPrice(4.00, 0.40, 16.00, 32.00, 0.40, 64.00, 5.00, 0.50)
    assert PRICES["gpt-realtime"] == ModelPrice(4.00, 0.40, 16.00, 32.00, 0.40, 64.00, 5.00, 0.50)
    assert PRICES["gpt-realtime-mini"] == ModelPrice(0.60, 0.06, 2.40, 10.00, 0.30, 20.00, 0.80, 0.08)
    million = 1_000_000
    assert estimate_cost(UsageTotals(output_text=million), "gpt-realtime-2.1") == pytest.approx(24.0)
    assert estimate_cost(UsageTotals(input_image=million, cached_image=million), "gpt-realtime-2") == pytest.approx(0.5)
    assert estimate_cost(UsageTotals(input_audio=million), "gpt-realtime-2.1-mini") == pytest.approx(10.0)
