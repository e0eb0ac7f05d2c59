"""Client/server event validation for the local engine, using the SDK's models as the schema.

``parse_client_event(raw)`` turns one wire message into a normalised GA client event dict, or
raises :class:`ClientEventError` (``code``, ``message``, ``event_id``, ``param``) that the session
turns into an ``error`` server event of type ``invalid_request_error``.

- Each event is validated with the pydantic model of its ``type`` from
  ``openai.types.realtime`` (the members of ``RealtimeClientEvent``), so messages name the
  offending field the way the real service does ("Invalid type for 'item_id': ...").
- Older beta shapes are mapped to GA before validation: a ``session`` without ``type``,
  top-level ``modalities`` / ``voice`` / ``turn_detection`` / ``input_audio_transcription`` /
  ``input_audio_format`` / ``output_audio_format`` / ``input_audio_noise_reduction`` /
  ``max_response_output_tokens`` / ``speed``; ``temperature`` is dropped; assistant content
  ``text`` / ``audio`` becomes ``output_text`` / ``output_audio``; ``response.create`` with
  ``modalities`` / ``voice`` / ``output_audio_format``.
- ``response.create`` may carry ``{"type": "item_reference", "id": ...}`` inside
  ``response.input`` (as the SDK's ``ResponseCreateEventWithReferencesParam`` allows).
- Unknown extra fields are tolerated (the SDK models allow extras); wrong types are not.

``validate_server_event(event)`` checks an outgoing event against ``RealtimeServerEvent`` and
raises :class:`ServerEventError` when it does not validate.
"""

from __future__ import annotations

import copy
import json
import re
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

__all__ = [
    "CLIENT_EVENT_TYPES",
    "ClientEventError",
    "ServerEventError",
    "normalise_session",
    "parse_client_event",
    "validate_server_event",
]

_EVENT_ID_RE = re.compile(rb'"event_id"\s*:\s*"([^"\\]{1,200})"')


class ClientEventError(Exception):
    """A client event the engine refuses; becomes an ``error`` server event."""

    def __init__(self, code: str, message: str, event_id: str | None = None, param: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.event_id = event_id
        self.param = param


class ServerEventError(ValueError):
    """An outgoing server event that does not validate against ``RealtimeServerEvent``."""


@lru_cache(maxsize=1)
def _client_models() -> dict[str, type[BaseModel]]:
    from typing import get_args

    from openai.types.realtime import RealtimeClientEvent

    union = get_args(RealtimeClientEvent)[0]
    models: dict[str, type[BaseModel]] = {}
    for model in get_args(union):
        (literal,) = get_args(model.model_fields["type"].annotation)
        models[literal] = model
    return models


CLIENT_EVENT_TYPES: tuple[str, ...] = tuple(sorted(_client_models()))


@lru_cache(maxsize=1)
def _server_adapter() -> TypeAdapter[Any]:
    from openai.types.realtime import RealtimeServerEvent

    return TypeAdapter(RealtimeServerEvent)


# --------------------------------------------------------------------------- parsing


def sniff_event_id(raw: str | bytes) -> str | None:
    """Best-effort ``event_id`` from a message that could not be parsed (e.g. oversize)."""
    data = raw.encode("utf-8", "replace") if isinstance(raw, str) else raw
    match = _EVENT_ID_RE.search(data[:8192])
    return match.group(1).decode("utf-8", "replace") if match else None


def parse_client_event(raw: str | bytes, *, max_bytes: int | None = None) -> dict[str, Any]:
    """Parse and validate one client event; return it as a normalised GA dict."""
    size = len(raw.encode("utf-8")) if isinstance(raw, str) else len(raw)
    if max_bytes is not None and size > max_bytes:
        raise ClientEventError(
            "event_too_large",
            f"Event of {size} bytes exceeds the maximum event size of {max_bytes} bytes.",
            sniff_event_id(raw),
        )
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ClientEventError("invalid_json", f"The event is not valid JSON: {exc}.", sniff_event_id(raw)) from None
    if not isinstance(data, dict):
        raise ClientEventError(
            "invalid_type",
            f"Invalid event: expected a JSON object, but got {_json_kind(data)} instead.",
        )
    event_id = data.get("event_id")
    if event_id is not None and not isinstance(event_id, str):
        raise ClientEventError(
            "invalid_type",
            f"Invalid type for 'event_id': expected a string, but got {_json_kind(event_id)} instead.",
            None,
            "event_id",
        )
    kind = data.get("type")
    if not isinstance(kind, str):
        if kind is None:
            raise ClientEventError(
                "missing_required_parameter", "Missing required parameter: 'type'.", event_id, "type"
            )
        raise ClientEventError(
            "invalid_type",
            f"Invalid type for 'type': expected a string, but got {_json_kind(kind)} instead.",
            event_id,
            "type",
        )
    data = _beta_to_ga(data)
    models = _client_models()
    model = models.get(data["type"])
    if model is None:
        supported = ", ".join(f"'{name}'" for name in CLIENT_EVENT_TYPES)
        raise ClientEventError(
            "invalid_value",
            f"Invalid value: '{kind}'. Supported values are: {supported}.",
            event_id,
            "type",
        )
    references: dict[int, dict[str, Any]] = {}
    if data["type"] == "response.create":
        references = _pop_item_references(data, event_id)
    try:
        validated = model.model_validate(data)
    except ValidationError as exc:
        code, message, param = _describe(exc)
        raise ClientEventError(code, message, event_id, param) from None
    event = validated.model_dump(mode="json", exclude_unset=True, by_alias=True)
    if references:
        items = list(event.get("response", {}).get("input", []))
        for index in sorted(references):
            items.insert(index, references[index])
        event["response"]["input"] = items
    return event


def _pop_item_references(data: dict[str, Any], event_id: str | None) -> dict[int, dict[str, Any]]:
    response = data.get("response")
    if not isinstance(response, dict) or not isinstance(response.get("input"), list):
        return {}
    kept, refs = [], {}
    for index, item in enumerate(response["input"]):
        if isinstance(item, dict) and item.get("type") == "item_reference":
            if not isinstance(item.get("id"), str):
                raise ClientEventError(
                    "invalid_type",
                    f"Invalid type for 'response.input[{index}].id': expected a string.",
                    event_id,
                    f"response.input[{index}].id",
                )
            refs[index] = {"type": "item_reference", "id": item["id"]}
        else:
            kept.append(item)
    data["response"] = {**response, "input": kept}
    return refs


# bool before int: True is an int too.
_JSON_KINDS: tuple[tuple[type, str], ...] = (
    (type(None), "null"),
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a decimal"),
    (str, "a string"),
    (list, "an array"),
    (dict, "an object"),
)


def _json_kind(value: object) -> str:
    """How the real service names a JSON value's kind in its messages."""
    return next((name for kind, name in _JSON_KINDS if isinstance(value, kind)), type(value).__name__)


_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "a boolean",
    "bool_parsing": "a boolean",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}


def _is_tag(part: object) -> bool:
    # Union-member and tagged-union tag names in pydantic locations, not field names.
    return isinstance(part, str) and (
        part[:1].isupper() or "[" in part or part.startswith("function-") or part in _TYPE_TAGS
    )


_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "list", "dict", "none", "is-instance"})


def _describe(exc: ValidationError) -> tuple[str, str, str | None]:
    """One clear message for the most relevant pydantic error (picking the right union member)."""
    errors = exc.errors(include_url=False)

    def path(err: ErrorDetails) -> str:
        out = ""
        for part in err["loc"]:
            if isinstance(part, int):
                out += f"[{part}]"
            elif _is_tag(part):
                continue
            else:
                out += f".{part}" if out else str(part)
        return out

    def branch(err: ErrorDetails) -> tuple[int | str, ...]:
        return tuple(p for p in err["loc"] if _is_tag(p))

    def wrong_shape(err: ErrorDetails) -> bool:
        value = err.get("input")
        if err["type"] in ("model_type", "model_attributes_type", "dict_type"):
            return not isinstance(value, dict)
        return err["type"] == "literal_error" and bool(branch(err)) and not isinstance(value, (str, int, float))

    def discriminator_miss(err: ErrorDetails) -> bool:
        last = err["loc"][-1] if err["loc"] else None
        return err["type"] == "literal_error" and last in ("type", "role")

    pool = [e for e in errors if not wrong_shape(e)] or errors
    groups: dict[tuple[int | str, ...], list[ErrorDetails]] = {}
    for e in pool:
        groups.setdefault(branch(e), []).append(e)
    good = {k: v for k, v in groups.items() if not any(discriminator_miss(e) for e in v)}
    if good:
        groups = good
        chosen = min(groups.values(), key=len)
    else:
        # Every member missed its tag: report the tag of the member that got furthest.
        def score(errs: list[ErrorDetails]) -> tuple[int, int, int]:
            misses = [e for e in errs if discriminator_miss(e)]
            return (len(misses), -max(len(path(e)) for e in misses), len(errs))

        best = min(groups.values(), key=score)
        chosen = [max((e for e in best if discriminator_miss(e)), key=lambda e: len(path(e)))]
    err = max(chosen, key=lambda e: len(path(e))) if good else chosen[0]
    where = path(err) or "event"
    kind = err["type"]
    if kind == "missing":
        return "missing_required_parameter", f"Missing required parameter: '{where}'.", where
    if kind in ("literal_error", "enum", "union_tag_invalid", "union_tag_not_found"):
        ctx = err.get("ctx", {})
        expected = ctx.get("expected") or ctx.get("expected_tags", "")
        if not good and len(groups) > 1:
            expected = ", ".join(
                dict.fromkeys(
                    str(e.get("ctx", {}).get("expected", ""))
                    for v in groups.values()
                    for e in v
                    if e["type"] == "literal_error" and path(e) == where and (e["loc"][-1] == err["loc"][-1])
                )
            )
        return (
            "invalid_value",
            f"Invalid value for '{where}': {err.get('input')!r}. Supported values are: {expected}.",
            where,
        )
    if kind in _EXPECTED:
        return (
            "invalid_type",
            f"Invalid type for '{where}': expected {_EXPECTED[kind]}, but got {_json_kind(err.get('input'))} instead.",
            where,
        )
    return "invalid_value", f"Invalid value for '{where}': {err['msg']}.", where


# --------------------------------------------------------------------------- beta -> GA

_FORMATS = {
    "pcm16": {"type": "audio/pcm", "rate": 24000},
    "g711_ulaw": {"type": "audio/pcmu"},
    "g711_alaw": {"type": "audio/pcma"},
}


def _format(value: Any) -> Any:
    return copy.deepcopy(_FORMATS.get(value, value)) if isinstance(value, str) else value


def _modalities(value: Any) -> Any:
    # Beta allowed ["text", "audio"] (audio plus transcript); GA says ["audio"] for that.
    if isinstance(value, list) and "audio" in value:
        return ["audio"]
    return value


def normalise_session(session: Any) -> Any:
    """Map a beta-shaped session object to GA (no validation)."""
    if not isinstance(session, dict):
        return session
    s = dict(session)
    for key in ("id", "object", "expires_at", "client_secret"):
        s.pop(key, None)
    s.pop("temperature", None)
    s.setdefault("type", "realtime")
    if "modalities" in s:
        s.setdefault("output_modalities", _modalities(s.pop("modalities")))
    if "max_response_output_tokens" in s:
        s.setdefault("max_output_tokens", s.pop("max_response_output_tokens"))
    audio = s.get("audio")
    audio = dict(audio) if isinstance(audio, dict) else ({} if audio is None else audio)
    if isinstance(audio, dict):
        ain = dict(audio.get("input") or {})
        aout = dict(audio.get("output") or {})
        moves_in = {
            "turn_detection": "turn_detection",
            "input_audio_transcription": "transcription",
            "input_audio_noise_reduction": "noise_reduction",
        }
        for beta, ga in moves_in.items():
            if beta in s:
                ain.setdefault(ga, s.pop(beta))
        if "input_audio_format" in s:
            ain.setdefault("format", _format(s.pop("input_audio_format")))
        if "output_audio_format" in s:
            aout.setdefault("format", _format(s.pop("output_audio_format")))
        for key in ("voice", "speed"):
            if key in s:
                aout.setdefault(key, s.pop(key))
        if isinstance(ain.get("format"), str):
            ain["format"] = _format(ain["format"])
        if isinstance(aout.get("format"), str):
            aout["format"] = _format(aout["format"])
        if ain:
            audio["input"] = ain
        if aout:
            audio["output"] = aout
        if audio:
            s["audio"] = audio
    return s


def _item_to_ga(item: Any) -> Any:
    if not isinstance(item, dict):
        return item
    item = dict(item)
    content = item.get("content")
    if item.get("type") == "message" and isinstance(content, list):
        role = item.get("role")
        fixed = []
        for part in content:
            if isinstance(part, dict):
                part = dict(part)
                kind = part.get("type")
                if role == "assistant" and kind in ("text", "audio"):
                    part["type"] = "output_" + kind
                elif role in ("user", "system") and kind == "text":
                    part["type"] = "input_text"
            fixed.append(part)
        item["content"] = fixed
    return item


def _beta_to_ga(data: dict[str, Any]) -> dict[str, Any]:
    kind = data["type"]
    if kind == "session.update" and isinstance(data.get("session"), dict):
        return {**data, "session": normalise_session(data["session"])}
    if kind == "conversation.item.create" and isinstance(data.get("item"), dict):
        return {**data, "item": _item_to_ga(data["item"])}
    if kind == "response.create" and isinstance(data.get("response"), dict):
        r = dict(data["response"])
        r.pop("temperature", None)
        if "modalities" in r:
            r.setdefault("output_modalities", _modalities(r.pop("modalities")))
        if "max_response_output_tokens" in r:
            r.setdefault("max_output_tokens", r.pop("max_response_output_tokens"))
        audio = dict(r.get("audio") or {})
        out = dict(audio.get("output") or {})
        if "voice" in r:
            out.setdefault("voice", r.pop("voice"))
        if "output_audio_format" in r:
            out.setdefault("format", _format(r.pop("output_audio_format")))
        if out:
            audio["output"] = out
            r["audio"] = audio
        if isinstance(r.get("input"), list):
            r["input"] = [_item_to_ga(i) for i in r["input"]]
        return {**data, "response": r}
    return data


# --------------------------------------------------------------------------- server side


def validate_server_event(event: dict[str, Any]) -> None:
    """Raise :class:`ServerEventError` unless ``event`` validates as a ``RealtimeServerEvent``."""
    if not isinstance(event, dict):
        raise ServerEventError(f"server event must be a dict, got {type(event).__name__}")
    if not isinstance(event.get("event_id"), str) or not event["event_id"]:
        raise ServerEventError(f"server event {event.get('type')!r} has no event_id")
    try:
        model = _server_adapter().validate_python(event)
    except ValidationError as exc:
        raise ServerEventError(f"invalid server event {event.get('type')!r}: {exc}") from None
    if getattr(model, "type", None) != event.get("type"):
        raise ServerEventError(f"server event type {event.get('type')!r} is not a known type")
