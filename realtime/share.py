"""The shareable setup as URL query parameters: one compact, readable, stable encoding.

``settings_to_query(settings)`` gives flat ``name -> value`` strings (fixed names, fixed order, one
per shareable field) that ``st.query_params`` accepts; ``settings_from_query(params, base)`` applies
them on top of ``base`` and returns the new settings and a warning for everything it ignored.

Deliberately never shared, never accepted: the API key (``api_key``/``key``/...) and the endpoint
(``base_url``). A link may be opened by someone whose server holds a key; a link that could point
that server at another endpoint would send the key there. ICE servers stay server configuration.

Parameters (``v=1``):

| name | field | value |
|---|---|---|
| ``model`` | model | model name |
| ``voice`` | voice | one of ``VOICES`` |
| ``instructions`` | instructions | text |
| ``turn`` | turn_detection.mode | ``server_vad``, ``semantic_vad``, ``push_to_talk`` |
| ``threshold`` | turn_detection.threshold | 0..1 |
| ``silence_ms`` | turn_detection.silence_ms | whole ms |
| ``padding_ms`` | turn_detection.prefix_padding_ms | whole ms |
| ``eagerness`` | turn_detection.eagerness | ``low``, ``medium``, ``high``, ``auto`` |
| ``transcription`` | transcription_model | a model, or ``off`` |
| ``output`` | output_modalities | ``audio`` or ``text`` |
| ``camera`` | camera.enabled | ``on``/``off`` |
| ``camera_interval`` | camera.interval_s | seconds |
| ``camera_max`` | camera.max_side | pixels |
| ``camera_detail`` | camera.detail | ``auto``, ``low``, ``high`` |
| ``max_images`` | camera.max_images | count |
| ``tools`` | tools | comma list of tool names, or ``none`` |
| ``reasoning`` | reasoning_effort | one of ``REASONING_EFFORTS``, or ``default`` |
| ``speed`` | voice_speed | 0.25..1.5 |
| ``noise`` | noise_reduction | ``off``, ``near_field``, ``far_field`` |
| ``idle_ms`` | turn_detection.idle_timeout_ms | whole ms, or ``off`` |
| ``transcription_language`` | transcription_language | ISO-639-1 code, or empty |
| ``transcription_prompt`` | transcription_prompt | text, or empty |
| ``max_tokens`` | max_output_tokens | 1..4096 or ``inf`` |
| ``tool_choice`` | tool_choice | ``auto``, ``none``, ``required`` |
| ``parallel_tools`` | parallel_tool_calls | ``on``/``off`` |
| ``truncation`` | truncation | ``auto``, ``disabled``, ``retention_ratio`` |
| ``retention_ratio`` | truncation_retention_ratio | 0..1 |
| ``prompt_id`` | prompt_id | a reusable prompt id, or empty |
| ``prompt_version`` | prompt_version | its version, or empty |
| ``prompt_variables`` | prompt_variables | JSON object of strings, or empty |
| ``codec`` | audio_codec | ``opus``, ``pcmu``, ``pcma`` |
| ``scenario`` | scenario | a built-in scenario name, or the ``file.py:attr`` / ``module:attr`` spec |
| ``camera_policy`` | camera.policy | ``turn``, ``interval``, ``manual`` |

A ``scenario`` is only carried here, never trusted: a spec can name a Python file, so the page that
applies a link or preset lets it through only when it is a built-in or the scenario configured on
that server (``ui.scenario_choice.checked_scenario``), and otherwise falls back to the default.

Parameters added after the first release are optional: an older link without them keeps the
receiver's values for those settings.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, urlsplit, urlunsplit

from .settings import Settings, SettingsError, parse_prompt_variables
from .tools import DEFAULT_TOOL_NAMES

__all__ = ["PARAM_NAMES", "SHARE_VERSION", "settings_from_query", "settings_to_query", "share_url"]

SHARE_VERSION = "1"
_MAX_TEXT = 20_000
_MODEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,99}$")
_ID_RE = re.compile(r"^[A-Za-z0-9._:\-]{0,200}$")
_SECRET_PARAMS = frozenset({"api_key", "apikey", "key", "openai_api_key", "token", "secret", "password"})
_ENDPOINT_PARAMS = frozenset({"base_url", "openai_base_url", "endpoint", "url"})
_TRUE = ("on", "true", "1", "yes")
_FALSE = ("off", "false", "0", "no")


class _Junk(ValueError):
    """A value that cannot be read as the parameter's type (message says what is accepted)."""


def _fmt_number(value: float) -> str:
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _parse_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise _Junk("a number") from None
    if not math.isfinite(value):
        raise _Junk("a finite number")
    return value


def _parse_int(raw: str) -> int:
    value = _parse_float(raw)
    if not value.is_integer():
        raise _Junk("a whole number")
    return int(value)


def _parse_bool(raw: str) -> bool:
    low = raw.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise _Junk("on or off")


def _parse_text(raw: str) -> str:
    if len(raw) > _MAX_TEXT:
        raise _Junk(f"at most {_MAX_TEXT} characters")
    if not raw.strip():
        raise _Junk("some text")
    return raw


def _parse_model(raw: str) -> str:
    if not _MODEL_RE.match(raw):
        raise _Junk("a model name (letters, digits, '.', '-', '_' or ':')")
    return raw


def _word(raw: str) -> str:
    return raw.strip().lower()


def _enc_turn(mode: str) -> str:
    return "push_to_talk" if mode == "none" else mode


def _dec_turn(raw: str) -> str:
    low = _word(raw)
    return "none" if low in ("push_to_talk", "ptt", "none", "off") else low


def _dec_transcription(raw: str) -> str:
    low = raw.strip()
    if low.lower() in ("off", "none", ""):
        return ""
    return _parse_model(low)


def _parse_optional_text(raw: str) -> str:
    if len(raw) > _MAX_TEXT:
        raise _Junk(f"at most {_MAX_TEXT} characters")
    return raw


def _parse_id(raw: str) -> str:
    if not _ID_RE.match(raw.strip()):
        raise _Junk("an id (letters, digits, '.', '-', '_' or ':')")
    return raw.strip()


def _off(encode: Callable[[Any], str]) -> Callable[[Any], str]:
    return lambda v: "off" if v is None else encode(v)


def _dec_off(decode: Callable[[str], Any]) -> Callable[[str], Any]:
    def dec(raw: str) -> Any:
        return None if _word(raw) in ("off", "none", "") else decode(raw)

    return dec


def _dec_idle(raw: str) -> int | None:
    return _dec_off(_parse_int)(raw) or None  # 0 is off too


def _dec_reasoning(raw: str) -> str | None:
    return None if _word(raw) in ("default", "") else _word(raw)


def _dec_max_tokens(raw: str) -> int | str:
    return "inf" if _word(raw) == "inf" else _parse_int(raw)


_MAX_SCENARIO = 500


def _dec_scenario(raw: str) -> str:
    spec = raw.strip()
    if not spec or len(spec) > _MAX_SCENARIO or not spec.isprintable():
        raise _Junk(f"a scenario name (at most {_MAX_SCENARIO} printable characters)")
    return spec


def _enc_variables(pairs: tuple[tuple[str, str], ...]) -> str:
    return json.dumps(dict(pairs), ensure_ascii=False, separators=(",", ":")) if pairs else ""


def _dec_variables(raw: str) -> tuple[tuple[str, str], ...]:
    problems: list[str] = []
    pairs = parse_prompt_variables(_parse_optional_text(raw), problems, "prompt_variables")
    if problems:
        raise _Junk("a JSON object whose values are strings")
    return pairs


@dataclass(frozen=True)
class _Param:
    name: str
    path: tuple[str, ...]  # ("voice",) or ("turn_detection", "threshold")
    encode: Callable[[Any], str]
    decode: Callable[[str], Any]  # raises _Junk; range checks are the Settings' own


_PARAMS: tuple[_Param, ...] = (
    _Param("model", ("model",), str, lambda r: _parse_model(r.strip())),
    _Param("voice", ("voice",), str, _word),
    _Param("instructions", ("instructions",), str, _parse_text),
    _Param("turn", ("turn_detection", "mode"), _enc_turn, _dec_turn),
    _Param("threshold", ("turn_detection", "threshold"), _fmt_number, _parse_float),
    _Param("silence_ms", ("turn_detection", "silence_ms"), _fmt_number, _parse_int),
    _Param("padding_ms", ("turn_detection", "prefix_padding_ms"), _fmt_number, _parse_int),
    _Param("eagerness", ("turn_detection", "eagerness"), str, _word),
    _Param("transcription", ("transcription_model",), lambda v: v or "off", _dec_transcription),
    _Param("output", ("output_modalities",), str, _word),
    _Param("camera", ("camera", "enabled"), lambda v: "on" if v else "off", lambda r: _parse_bool(r.strip())),
    _Param("camera_interval", ("camera", "interval_s"), _fmt_number, _parse_float),
    _Param("camera_max", ("camera", "max_side"), _fmt_number, _parse_int),
    _Param("camera_detail", ("camera", "detail"), str, _word),
    _Param("max_images", ("camera", "max_images"), _fmt_number, _parse_int),
    _Param("tools", ("tools",), lambda v: ",".join(v) if v else "none", lambda r: r),  # see _tools
    _Param("reasoning", ("reasoning_effort",), lambda v: v or "default", _dec_reasoning),
    _Param("speed", ("voice_speed",), _fmt_number, _parse_float),
    _Param("noise", ("noise_reduction",), _off(str), _dec_off(_word)),
    _Param("idle_ms", ("turn_detection", "idle_timeout_ms"), _off(_fmt_number), _dec_idle),
    _Param("transcription_language", ("transcription_language",), str, lambda r: r.strip()),
    _Param("transcription_prompt", ("transcription_prompt",), str, _parse_optional_text),
    _Param("max_tokens", ("max_output_tokens",), str, _dec_max_tokens),
    _Param("tool_choice", ("tool_choice",), str, _word),
    _Param(
        "parallel_tools", ("parallel_tool_calls",), lambda v: "on" if v else "off", lambda r: _parse_bool(r.strip())
    ),
    _Param("truncation", ("truncation",), str, _word),
    _Param("retention_ratio", ("truncation_retention_ratio",), _fmt_number, _parse_float),
    _Param("prompt_id", ("prompt_id",), str, _parse_id),
    _Param("prompt_version", ("prompt_version",), str, _parse_id),
    _Param("prompt_variables", ("prompt_variables",), _enc_variables, _dec_variables),
    _Param("codec", ("audio_codec",), str, _word),
    _Param("scenario", ("scenario",), str, _dec_scenario),
    _Param("camera_policy", ("camera", "policy"), str, _word),
)
PARAM_NAMES: tuple[str, ...] = ("v", *(p.name for p in _PARAMS))
_BY_NAME = {p.name: p for p in _PARAMS}


def _get(settings: Settings, path: tuple[str, ...]) -> Any:
    value: Any = settings
    for part in path:
        value = getattr(value, part)
    return value


def settings_to_query(settings: Settings, *, include_model: bool = True) -> dict[str, str]:
    """The shareable setup as query parameters, in a fixed order. Never the key or endpoint."""
    query = {"v": SHARE_VERSION}
    for p in _PARAMS:
        if p.name == "model" and not include_model:
            continue
        query[p.name] = p.encode(_get(settings, p.path))
    return query


def _single(name: str, raw: str | list[str] | tuple[str, ...], warnings: list[str]) -> str | None:
    if isinstance(raw, (list, tuple)):
        values = [str(v) for v in raw]
        if not values:
            return None
        if len(set(values)) > 1:
            warnings.append(f"'{name}' was given {len(values)} times; used the last one.")
        return values[-1]
    return str(raw)


def _tools(raw: str, warnings: list[str]) -> tuple[str, ...]:
    if raw.strip().lower() in ("none", "off", ""):
        return ()
    names: list[str] = []
    unknown: list[str] = []
    for part in raw.split(","):
        name = part.strip()
        if not name:
            continue
        (names if name in DEFAULT_TOOL_NAMES else unknown).append(name)
    if unknown:
        shown = ", ".join(repr(u[:40]) for u in unknown[:5])
        warnings.append(f"Ignored unknown tool(s) {shown}; known tools: {', '.join(DEFAULT_TOOL_NAMES)}.")
    return tuple(dict.fromkeys(names))


def _changes_for(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    if len(path) == 1:
        return {path[0]: value}
    return {path[0]: {path[1]: value}}


def _merge(into: dict[str, Any], change: dict[str, Any]) -> None:
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            into[key].update(value)
        else:
            into[key] = value


def _shown(raw: str) -> str:
    return repr(raw if len(raw) <= 40 else raw[:37] + "...")


def settings_from_query(
    params: Mapping[str, str | list[str]], base: Settings, *, what: str = "link"
) -> tuple[Settings, tuple[str, ...]]:
    """Apply the shareable setup in ``params`` over ``base``.

    Every parameter that is unknown, unreadable or out of range is ignored with a warning that
    names it; everything valid is applied. A key or an endpoint is never taken from ``params``.
    """
    warnings: list[str] = []
    changes: dict[str, Any] = {}
    for raw_name, raw_value in params.items():
        name = str(raw_name).strip()
        low = name.lower()
        value = _single(name, raw_value, warnings)
        if value is None:
            continue
        if low in _SECRET_PARAMS or "api_key" in low:
            warnings.append(f"Ignored '{name}': a {what} never carries an API key; the app uses its own.")
            continue
        if low in _ENDPOINT_PARAMS:
            warnings.append(f"Ignored '{name}': a {what} cannot change the endpoint the app connects to.")
            continue
        if low == "v":
            if value.strip() != SHARE_VERSION:
                warnings.append(
                    f"This {what} has format version {_shown(value)}; this app reads version "
                    f"{SHARE_VERSION} and applied what it understood."
                )
            continue
        param = _BY_NAME.get(low)
        if param is None:
            warnings.append(f"Ignored unknown setting '{name[:40]}'.")
            continue
        if param.name == "tools":
            decoded: Any = _tools(value, warnings)
        else:
            try:
                decoded = param.decode(value)
            except _Junk as junk:
                warnings.append(f"Ignored {param.name}={_shown(value)}: expected {junk}.")
                continue
        change = _changes_for(param.path, decoded)
        try:
            base.replace(**_copy(change))  # the Settings' own rules decide what is in range
        except SettingsError as exc:
            reason = " ".join(exc.problems).replace(repr(decoded), _shown(str(decoded)))
            warnings.append(_cap(f"Ignored {param.name}={_shown(value)}: {reason}"))
            continue
        _merge(changes, change)
    try:
        result = base.replace(**_copy(changes)) if changes else base
    except SettingsError as exc:  # values valid one by one but not together: keep the base
        warnings.append(f"Could not apply the {what} as a whole ({' '.join(exc.problems)}); kept the current setup.")
        result = base
    return result, tuple(warnings)


def _cap(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _copy(change: dict[str, Any]) -> dict[str, Any]:
    return {k: dict(v) if isinstance(v, dict) else v for k, v in change.items()}


def share_url(base_url: str, settings: Settings, *, include_model: bool = True) -> str:
    """``base_url`` (the page URL, any query or fragment dropped) with the setup as its query."""
    parts = urlsplit(base_url)
    params = settings_to_query(settings, include_model=include_model)
    query = "&".join(f"{_quote(name)}={_quote(value)}" for name, value in params.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", query, ""))


def _quote(value: str) -> str:
    return quote_plus(value, safe=",:")  # spaces as '+': readable, and what parse_qs reads
