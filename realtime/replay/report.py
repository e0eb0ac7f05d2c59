"""What a replay comparison reports: per-setup totals, a lossless JSON form, a word diff, and one
self-contained HTML page (pure functions, no IO).

The HTML page is meant to be saved and opened from disk or mailed around, so it carries everything
inline (CSS, images and audio as data: URLs) and escapes every user-provided string.
"""

from __future__ import annotations

import base64
import binascii
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from difflib import SequenceMatcher
from html import escape
from typing import Any, TypeVar

from realtime.audio_tape import CLIP_RATE
from realtime.pricing import price_for
from realtime.voice_codec import wav_bytes

from .model import Comparison, ReplayTurn, ReplyResult, SetupRun

__all__ = ["FORMAT", "VERSION", "Totals", "from_json", "to_html", "to_json", "totals", "word_diff"]

FORMAT = "realtime-studio-comparison"
VERSION = 1
NOT_REPLAYED = "not replayed (the run stopped before this turn)"

_T = TypeVar("_T")


@dataclass(frozen=True)
class Totals:
    """One setup's run summed up, for the totals table."""

    turns: int
    failed: int  # results with an error, plus turns the run never reached
    median_latency_ms: float | None  # median rather than mean: one slow turn should not dominate
    input_tokens: int
    output_tokens: int
    cost_usd: float
    tool_calls: int


def totals(run: SetupRun, turn_count: int) -> Totals:
    """Sums over ``run``'s results; a turn with no result counts as failed (the user got no answer)."""
    answered = {r.turn for r in run.results}
    latencies = [r.latency_ms for r in run.results if r.latency_ms is not None]
    return Totals(
        turns=turn_count,
        failed=sum(r.error is not None for r in run.results) + sum(i not in answered for i in range(turn_count)),
        median_latency_ms=statistics.median(latencies) if latencies else None,
        input_tokens=sum(r.input_tokens for r in run.results),
        output_tokens=sum(r.output_tokens for r in run.results),
        cost_usd=sum(r.cost_usd for r in run.results),
        tool_calls=sum(len(r.tool_calls) for r in run.results),
    )


# --- JSON -------------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _fields(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def to_json(comparison: Comparison) -> dict[str, Any]:
    """A JSON-able dict (bytes as base64) that ``from_json`` turns back into an equal ``Comparison``."""
    turns = [
        {**_fields(t), "images": [_b64(i) for i in t.images], "audio": None if t.audio is None else _b64(t.audio)}
        for t in comparison.turns
    ]
    runs = [
        {
            **_fields(run),
            "results": [
                {
                    **_fields(r),
                    "audio_wav": None if r.audio_wav is None else _b64(r.audio_wav),
                    "tool_calls": list(r.tool_calls),
                }
                for r in run.results
            ],
        }
        for run in comparison.runs
    ]
    return {"format": FORMAT, "version": VERSION, **_fields(comparison), "turns": turns, "runs": runs}


def _get(obj: Mapping[str, Any], key: str, where: str, kind: type[_T]) -> _T:
    """``obj[key]`` checked to be a ``kind``, else a ValueError naming where (a file may be hand-edited)."""
    if key not in obj:
        raise ValueError(f"{where}: missing key {key!r}")
    value = obj[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ValueError(f"{where}.{key}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def _opt(obj: Mapping[str, Any], key: str, where: str, kind: type[_T]) -> _T | None:
    return None if key in obj and obj[key] is None else _get(obj, key, where, kind)


def _items(obj: Mapping[str, Any], key: str, where: str, kind: type[_T]) -> list[_T]:
    values = _get(obj, key, where, list)
    for i, value in enumerate(values):
        if not isinstance(value, kind):
            raise ValueError(f"{where}.{key}[{i}]: expected {kind.__name__}, got {type(value).__name__}")
    return values


def _unb64(text: str, where: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{where}: not valid base64 ({exc})") from None


def _turn(obj: Mapping[str, Any], where: str) -> ReplayTurn:
    kind = _get(obj, "kind", where, str)
    if kind not in ("typed", "spoken"):
        raise ValueError(f"{where}.kind: expected 'typed' or 'spoken', got {kind!r}")
    images = _items(obj, "images", where, str)
    audio = _opt(obj, "audio", where, str) if "audio" in obj else None  # files from before voice was kept have none
    return ReplayTurn(
        index=_get(obj, "index", where, int),
        kind="typed" if kind == "typed" else "spoken",
        text=_get(obj, "text", where, str),
        images=tuple(_unb64(s, f"{where}.images[{i}]") for i, s in enumerate(images)),
        audio=None if audio is None else _unb64(audio, f"{where}.audio"),
    )


def _result(obj: Mapping[str, Any], where: str) -> ReplyResult:
    audio = _opt(obj, "audio_wav", where, str)
    return ReplyResult(
        turn=_get(obj, "turn", where, int),
        text=_get(obj, "text", where, str),
        audio_wav=None if audio is None else _unb64(audio, f"{where}.audio_wav"),
        first_audio_ms=_opt(obj, "first_audio_ms", where, float),
        first_text_ms=_opt(obj, "first_text_ms", where, float),
        input_tokens=_get(obj, "input_tokens", where, int),
        output_tokens=_get(obj, "output_tokens", where, int),
        cost_usd=_get(obj, "cost_usd", where, float),
        tool_calls=tuple(_items(obj, "tool_calls", where, str)),
        error=_opt(obj, "error", where, str),
    )


def _run(obj: Mapping[str, Any], where: str) -> SetupRun:
    results = _items(obj, "results", where, dict)
    return SetupRun(
        name=_get(obj, "name", where, str),
        label=_get(obj, "label", where, str),
        voice=_get(obj, "voice", where, str),
        model=_get(obj, "model", where, str),
        backend=_get(obj, "backend", where, str),
        results=tuple(_result(r, f"{where}.results[{i}]") for i, r in enumerate(results)),
        error=_opt(obj, "error", where, str),
        seconds=_get(obj, "seconds", where, float),
    )


def from_json(data: Mapping[str, Any]) -> Comparison:
    """The ``Comparison`` saved by ``to_json``; anything else raises ValueError saying what is wrong."""
    if not isinstance(data, Mapping):
        raise ValueError(f"a comparison must be a JSON object, got {type(data).__name__}")
    if data.get("format") != FORMAT:
        raise ValueError(f"not a Realtime Studio comparison: format is {data.get('format')!r}, expected {FORMAT!r}")
    version = data.get("version")
    if isinstance(version, bool) or version != VERSION:
        raise ValueError(f"unsupported comparison version {version!r} (this app reads version {VERSION})")
    turns, runs = _items(data, "turns", "comparison", dict), _items(data, "runs", "comparison", dict)
    return Comparison(
        conversation_id=_get(data, "conversation_id", "comparison", str),
        title=_get(data, "title", "comparison", str),
        turns=tuple(_turn(t, f"turns[{i}]") for i, t in enumerate(turns)),
        runs=tuple(_run(r, f"runs[{i}]") for i, r in enumerate(runs)),
        created_at=_get(data, "created_at", "comparison", float),
    )


# --- diff and HTML ----------------------------------------------------------------------------------


def word_diff(a: str, b: str) -> list[tuple[str, str]]:
    """How reply ``b`` differs from ``a``, word by word (spacing changes are not differences)."""
    old, new = a.split(), b.split()
    out: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(("same", " ".join(old[i1:i2])))
            continue
        if i2 > i1:
            out.append(("removed", " ".join(old[i1:i2])))
        if j2 > j1:
            out.append(("added", " ".join(new[j1:j2])))
    return out


def _cost(value: float, run: SetupRun) -> str:
    """Like the app's cost wording: the local engine is free, an unpriced model is not "$0"."""
    if run.backend == "local":
        return "free"
    return "price unknown" if price_for(run.model) is None else f"${value:.4f}"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} ms"


_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin-bottom: 2em; }
th, td { border: 1px solid #ccc; padding: .4em .6em; vertical-align: top; text-align: left; }
th { background: #f3f3f3; }
.reply p.text { white-space: pre-wrap; margin: 0 0 .4em; }
.meta, .metrics { color: #666; font-size: 12px; }
.error { color: #b00020; }
.missing { color: #888; font-style: italic; }
img.thumb { max-width: 96px; max-height: 96px; margin: 2px; border: 1px solid #ddd; }
ins { background: #d7f5dd; text-decoration: none; }
del { background: #fbd9d9; }
audio { display: block; width: 100%; max-width: 280px; margin: .3em 0; }
"""


_TOTALS_HEAD = (
    "<th>Setup</th><th>Voice</th><th>Model</th><th>Median latency</th><th>Tokens in</th><th>Tokens out</th>"
    "<th>Cost</th><th>Tool calls</th><th>Failed turns</th>"
)


def _totals_row(run: SetupRun, turn_count: int) -> str:
    t = totals(run, turn_count)
    stopped = f'<div class="error">Stopped: {escape(run.error)}</div>' if run.error else ""
    cells = [
        f"{escape(run.label)}{stopped}",
        escape(run.voice) or "—",
        escape(run.model) or "—",
        _ms(t.median_latency_ms),
        f"{t.input_tokens:,}",
        f"{t.output_tokens:,}",
        _cost(t.cost_usd, run),
        str(t.tool_calls),
        f"{t.failed} of {t.turns}",
    ]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _diff_html(original: str, reply: str) -> str:
    tags = {"same": "{}", "added": "<ins>{}</ins>", "removed": "<del>{}</del>"}
    diff = word_diff(original, reply)
    changed = any(op != "same" for op, _ in diff)
    body = " ".join(tags[op].format(escape(text)) for op, text in diff) if changed else "Same words."
    return f"<details><summary>Differences from the original</summary><p>{body}</p></details>"


def _cell(run: SetupRun, result: ReplyResult | None, original: ReplyResult | None, first: bool) -> str:
    if result is None:
        why = "no reply in the original conversation" if first else NOT_REPLAYED
        return f'<p class="missing">{why}</p>'
    parts = [f'<p class="text">{escape(result.text)}</p>']
    if result.audio_wav is not None:
        parts.append(f'<audio controls src="data:audio/wav;base64,{_b64(result.audio_wav)}"></audio>')
    metrics = [f"first audio {_ms(result.first_audio_ms)}", f"first text {_ms(result.first_text_ms)}"]
    parts.append(f'<div class="metrics">{" · ".join([*metrics, _cost(result.cost_usd, run)])}</div>')
    if result.tool_calls:
        parts.append("<ul>" + "".join(f"<li><code>{escape(c)}</code></li>" for c in result.tool_calls) + "</ul>")
    if result.error is not None:
        parts.append(f'<p class="error">Error: {escape(result.error)}</p>')
    if not first:
        parts.append(_diff_html(original.text if original else "", result.text))
    return "".join(parts)


def _turn_cell(turn: ReplayTurn) -> str:
    images = "".join(
        f'<img class="thumb" alt="image {n + 1}" src="data:image/jpeg;base64,{_b64(img)}">'
        for n, img in enumerate(turn.images)
    )
    voice = (
        f'<audio controls src="data:audio/wav;base64,{_b64(wav_bytes(turn.audio, CLIP_RATE))}"></audio>'
        if turn.audio
        else ""
    )
    return f'<td><div class="meta">{escape(turn.kind)}</div><p class="text">{escape(turn.text)}</p>{voice}{images}</td>'


def to_html(comparison: Comparison) -> str:
    """The whole comparison as one HTML page that works offline: totals first, then turn by turn."""
    title = escape(comparison.title)
    when = datetime.fromtimestamp(comparison.created_at).strftime("%Y-%m-%d %H:%M")
    by_turn = [{r.turn: r for r in run.results} for run in comparison.runs]
    head = "".join(f"<th>{escape(run.label)}</th>" for run in comparison.runs)
    rows = []
    for turn in comparison.turns:
        original = by_turn[0].get(turn.index) if by_turn else None
        cells = "".join(
            f'<td class="reply" data-run="{escape(run.name)}">'
            f"{_cell(run, results.get(turn.index), original, i == 0)}</td>"
            for i, (run, results) in enumerate(zip(comparison.runs, by_turn, strict=True))
        )
        rows.append(f"<tr><td>{turn.index + 1}</td>{_turn_cell(turn)}{cells}</tr>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Replay comparison — {title}</title><style>{_CSS}</style></head><body>"
        f"<h1>Replay comparison: {title}</h1>"
        f'<p class="meta">Compared on {when} · conversation {escape(comparison.conversation_id)}</p>'
        f"<h2>Totals</h2><table><thead><tr>{_TOTALS_HEAD}</tr></thead><tbody>"
        + "".join(_totals_row(run, len(comparison.turns)) for run in comparison.runs)
        + "</tbody></table><h2>Turn by turn</h2>"
        f"<table><thead><tr><th>#</th><th>User turn</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        "</body></html>\n"
    )
