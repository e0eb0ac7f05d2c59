"""Client/server event validation for the local engine, using the SDK's models as the schema.

``parse_client_event(raw)`` turns one wire message into a normalised GA client event dict, or
raises :class:`ClientEventError` (``code``, ``message``, ``event_id``, ``param``) that the session
turns into an ``error`` server event of type ``invalid_request_error``.

- Each event is validated with the pydantic model of its ``type`` from
  ``openai.types.realtime`` (the members of ``RealtimeClientEvent``), so messages name the
  offending field the way the real service does ("Invalid type for 'item_id': ...").
- The ``session`` of ``session.update`` and the ``response`` of ``response.create`` are checked as
  strictly as the GA service checks them (``validate_session`` / ``validate_response``; the HTTP
  routes use ``validate_session`` and ``validate_client_secret_request`` too): the SDK's request
  ``TypedDict``s (``RealtimeSessionCreateRequestParam``, ``RealtimeResponseCreateParamsWithReferencesParam``,
  ``ClientSecretCreateParams``) are validated by pydantic with ``extra="forbid"`` and strict types at
  every depth, so an unknown field anywhere is ``unknown_parameter``, a wrong type ``invalid_type``,
  with ``param`` naming the field (``session.audio.output.voise``). An SDK upgrade brings its new
  fields along; nothing here lists fields by hand.
- The beta session shapes (top-level ``voice``, ``modalities``, ``turn_detection``,
  ``input_audio_format``, ...; ``response.create`` with ``modalities`` / ``voice``) are refused with
  ``beta_api_shape_disabled``, as the GA service has done since 2026-05-12. The older beta *names*
  stay accepted: assistant content ``text`` / ``audio`` becomes ``output_text`` / ``output_audio``.
- ``response.create`` may carry ``{"type": "item_reference", "id": ...}`` inside
  ``response.input`` (as the SDK's ``ResponseCreateEventWithReferencesParam`` allows).
- Hostile input never escapes as an exception: values nested deeper than ``MAX_DEPTH`` are refused
  before any validation, and anything unforeseen becomes a ``ClientEventError`` too.

``validate_server_event(event)`` checks an outgoing event against ``RealtimeServerEvent`` and
raises :class:`ServerEventError` when it does not validate.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, create_model
from pydantic_core import ErrorDetails

__all__ = [
    "CLIENT_EVENT_TYPES",
    "MAX_DEPTH",
    "ClientEventError",
    "ServerEventError",
    "parse_client_event",
    "validate_client_secret_request",
    "validate_response",
    "validate_server_event",
    "validate_session",
]

log = logging.getLogger("localengine.schema")

MAX_DEPTH = 64
"""Deepest nesting of objects/arrays a client event may have (a JSON schema of a tool needs far less)."""

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
    """Parse and validate one client event; return it as a normalised GA dict.

    Raises only ``ClientEventError``, whatever the input.
    """
    try:
        return _parse_client_event(raw, max_bytes)
    except ClientEventError:
        raise
    except Exception as exc:  # a gap in the checks must still be an error event, never a crash
        log.warning("client event refused by an unforeseen failure: %r", exc)
        raise ClientEventError(
            "invalid_request", f"The event could not be processed: {type(exc).__name__}.", sniff_event_id(raw)
        ) from None


def _parse_client_event(raw: str | bytes, max_bytes: int | None) -> dict[str, Any]:
    size = len(raw.encode("utf-8", "replace")) if isinstance(raw, str) else len(raw)
    if max_bytes is not None and size > max_bytes:
        raise ClientEventError(
            "event_too_large",
            f"Event of {size} bytes exceeds the maximum event size of {max_bytes} bytes.",
            sniff_event_id(raw),
        )
    try:
        data = json.loads(raw)
    except RecursionError:
        raise ClientEventError(
            "invalid_json", f"The event is nested more than {MAX_DEPTH} levels deep.", sniff_event_id(raw)
        ) from None
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
    deep = too_deep(data)
    if deep is not None:
        raise ClientEventError(
            "invalid_value",
            f"Invalid value for '{deep}': nested more than {MAX_DEPTH} levels deep.",
            event_id,
            deep,
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
    try:
        if kind == "session.update" and "session" in data:
            validate_session(data["session"])
        elif kind == "response.create" and data.get("response") is not None:
            validate_response(data["response"])
    except ClientEventError as exc:
        exc.event_id = event_id
        raise
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
        code, message, param = _describe(exc.errors(include_url=False))
        raise ClientEventError(code, message, event_id, param) from None
    event = validated.model_dump(mode="json", exclude_unset=True, by_alias=True)
    if references:
        items = list(event.get("response", {}).get("input", []))
        for index in sorted(references):
            items.insert(index, references[index])
        event["response"]["input"] = items
    return event


def too_deep(value: Any, limit: int = MAX_DEPTH) -> str | None:
    """The top-level field holding a value nested deeper than ``limit`` levels, or None (iterative)."""
    stack: list[tuple[Any, int, str]] = [(value, 0, "")]
    while stack:
        node, depth, top = stack.pop()
        if depth > limit:
            return top or "event"
        if isinstance(node, dict):
            stack.extend((v, depth + 1, top or str(k)) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, depth + 1, top) for v in node)
    return None


# --------------------------------------------------------------------------- strict request checks

_StrictKind = Literal["session", "response", "client_secret"]

# The beta shapes of a session (and of response.create): the GA service refuses them since 2026-05-12.
_BETA_SESSION_KEYS = (
    "modalities",
    "voice",
    "turn_detection",
    "input_audio_transcription",
    "input_audio_format",
    "output_audio_format",
    "input_audio_noise_reduction",
    "max_response_output_tokens",
    "temperature",
    "speed",
)
_BETA_RESPONSE_KEYS = ("modalities", "voice", "output_audio_format", "max_response_output_tokens", "temperature")


@lru_cache(maxsize=4)
def _strict_model(kind: _StrictKind) -> type[BaseModel]:
    """A pydantic model whose one field ``value`` is the SDK request type, with extras forbidden
    and strict types at every depth (the config reaches every nested ``TypedDict``)."""
    from openai.types.realtime import (
        RealtimeResponseCreateParamsWithReferencesParam,
        client_secret_create_params,
        session_update_event_param,
    )

    types: dict[str, Any] = {
        "session": session_update_event_param.Session,
        "response": RealtimeResponseCreateParamsWithReferencesParam,
        "client_secret": client_secret_create_params.ClientSecretCreateParams,
    }
    model: type[BaseModel] = create_model(
        f"Strict_{kind}", __config__=ConfigDict(extra="forbid", strict=True), value=(types[kind], ...)
    )
    return model


def _strict_check(kind: _StrictKind, value: Any, root: str) -> None:
    try:
        validated = _strict_model(kind).model_validate({"value": _without_nulls(value)})
        _materialise(getattr(validated, "value", None), ())  # Iterable[...] fields validate lazily
    except ValidationError as exc:
        errors = [{**e, "loc": e["loc"][1:]} for e in exc.errors(include_url=False)]
        _raise_described(errors, root)
    except _LazyErrors as lazy:
        _raise_described(lazy.errors, root)


def _without_nulls(value: Any) -> Any:
    """``null`` for an optional field means "off" / "default" to the GA service (``transcription: null``
    turns transcription off), though the SDK's request types do not all say ``Optional``: drop them."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


class _LazyErrors(Exception):
    def __init__(self, errors: list[ErrorDetails]) -> None:
        super().__init__("invalid")
        self.errors = errors


def _materialise(value: Any, loc: tuple[int | str, ...]) -> None:
    if isinstance(value, Iterator):  # pydantic validates Iterable[...] lazily
        try:
            items = list(value)
        except ValidationError as exc:
            raise _LazyErrors([{**e, "loc": loc + tuple(e["loc"])} for e in exc.errors(include_url=False)]) from None
        for i, item in enumerate(items):
            _materialise(item, (*loc, i))
    elif isinstance(value, dict):
        for key, item in value.items():
            _materialise(item, (*loc, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _materialise(item, (*loc, i))


def _raise_described(errors: list[Any], root: str) -> None:
    code, message, param = _describe(errors)
    if root:
        full = root if param in (None, "event") else f"{root}.{param}"
        if param not in (None, "event"):
            message = message.replace(f"'{param}'", f"'{full}'", 1)
        else:
            message = message.replace("'event'", f"'{root}'", 1)
        param = full
    raise ClientEventError(code, message, None, param)


def _refuse_beta(value: Any, keys: tuple[str, ...], what: str, param: str, hint: str = "") -> None:
    """The GA service refuses the beta shapes since 2026-05-12: name the first beta key found."""
    if isinstance(value, dict):
        beta = next((k for k in keys if k in value), None)
        if beta is not None:
            raise ClientEventError(
                "beta_api_shape_disabled",
                f"The beta {what} shape is no longer supported: '{param}.{beta}' is not a GA {what} field.{hint}",
                param=f"{param}.{beta}",
            )


def validate_session(session: Any, param: str = "session") -> dict[str, Any]:
    """Check a GA session object as the GA service does; return it, or raise ``ClientEventError``."""
    hint = " Send a GA session (type 'realtime'; audio settings under 'audio.input' / 'audio.output')."
    _refuse_beta(session, _BETA_SESSION_KEYS, "session", param, hint)
    _strict_check("session", session, param)
    assert isinstance(session, dict)
    return session


def validate_response(response: Any, param: str = "response") -> dict[str, Any]:
    """Check the ``response`` of ``response.create`` as the GA service does; raise ``ClientEventError``."""
    _refuse_beta(response, _BETA_RESPONSE_KEYS, "response", param)
    _strict_check("response", response, param)
    assert isinstance(response, dict)
    return response


def validate_client_secret_request(body: Any) -> dict[str, Any]:
    """Check a ``POST /realtime/client_secrets`` body (``ClientSecretCreateParams``); raise ``ClientEventError``."""
    deep = too_deep(body)
    if deep is not None:
        raise ClientEventError(
            "invalid_value", f"Invalid value for '{deep}': nested more than {MAX_DEPTH} levels deep.", param=deep
        )
    if isinstance(body, dict) and body.get("session") is not None:
        validate_session(body["session"])
    _strict_check("client_secret", body, "")
    assert isinstance(body, dict)
    return body


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


def _describe(errors: list[ErrorDetails]) -> tuple[str, str, str | None]:
    """One clear message for the most relevant pydantic error (picking the right union member)."""

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

    # An object-shaped member of a union at a field refusing a scalar matters only when no other member
    # of that same union speaks for the field.
    def outvoted(e: ErrorDetails) -> bool:
        loc = e["loc"]
        if not (wrong_shape(e) and loc and _is_tag(loc[-1])):
            return False
        at = loc[:-1]
        return any(o is not e and o["loc"][: len(at)] == at and not wrong_shape(o) for o in errors)

    pool = [e for e in errors if not outvoted(e)] or errors
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
    if kind == "extra_forbidden":
        return "unknown_parameter", f"Unknown parameter: '{where}'.", where
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
    """The older beta names that GA still maps: assistant content ``text`` / ``audio``."""
    kind = data["type"]
    if kind == "conversation.item.create" and isinstance(data.get("item"), dict):
        return {**data, "item": _item_to_ga(data["item"])}
    if kind == "response.create" and isinstance(data.get("response"), dict):
        r = dict(data["response"])
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
