"""Values as JSON without secrets: what History may store about a call's settings.

A field is secret when its name says so (key, secret, token, password) or it is hidden from
``repr`` (as ``Settings.api_key`` and ``IceServer.credential`` are). Secret fields are dropped,
and the secret strings themselves are scrubbed from any text stored beside them (a key pasted
into the instructions, or said in the conversation).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    from realtime.settings import Settings

__all__ = ["JsonObject", "JsonValue", "plain", "scrub", "secret_values", "settings_record"]

JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"
JsonObject: TypeAlias = "dict[str, JsonValue]"

_SECRET_WORDS = ("key", "secret", "token", "password")
_MIN_SECRET = 8  # shorter strings are too likely to be ordinary words
REDACTED = "[redacted]"


def _is_secret_name(name: str) -> bool:
    """``api_key``, ``client_secret``, ``auth_token``, ``apikey``...; not ``max_output_tokens``."""
    parts = re.split(r"[^a-z]+", name.lower())
    return any(part.endswith(_SECRET_WORDS) for part in parts)


def _fields(value: DataclassInstance) -> JsonObject:
    return {
        f.name: plain(getattr(value, f.name))
        for f in dataclasses.fields(value)
        if f.repr and not _is_secret_name(f.name)
    }


def plain(value: object) -> JsonValue:
    """A JSON-able copy of ``value``: dataclasses become dicts, secret fields are dropped."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _fields(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items() if not _is_secret_name(str(k))}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def secret_values(value: object) -> tuple[str, ...]:
    """Every string of at least 8 characters held in a secret field of ``value`` (a dataclass,
    searched through its nested dataclasses), to scrub it from text."""
    found: list[str] = []
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if (not f.repr or _is_secret_name(f.name)) and isinstance(v, str) and len(v) >= _MIN_SECRET:
                found.append(v)
            elif dataclasses.is_dataclass(v):
                found.extend(secret_values(v))
    return tuple(found)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each of ``secrets`` replaced by ``[redacted]``."""
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def settings_record(settings: Settings) -> JsonObject:
    """The settings as a JSON object without the API key (or any other secret field), with the
    derived ``backend`` the History page shows."""
    record = _fields(settings)
    secrets = secret_values(settings)
    text = json.dumps(record)
    if any(s in text for s in secrets):  # e.g. a key pasted into the instructions
        redacted: JsonObject = json.loads(scrub(text, secrets))
        record = redacted
    record.setdefault("backend", settings.backend)
    record.setdefault("model", settings.model)
    return record
