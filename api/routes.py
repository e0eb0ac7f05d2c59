"""The API routes (Starlette, mounted at ``/api/v1`` through ``st.App`` in ``app.py``).

- ``POST /realtime/session``: a client secret (``realtime.client_secrets.create``) for the studio's
  default setup.
- ``POST /realtime/calls``: SDP offer in, answer out (201, ``Location``). The studio creates the call
  with its own key and serves it over the sideband: tools, events, History.
- ``POST /realtime/calls/{id}/hangup``: hangs up a call placed here.
- ``POST /vision/frame``: ``{image_base64, call_id?}``, a JPEG/PNG checked and acknowledged; with
  ``call_id`` it is shown to that call.
- ``GET /studio/example`` (beside the API, not in it): the example client, a static page holding no
  secret (the user types the token into it); 404 while the API is off.

Every ``/api/v1`` route needs ``Authorization: Bearer $REALTIME_API_TOKEN`` (401 otherwise); without
the token configured the API is off (404). Errors are JSON ``{"error": ...}`` with a 4xx, or 502/503 when
the provider fails or is not there; the provider key appears in no answer, header or log line.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import functools
import json
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, cast

import openai
from openai import AsyncOpenAI
from openai.types.realtime import RealtimeSessionCreateRequestParam
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from api.guard import ApiConfig, ApiConfigError, CallLimiter, bearer_token, token_matches
from realtime.admission import admission, busy_message
from realtime.errors import classify, redact
from realtime.external_calls import ExternalCalls, external_calls
from realtime.frames import DEFAULT_BUDGET_BYTES, encode_frame
from realtime.settings import Connection, Settings, SettingsError
from realtime.sideband_call import SidebandCall, call_setup
from realtime.tools import DEFAULT_TOOLS
from realtime.uploads import ImageRejected, Upload, read_image

__all__ = ["API_PREFIX", "EXAMPLE_ROUTE", "Api", "api_routes"]

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
EXAMPLE_ROUTE = "/studio/example"  # outside the API: a static page, while every API route wants the token
MAX_SDP_BYTES = 64 * 1024
MAX_FRAME_BYTES = 8 * 1024 * 1024  # decoded image
MAX_FRAME_BODY_BYTES = MAX_FRAME_BYTES * 4 // 3 + 4096  # its base64 in a JSON object
MAX_JSON_BYTES = 64 * 1024
MAX_INSTRUCTIONS_CHARS = 20_000
FRAME_FORMATS = ("JPEG", "PNG")
LATEST_FRAME_S = 60.0  # a frame posted without a call id is offered with a session minted this soon after
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "client.html"


class _Refused(Exception):
    """Ends a request with ``status`` and a JSON ``{"error": message}``."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=dict(headers or {}))


def _default_settings() -> Settings:
    from ui.settings_source import default_settings

    return default_settings()


class Api:
    """The routes' state: the configuration, the limits, the calls placed here. One per server process."""

    def __init__(
        self,
        config: ApiConfig | None = None,
        *,
        config_error: str | None = None,
        settings: Callable[[], Settings] = _default_settings,
        calls: ExternalCalls | None = None,
    ) -> None:
        self.config = config if config is not None else ApiConfig()
        self.config_error = config_error
        self.limiter = CallLimiter(self.config.calls_per_minute, self.config.max_concurrent)
        self.calls = calls if calls is not None else external_calls()
        self._settings = settings
        self._latest_frame: tuple[float, str] | None = None  # (monotonic time, base64) of a frame without call

    # -- plumbing --------------------------------------------------------------------------------

    def _guarded(
        self, handler: Callable[[Request, str], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if self.config_error is not None:
                return _error(503, f"The API is misconfigured: {self.config_error}")
            if not self.config.enabled:
                return _error(404, "The API is off: set REALTIME_API_TOKEN on the server to turn it on.")
            token = bearer_token(request.headers.get("authorization"))
            if token is None or not token_matches(token, self.config.token):
                return _error(
                    401,
                    "Missing or wrong token: send Authorization: Bearer <REALTIME_API_TOKEN>.",
                    {"WWW-Authenticate": "Bearer"},
                )
            try:
                return await handler(request, token)
            except _Refused as refused:
                return _error(refused.status, refused.message, refused.headers)
            except Exception as exc:  # never a traceback, never a secret: a short line, logged redacted
                log.error("API %s failed: %s", request.url.path, redact(repr(exc), self._secrets()))
                return _error(500, f"The server failed on this request ({type(exc).__name__}).")

        return endpoint

    def _secrets(self) -> tuple[str, ...]:
        """What no answer or log line may show: the provider key (from the environment or the secrets
        file, as the settings read it) and the API token."""
        keys = [os.environ.get("OPENAI_API_KEY", ""), self.config.token]
        with contextlib.suppress(Exception):  # settings that cannot be read hold no key to hide
            keys.append(self._settings().api_key)
        return tuple(k for k in keys if k)

    def settings(self) -> Settings:
        try:
            return self._settings()
        except SettingsError as exc:
            raise _Refused(503, f"The studio's settings cannot be used: {exc}") from None

    async def connection(self, settings: Settings) -> Connection:
        """The provider: OpenAI with the server's key, or the local engine (started if needed)."""
        try:
            return await run_in_threadpool(settings.connection)
        except Exception as exc:
            why = redact(str(exc).strip() or type(exc).__name__, self._secrets()).splitlines()[0]
            raise _Refused(
                503,
                f"No realtime provider is available: no OPENAI_API_KEY is configured and the local engine "
                f"could not be used ({why}).",
            ) from None

    def _admit(self, token: str, *, concurrent: bool) -> None:
        admission = self.limiter.admit(token, time.monotonic(), concurrent=concurrent)
        if not admission.ok:
            raise _Refused(
                429,
                f"{admission.reason} Try again in {admission.retry_after_s} s.",
                {"Retry-After": str(admission.retry_after_s)},
            )

    def _provider_error(self, exc: Exception, conn: Connection) -> _Refused:
        error = classify(exc, secrets=(*self._secrets(), conn.api_key), base_url=conn.base_url)
        status = 400 if isinstance(exc, openai.BadRequestError) else 502
        return _Refused(status, f"The realtime provider refused: {error.message}")

    @staticmethod
    async def _body(request: Request, limit: int) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _Refused(413, f"The request body is over {limit:,} bytes.")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _Refused(413, f"The request body is over {limit:,} bytes.")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _json(self, request: Request, limit: int, *, optional: bool = False) -> dict[str, Any]:
        raw = await self._body(request, limit)
        if optional and not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            raise _Refused(400, "The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise _Refused(400, "The request body must be a JSON object.")
        return body

    @staticmethod
    def _instructions(body: Mapping[str, Any], settings: Settings) -> Settings:
        instructions = body.get("instructions")
        if instructions is None:
            return settings
        if not isinstance(instructions, str) or not instructions.strip():
            raise _Refused(400, "instructions must be a non-empty string.")
        if len(instructions) > MAX_INSTRUCTIONS_CHARS:
            raise _Refused(400, f"instructions must be at most {MAX_INSTRUCTIONS_CHARS:,} characters.")
        return settings.replace(instructions=instructions)

    # -- routes ----------------------------------------------------------------------------------

    async def mint_session(self, request: Request, token: str) -> Response:
        body = await self._json(request, MAX_JSON_BYTES, optional=True)
        settings = self._instructions(body, self.settings())
        self._admit(token, concurrent=False)
        conn = await self.connection(settings)
        session = cast(RealtimeSessionCreateRequestParam, settings.session_payload(registry=DEFAULT_TOOLS))
        async with AsyncOpenAI(base_url=conn.base_url, api_key=conn.api_key, max_retries=0, timeout=15.0) as client:
            try:
                secret = await client.realtime.client_secrets.create(session=session)
            except openai.OpenAIError as exc:
                raise self._provider_error(exc, conn) from None
        answer: dict[str, Any] = {
            "value": secret.value,
            "expires_at": secret.expires_at,
            "model": settings.model,
            "url": conn.base_url.rstrip("/") + "/realtime/calls",
        }
        latest = self._latest_frame
        if latest is not None and time.monotonic() - latest[0] < LATEST_FRAME_S:
            answer["latest_frame_base64"] = latest[1]
        return JSONResponse(answer)

    async def _offer(self, request: Request) -> tuple[str, dict[str, Any]]:
        """The SDP offer, and the overrides a multipart body's ``session`` carries (instructions only)."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        overrides: dict[str, Any] = {}
        if kind == "multipart/form-data":
            async with request.form(max_files=2, max_fields=4, max_part_size=MAX_SDP_BYTES) as form:
                sdp_field, session_field = form.get("sdp"), form.get("session")
                sdp = (
                    sdp_field if isinstance(sdp_field, str) else (await sdp_field.read()).decode() if sdp_field else ""
                )
                if session_field is not None:
                    raw = session_field if isinstance(session_field, str) else (await session_field.read()).decode()
                    try:
                        session = json.loads(raw)
                    except ValueError:
                        raise _Refused(400, "The multipart session field is not valid JSON.") from None
                    if isinstance(session, dict) and "instructions" in session:
                        overrides["instructions"] = session["instructions"]
        elif kind in ("application/sdp", "text/plain", ""):
            sdp = (await self._body(request, MAX_SDP_BYTES)).decode("utf-8", errors="replace")
        else:
            raise _Refused(415, f"Send the SDP offer as application/sdp (or multipart/form-data), not {kind}.")
        if not sdp.lstrip().startswith("v=0") or "m=audio" not in sdp:
            raise _Refused(400, "The body is not an SDP offer with an audio section (it must start with v=0).")
        return sdp, overrides

    async def create_call(self, request: Request, token: str) -> Response:
        offer, overrides = await self._offer(request)
        setup = call_setup(self.settings(), DEFAULT_TOOLS)  # a scenario's agents, or the studio's tools
        settings = self._instructions(overrides, setup.settings)
        if admission().full():  # the whole server's limit, studio tabs included
            raise _Refused(503, busy_message(admission().running()), {"Retry-After": "60"})
        self._admit(token, concurrent=True)
        reservation = f"pending-{uuid.uuid4().hex}"
        self.limiter.started(token, reservation)
        try:
            conn = await self.connection(settings)
            session = cast(RealtimeSessionCreateRequestParam, settings.session_payload(registry=setup.tools))
            async with AsyncOpenAI(base_url=conn.base_url, api_key=conn.api_key, max_retries=0, timeout=15.0) as client:
                try:
                    raw = await client.realtime.calls.with_raw_response.create(sdp=offer, session=session)
                except openai.OpenAIError as exc:
                    raise self._provider_error(exc, conn) from None
            location = raw.headers.get("location") or ""
            call_id = location.rstrip("/").rsplit("/", 1)[-1]
            if not call_id:
                raise _Refused(502, "The realtime provider answered without a call id.")
            answer = raw.http_response.text
        finally:
            self.limiter.ended(reservation)
        self.limiter.started(token, call_id)
        call = SidebandCall(call_id, dataclasses.replace(setup, settings=settings), conn, source="api")
        call.add_listener(functools.partial(self._on_update, call_id))
        self.calls.add(call)
        admission().admit(call, force=True)  # placed already: it counts from now on
        _record(call, settings)
        call.start()
        return Response(
            answer,
            status_code=201,
            media_type="application/sdp",
            headers={"Location": f"{API_PREFIX}/realtime/calls/{call_id}", "X-Call-Id": call_id},
        )

    def _on_update(self, call_id: str, update: object) -> None:
        from realtime.updates import CallEnded

        if isinstance(update, CallEnded):
            self.limiter.ended(call_id)

    def _call(self, call_id: str) -> SidebandCall:
        call = self.calls.get(call_id)
        if call is None:
            raise _Refused(404, f"No call {call_id!r} was placed through this studio.")
        return call

    async def hangup(self, request: Request, token: str) -> Response:
        call = self._call(request.path_params["call_id"])
        await asyncio.wrap_future(call.hangup())
        self.limiter.ended(call.call_id)
        return JSONResponse({"call_id": call.call_id, "state": call.state})

    async def frame(self, request: Request, token: str) -> Response:
        body = await self._json(request, MAX_FRAME_BODY_BYTES)
        encoded = body.get("image_base64")
        if not isinstance(encoded, str) or not encoded:
            raise _Refused(400, "image_base64 must be a non-empty base64 string (a JPEG or PNG).")
        if encoded.startswith("data:"):
            encoded = encoded.partition(",")[2]
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise _Refused(400, "image_base64 is not valid base64.") from None
        if len(data) > MAX_FRAME_BYTES:
            raise _Refused(413, f"The image is {len(data):,} bytes, over the {MAX_FRAME_BYTES:,}-byte limit.")
        call_id = body.get("call_id")
        if call_id is not None and not isinstance(call_id, str):
            raise _Refused(400, "call_id must be a string.")
        call = self._call(call_id) if call_id else None
        if call is not None and not call.live:
            raise _Refused(409, f"Call {call_id!r} has ended: the frame was not forwarded.")
        try:
            image = await run_in_threadpool(read_image, Upload("The frame", data), FRAME_FORMATS)
        except ImageRejected as exc:
            raise _Refused(400, str(exc)) from None
        received_at = time.time()
        width, height = image.size
        if call is not None:
            camera = call.settings.camera
            frame = await run_in_threadpool(
                encode_frame, image, max_side=camera.max_side, detail=camera.detail, budget_bytes=DEFAULT_BUDGET_BYTES
            )
            call.send_image(frame)
        else:
            self._latest_frame = (time.monotonic(), encoded)
        return JSONResponse(
            {
                "bytes": len(data),
                "width": width,
                "height": height,
                "received_at": received_at,
                "forwarded": call is not None,
            }
        )

    async def example(self, request: Request) -> Response:
        if not self.config.enabled:
            return _error(404, "The API is off: set REALTIME_API_TOKEN on the server to turn it on.")
        return HTMLResponse(EXAMPLE.read_text(encoding="utf-8"))

    def routes(self) -> list[BaseRoute]:
        """The routes at ``/api/v1`` (with CORS for the configured origins only), and the example page."""
        return [Mount(API_PREFIX, app=self._app()), Route(EXAMPLE_ROUTE, self.example, methods=["GET"])]

    def _app(self) -> Starlette:
        g = self._guarded
        routes = [
            Route("/realtime/session", g(self.mint_session), methods=["POST"]),
            Route("/realtime/calls", g(self.create_call), methods=["POST"]),
            Route("/realtime/calls/{call_id}/hangup", g(self.hangup), methods=["POST"]),
            Route("/vision/frame", g(self.frame), methods=["POST"]),
        ]
        middleware = [
            Middleware(
                CORSMiddleware,
                allow_origins=list(self.config.origins),
                allow_methods=["POST", "OPTIONS"],
                allow_headers=["Authorization", "Content-Type"],
                expose_headers=["Location", "X-Call-Id", "Retry-After"],
                max_age=600,
            )
        ]
        return Starlette(routes=routes, middleware=middleware)


def _record(call: SidebandCall, settings: Settings) -> None:
    """Save the call to History, marked as placed through the API."""
    try:
        from realtime.history import process_store

        store, _notice = process_store()
        if store is not None:
            store.recorder.attach(call, settings, source="api")
    except Exception as exc:
        log.warning("history could not record API call %s: %s", call.call_id, type(exc).__name__)


def api_routes(env: Mapping[str, str] | None = None) -> list[BaseRoute]:
    """The API and its example page for ``st.App(routes=[...])``, configured from ``env`` (the process
    environment)."""
    env = os.environ if env is None else env
    try:
        api = Api(ApiConfig.from_env(env))
    except ApiConfigError as exc:
        log.error("the API is off: %s", exc)
        api = Api(config_error=str(exc))
    return api.routes()
