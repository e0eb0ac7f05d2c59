"""Expectations that turn a replay into a regression test of a voice agent (pure).

The file is JSON: for each user turn, numbered from 1 as the report shows them, what every replayed
setup's reply must or must not contain (case-insensitive) and how long the first audio (else text)
may take::

    {"turns": {"1": {"contains": ["Alpha here"], "max_latency_ms": 2000},
               "3": {"not_contains": ["sorry"]}}}

The original conversation is not checked: it is what the setups are compared with.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from realtime.replay.model import Comparison

__all__ = ["Expectation", "ExpectationError", "check", "parse_expectations"]


class ExpectationError(ValueError):
    """The expectations file cannot be used; the message says where."""


@dataclass(frozen=True)
class Expectation:
    turn: int  # 1-based
    contains: tuple[str, ...] = ()
    not_contains: tuple[str, ...] = ()
    max_latency_ms: float | None = None


def _strings(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ExpectationError(f"{where} must be a string or a list of strings.")


def parse_expectations(text: str) -> tuple[Expectation, ...]:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ExpectationError(f"The expectations file is not valid JSON: {exc}.") from None
    turns = doc.get("turns") if isinstance(doc, Mapping) else None
    if not isinstance(turns, Mapping):
        raise ExpectationError('The expectations file must be a JSON object with a "turns" object.')
    found = []
    for key, spec in turns.items():
        if not (isinstance(key, str) and key.isdigit() and int(key) >= 1):
            raise ExpectationError(f"Turn {key!r}: turns are numbered from 1.")
        if not isinstance(spec, Mapping):
            raise ExpectationError(f"Turn {key}: its expectations must be an object.")
        unknown = set(spec) - {"contains", "not_contains", "max_latency_ms"}
        if unknown:
            raise ExpectationError(f"Turn {key}: unknown expectation {sorted(unknown)[0]!r}.")
        limit = spec.get("max_latency_ms")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, float)) or limit <= 0):
            raise ExpectationError(f"Turn {key}: max_latency_ms must be a positive number.")
        found.append(
            Expectation(
                int(key),
                _strings(spec.get("contains"), f"Turn {key}: contains"),
                _strings(spec.get("not_contains"), f"Turn {key}: not_contains"),
                None if limit is None else float(limit),
            )
        )
    return tuple(sorted(found, key=lambda e: e.turn))


def check(comparison: Comparison, expectations: tuple[Expectation, ...]) -> tuple[str, ...]:
    """One sentence per expectation a replayed setup did not meet."""
    failures: list[str] = []
    for run in comparison.runs[1:]:
        by_turn = {r.turn: r for r in run.results}
        for exp in expectations:
            where = f"{run.label}, turn {exp.turn}"
            if exp.turn > len(comparison.turns):
                failures.append(f"{where}: the conversation has only {len(comparison.turns)} turns.")
                continue
            result = by_turn.get(exp.turn - 1)
            if result is None:
                failures.append(f"{where}: not replayed ({run.error or 'no reply'}).")
                continue
            reply = result.text.casefold()
            failures += [
                f"{where}: the reply does not contain {w!r}." for w in exp.contains if w.casefold() not in reply
            ]
            failures += [f"{where}: the reply contains {w!r}." for w in exp.not_contains if w.casefold() in reply]
            latency = result.latency_ms
            if exp.max_latency_ms is not None and (latency is None or latency > exp.max_latency_ms):
                took = "no reply" if latency is None else f"{latency:.0f} ms"
                failures.append(f"{where}: latency {took}, over the {exp.max_latency_ms:.0f} ms allowed.")
    return tuple(failures)
