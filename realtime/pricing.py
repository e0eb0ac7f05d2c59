"""Prices of the realtime models, in one place, and the cost of a usage total.

USD per 1 million tokens, one row per realtime model the app offers (``realtime.settings.MODELS``,
a test keeps them in step). The gpt-realtime-2 / 2.1 / 2.1-mini / 1.5 rows are the figures researched
for issue 9 as of ``PRICES_AS_OF`` (gpt-realtime-2's audio rates match OpenAI's release note for it);
the gpt-realtime and gpt-realtime-mini rows are OpenAI's pricing page as checked on 2025-10-06.
Prices change: update ``PRICES_AS_OF`` with the table. Dated snapshots of a model
(``gpt-realtime-2025-08-28``) are priced as their family. The local engine is free. A model not in
the table has no price (``None``): the page says "price unknown", never $0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .metrics import UsageTotals

__all__ = ["PRICES", "PRICES_AS_OF", "ModelPrice", "estimate_cost", "price_for"]

PRICES_AS_OF = "2026-11-30"


@dataclass(frozen=True)
class ModelPrice:
    """USD per 1M tokens."""

    text_in: float
    text_cached_in: float
    text_out: float
    audio_in: float
    audio_cached_in: float
    audio_out: float
    image_in: float = 0.0
    image_cached_in: float = 0.0


PRICES: dict[str, ModelPrice] = {
    #                       text: in, cached, out; audio: in, cached, out; image: in, cached
    "gpt-realtime-2.1": ModelPrice(4.00, 0.40, 24.00, 32.00, 0.40, 64.00, 5.00, 0.50),
    "gpt-realtime-2.1-mini": ModelPrice(0.60, 0.06, 2.40, 10.00, 0.30, 20.00, 0.80, 0.08),
    "gpt-realtime-2": ModelPrice(4.00, 0.40, 24.00, 32.00, 0.40, 64.00, 5.00, 0.50),
    "gpt-realtime-1.5": ModelPrice(4.00, 0.40, 16.00, 32.00, 0.40, 64.00, 5.00, 0.50),
    "gpt-realtime": ModelPrice(4.00, 0.40, 16.00, 32.00, 0.40, 64.00, 5.00, 0.50),
    "gpt-realtime-mini": ModelPrice(0.60, 0.06, 2.40, 10.00, 0.30, 20.00, 0.80, 0.08),
}

_DATED = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def price_for(model: str) -> ModelPrice | None:
    """The price of ``model`` (a dated snapshot falls back to its family), or None if unknown."""
    model = (model or "").strip().lower()
    if model in PRICES:
        return PRICES[model]
    return PRICES.get(_DATED.sub("", model))


def estimate_cost(usage: UsageTotals, model: str) -> float:
    """Estimated USD for ``usage`` on ``model``. Cached input tokens are part of the input counts
    and billed at the cached rate. An unknown model (or the local engine) costs 0.0: check
    ``price_for(model)`` to tell "free" from "unknown"."""
    price = price_for(model)
    if price is None:
        return 0.0
    per = 1_000_000.0
    text_fresh = max(usage.input_text - usage.cached_text, 0)
    audio_fresh = max(usage.input_audio - usage.cached_audio, 0)
    image_fresh = max(usage.input_image - usage.cached_image, 0)
    return (
        text_fresh * price.text_in
        + usage.cached_text * price.text_cached_in
        + audio_fresh * price.audio_in
        + usage.cached_audio * price.audio_cached_in
        + image_fresh * price.image_in
        + usage.cached_image * price.image_cached_in
        + usage.output_text * price.text_out
        + usage.output_audio * price.audio_out
    ) / per
