"""Errors as values the page can show: what went wrong, in words for people on stage.

``classify(exc)`` turns an exception (openai SDK errors first of all) into a ``BridgeError``;
``describe_error(info)`` does the same for a provider error as ``realtime.events`` read it.
Messages never
contain an API key: anything shaped like one (and any secret passed in) is redacted.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import openai

from realtime.events import ErrorInfo

__all__ = ["BridgeError", "ErrorKind", "classify", "describe_error", "redact"]

ErrorKind = Literal["auth", "model", "rate_limit", "connection", "provider", "media", "config"]

# sk-..., sk-proj-..., and anything that looks like a bearer token.
_KEY_PATTERN = re.compile(r"\b(sk|rk|ek)-[A-Za-z0-9_\-*]{6,}|\bBearer\s+\S+", re.IGNORECASE)
_MAX_DETAIL = 300


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with API-key-like tokens and the given secrets replaced by ``[redacted]``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return _KEY_PATTERN.sub("[redacted]", text)


@dataclass(frozen=True)
class BridgeError:
    kind: ErrorKind
    message: str
    status: int | None = None
    code: str | None = None  # the provider's error code, when it gave one

    def __str__(self) -> str:
        return self.message


def _detail(text: Any, secrets: Iterable[str | None]) -> str:
    s = redact(str(text or "").strip(), secrets)
    if len(s) > _MAX_DETAIL:
        s = s[: _MAX_DETAIL - 1] + "…"
    return s


def _body_error(exc: openai.APIStatusError) -> tuple[str | None, str | None]:
    body = exc.body
    if isinstance(body, Mapping):
        err = body.get("error", body)
        if isinstance(err, Mapping):
            code = err.get("code") or err.get("type")
            msg = err.get("message")
            return (str(code) if code else None, str(msg) if msg else None)
    return None, None


def classify(exc: BaseException, *, secrets: Iterable[str | None] = (), base_url: str | None = None) -> BridgeError:
    """A ``BridgeError`` for an exception raised while talking to the provider."""
    secrets = tuple(secrets)
    where = f" at {base_url}" if base_url else ""
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        code, provider_msg = _body_error(exc)
        detail = _detail(provider_msg, secrets)
        suffix = f" Provider said: {detail}" if detail else ""
        if isinstance(exc, openai.AuthenticationError):
            return BridgeError("auth", "The provider rejected the API key (401). Check OPENAI_API_KEY.", status, code)
        if isinstance(exc, openai.PermissionDeniedError):
            return BridgeError(
                "auth",
                "The API key is not allowed to use the Realtime API or this model (403). "
                "Check the key's project permissions." + suffix,
                status,
                code,
            )
        if isinstance(exc, openai.NotFoundError):
            return BridgeError(
                "model",
                "The provider does not know this model or endpoint (404). Check REALTIME_MODEL and OPENAI_BASE_URL."
                + suffix,
                status,
                code,
            )
        if isinstance(exc, openai.RateLimitError):
            if code == "insufficient_quota":
                msg = "The account is out of quota (429). Check billing for this API key." + suffix
            else:
                msg = "The provider is rate limiting this key (429). Wait a moment and start again." + suffix
            return BridgeError("rate_limit", msg, status, code)
        if isinstance(exc, (openai.BadRequestError, openai.UnprocessableEntityError)):
            return BridgeError(
                "config", f"The provider refused the session settings ({status})." + suffix, status, code
            )
        if status >= 500:
            return BridgeError(
                "provider", f"The realtime provider had a problem ({status}). Try again." + suffix, status, code
            )
        return BridgeError("provider", f"The provider answered with an error ({status})." + suffix, status, code)
    if isinstance(exc, openai.APITimeoutError):
        return BridgeError("connection", f"The realtime provider{where} did not answer in time. Check the network.")
    if isinstance(exc, openai.APIConnectionError):
        return BridgeError(
            "connection", f"Could not reach the realtime provider{where}. Check the network and OPENAI_BASE_URL."
        )
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return BridgeError("connection", f"The connection to the realtime provider{where} timed out.")
    if isinstance(exc, ConnectionError):
        return BridgeError(
            "connection", f"The connection to the realtime provider{where} failed: {_detail(exc, secrets)}"
        )
    if isinstance(exc, openai.OpenAIError):
        return BridgeError("provider", f"The OpenAI SDK reported: {_detail(exc, secrets)}")
    if isinstance(exc, OSError):
        return BridgeError("connection", f"A network error stopped the call: {_detail(exc, secrets)}")
    if isinstance(exc, ValueError):
        return BridgeError("config", f"Invalid configuration: {_detail(exc, secrets)}")
    name = type(exc).__name__
    detail = _detail(exc, secrets)
    return BridgeError("provider", f"Unexpected error ({name}){': ' + detail if detail else ''}.")


_AUTH_CODES = frozenset({"invalid_api_key", "authentication_error", "unauthorized", "invalid_authentication"})
_MEDIA_HINTS = ("image", "audio_format", "invalid_audio", "input_audio")


def describe_error(err: ErrorInfo | None, *, secrets: Iterable[str | None] = ()) -> BridgeError:
    """A ``BridgeError`` for a provider error, as ``realtime.events`` read it."""
    if err is None:
        return BridgeError("provider", "The provider reported an error without details.")
    code = err.code
    etype = err.type
    detail = _detail(err.message, secrets) or "no details"
    text = f"{code or ''} {etype}".lower()
    if code == "session_expired":  # the session cap: the call ends, the conversation goes on
        return BridgeError("connection", f"The provider ended the session: {detail}", None, code)
    if code in _AUTH_CODES or "authentication" in etype:
        return BridgeError("auth", f"The provider rejected the API key: {detail}", None, code)
    if "model_not_found" in text or ("model" in text and "not_found" in text):
        return BridgeError("model", f"The provider does not know this model: {detail}", None, code)
    if "rate_limit" in text or "quota" in text:
        return BridgeError("rate_limit", f"The provider is rate limiting this session: {detail}", None, code)
    if any(h in text for h in _MEDIA_HINTS):
        return BridgeError("media", f"The provider could not use the media sent: {detail}", None, code)
    if etype == "invalid_request_error":
        return BridgeError("config", f"The provider refused a request: {detail}", None, code)
    return BridgeError("provider", f"The provider reported an error: {detail}", None, code)


class UserFacingError(Exception):
    """Something the user asked for cannot be done; ``message`` says why, in a sentence for the page."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
