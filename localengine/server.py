"""The engine's HTTP/WebSocket edge: a Starlette app with the Realtime routes and bearer auth.

Routes (all under ``/v1`` except the health check):

- ``POST /v1/realtime/calls``: SDP offer (multipart ``sdp`` + optional JSON ``session``, or a plain
  ``application/sdp`` body) -> 201, SDP answer, ``Location: /v1/realtime/calls/{call_id}``.
- ``POST /v1/realtime/calls/{call_id}/hangup``.
- ``POST /v1/realtime/client_secrets``: an ephemeral ``ek_...`` key (accepted until it expires).
- WebSocket ``/v1/realtime?model=...`` (new session) and ``/v1/realtime?call_id=...`` (sideband).
- ``GET /healthz`` (no auth).

Protocol state lives in ``conversation.Session``; effects are executed by ``driver.SessionDriver``.
Keys are compared, never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from .config import EngineConfig
from .conversation import Send, Session
from .driver import Player, SessionDriver
from .recognizer import Recognizer
from .rtc import CallPeer, OfferError
from .schema import ClientEventError, validate_client_secret_request, validate_session

__all__ = ["EngineState", "EngineStats", "build_app", "error_body"]

log = logging.getLogger("localengine.server")

DEFAULT_MODEL = "gpt-realtime"
SPEECH_WORKERS = 2
MAX_OFFER_BYTES = 256 * 1024
MAX_PENDING_SEND_BYTES = 32 * 1024 * 1024
"""Server events queued for one WebSocket that its client has not read yet; above it the socket is
closed (1008) rather than letting a client that does not read grow the engine's memory."""


def error_body(
    message: str, *, code: str | None, type_: str = "invalid_request_error", param: str | None = None
) -> dict[str, Any]:
    """The OpenAI REST error shape."""
    return {"error": {"message": message, "type": type_, "code": code, "param": param}}


def _error(
    status: int, message: str, *, code: str | None, param: str | None = None, type_: str = "invalid_request_error"
) -> JSONResponse:
    return JSONResponse(error_body(message, code=code, param=param, type_=type_), status_code=status)


@dataclass(frozen=True)
class ClientSecret:
    value: str
    expires_at: float  # epoch seconds
    session: dict[str, Any] | None


@dataclass(frozen=True)
class EngineStats:
    """What is open right now (for tests and the leak checks)."""

    calls: int
    websockets: int
    peer_connections: int
    speech_jobs_pending: int


@dataclass
class _Call:
    call_id: str
    peer: CallPeer
    driver: SessionDriver


@dataclass
class EngineState:
    """Everything the routes share: calls, open WebSockets, minted client secrets, the speech pool and recognizer."""

    config: EngineConfig
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(SPEECH_WORKERS, thread_name_prefix="localengine-speech")
    )
    recognizer: Recognizer = field(default_factory=Recognizer)
    calls: dict[str, _Call] = field(default_factory=dict)
    sockets: set[WebSocket] = field(default_factory=set)
    drivers: set[SessionDriver] = field(default_factory=set)
    secrets: dict[str, ClientSecret] = field(default_factory=dict)
    _endings: set[asyncio.Task[None]] = field(default_factory=set)
    closing: bool = False

    # -- auth ------------------------------------------------------------------------------

    def key_accepted(self, key: str | None) -> bool:
        if not key:
            return False
        if self.config.accepts_static_key(key):
            return True
        secret = self.secrets.get(key)
        if secret is None:
            return False
        if secret.expires_at <= time.time():
            del self.secrets[key]
            return False
        return True

    def secret_session(self, key: str | None) -> dict[str, Any] | None:
        secret = self.secrets.get(key or "")
        return secret.session if secret is not None else None

    def mint_secret(self, ttl_seconds: int, session: dict[str, Any] | None) -> ClientSecret:
        now = time.time()
        for value in [v for v, s in self.secrets.items() if s.expires_at <= now]:
            del self.secrets[value]
        secret = ClientSecret("ek_" + secrets.token_hex(24), float(int(now + ttl_seconds)), session)
        self.secrets[secret.value] = secret
        return secret

    # -- sessions --------------------------------------------------------------------------

    def new_driver(
        self,
        transport: Literal["websocket", "webrtc"],
        initial: dict[str, Any] | None,
        player: Player | None = None,
        on_closed: Callable[[SessionDriver, str], None] | None = None,
    ) -> SessionDriver:
        session = Session(transport=transport, config=self.config, initial_session=initial, now=time.monotonic())

        def closed(driver: SessionDriver, reason: str) -> None:
            self.drivers.discard(driver)
            if on_closed is not None:
                on_closed(driver, reason)

        driver = SessionDriver(
            session, executor=self.executor, recognizer=self.recognizer, player=player, on_closed=closed
        )
        self.drivers.add(driver)
        return driver

    def end_call(self, call_id: str, reason: str) -> None:
        """Close a call's session and peer (from any callback; the peer closes in a task)."""
        call = self.calls.pop(call_id, None)
        if call is None:
            return
        log.info("call %s ended: %s", call_id, reason)
        call.driver.close(reason)
        task = asyncio.get_running_loop().create_task(call.peer.close(), name=f"end-{call_id}")
        self._endings.add(task)
        task.add_done_callback(self._endings.discard)

    def stats(self) -> EngineStats:
        return EngineStats(
            calls=len(self.calls),
            websockets=len(self.sockets),
            peer_connections=sum(1 for c in self.calls.values() if c.peer.pc.connectionState != "closed"),
            speech_jobs_pending=sum(d.stats().pending_jobs for d in self.drivers),
        )

    async def close_all(self) -> None:
        """Close every call, peer and WebSocket; idempotent."""
        self.closing = True
        for call_id in list(self.calls):
            self.end_call(call_id, "engine stopping")
        for driver in list(self.drivers):
            driver.close("engine stopping")
        for ws in list(self.sockets):
            with contextlib.suppress(Exception):
                await ws.close(code=1001, reason="engine stopping")
        if self._endings:
            await asyncio.gather(*list(self._endings), return_exceptions=True)


# -- auth helpers ------------------------------------------------------------------------------


def _bearer(headers: Any) -> str | None:
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _ws_key(ws: WebSocket) -> tuple[str | None, str | None]:
    """The key from ``Authorization`` or from the browser's ``openai-insecure-api-key.`` subprotocol.

    Returns (key, subprotocol to accept with)."""
    key = _bearer(ws.headers)
    chosen = None
    for proto in ws.scope.get("subprotocols", []):
        if proto.startswith("openai-insecure-api-key.") and key is None:
            key = proto.removeprefix("openai-insecure-api-key.") or None
        elif proto == "realtime":
            chosen = "realtime"
    return key, chosen


MISSING_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)
WRONG_KEY = "Incorrect API key provided. This local engine does not accept it (see LOCALENGINE_API_KEYS)."


def _auth_error(key: str | None) -> JSONResponse:
    return _error(401, MISSING_KEY if not key else WRONG_KEY, code="invalid_api_key")


def _state(request: Request | WebSocket) -> EngineState:
    state: EngineState = request.app.state.engine
    return state


# -- HTTP routes -------------------------------------------------------------------------------


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok", **_state(request).stats().__dict__})


async def _read_offer(request: Request) -> tuple[str, dict[str, Any] | None]:
    """(sdp, session) from multipart or a plain SDP body; raises ValueError with a clear message."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        form = await request.form(max_part_size=MAX_OFFER_BYTES)
        try:
            sdp = await _form_text(form.get("sdp"))
            session_raw = await _form_text(form.get("session"))
        finally:
            await form.close()
        if sdp is None:
            raise ValueError("The multipart body has no 'sdp' part.")
        if session_raw is None or session_raw.strip() in ("", "null"):
            return sdp, None
        try:
            session = json.loads(session_raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"The 'session' part is not valid JSON: {exc}.") from None
        if not isinstance(session, dict):
            raise ValueError("The 'session' part must be a JSON object.")
        return sdp, session
    body = await request.body()
    if len(body) > MAX_OFFER_BYTES:
        raise ValueError(f"The SDP offer is larger than {MAX_OFFER_BYTES} bytes.")
    if content_type not in ("application/sdp", "text/plain", ""):
        raise ValueError(f"Unsupported Content-Type {content_type!r}: send application/sdp or multipart/form-data.")
    try:
        return body.decode("utf-8"), None
    except UnicodeDecodeError:
        raise ValueError("The SDP offer is not UTF-8 text.") from None


async def _form_text(value: UploadFile | str | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    data = await value.read()  # an UploadFile
    return data.decode("utf-8", errors="replace")


async def create_call(request: Request) -> Response:
    state = _state(request)
    key = _bearer(request.headers)
    if not state.key_accepted(key):
        return _auth_error(key)
    if state.closing:
        return _error(503, "The engine is stopping.", code="engine_stopping", type_="server_error")
    try:
        sdp, session = await _read_offer(request)
    except ValueError as exc:
        return _error(400, str(exc), code="invalid_offer", param="sdp")
    initial = _merge_session(state.secret_session(key), session)
    if session is not None:
        refused = _session_refusal(state.config, initial)
        if refused is not None:
            return refused

    call_id = "rtc_" + secrets.token_hex(12)
    peer = CallPeer(call_id, on_ended=lambda reason: state.end_call(call_id, reason))
    driver = state.new_driver(
        "webrtc", initial, player=peer.voice, on_closed=lambda _d, reason: state.end_call(call_id, reason)
    )
    peer.bind(driver)
    driver.attach(peer.events)
    try:
        answer = await peer.accept(sdp)
    except OfferError as exc:
        driver.close("bad offer")
        await peer.close()
        return _error(400, str(exc), code="invalid_offer", param="sdp")
    except Exception as exc:  # aiortc failing on something we did not foresee: still a clear 500
        log.exception("call %s: answering failed", call_id)
        driver.close("answer failed")
        await peer.close()
        return _error(500, f"Could not answer the offer: {exc}", code="answer_failed", type_="server_error")
    state.calls[call_id] = _Call(call_id, peer, driver)
    driver.start()
    log.info("call %s created", call_id)
    return Response(
        answer, status_code=201, media_type="application/sdp", headers={"Location": f"/v1/realtime/calls/{call_id}"}
    )


def _merge_session(base: dict[str, Any] | None, override: dict[str, Any] | None) -> dict[str, Any] | None:
    if base is None:
        return override
    if override is None:
        return dict(base)
    return {**base, **override}


async def hangup_call(request: Request) -> Response:
    state = _state(request)
    key = _bearer(request.headers)
    if not state.key_accepted(key):
        return _auth_error(key)
    call_id = request.path_params["call_id"]
    call = state.calls.get(call_id)
    if call is None:
        return _error(404, f"No call with id '{call_id}'.", code="call_not_found", param="call_id")
    state.end_call(call_id, "hung up")
    await call.peer.close()
    return Response(status_code=200)


async def create_client_secret(request: Request) -> Response:
    state = _state(request)
    key = _bearer(request.headers)
    if not state.key_accepted(key):
        return _auth_error(key)
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except RecursionError:
        return _error(400, "The request body is nested too deeply.", code="invalid_json")
    except (ValueError, UnicodeDecodeError) as exc:
        return _error(400, f"The request body is not valid JSON: {exc}.", code="invalid_json")
    if not isinstance(body, dict):
        return _error(400, "The request body must be a JSON object.", code="invalid_type")
    requested = body.get("session")
    if isinstance(requested, dict) and requested.get("type") == "transcription":
        return _error(
            400, "Only realtime sessions are supported by the local engine.", code="invalid_value", param="session.type"
        )
    try:
        validate_client_secret_request(body)
    except ClientEventError as exc:
        return _error(400, exc.message, code=exc.code, param=exc.param)
    ttl = state.config.client_secret_ttl_seconds
    expires_after = body.get("expires_after")
    if expires_after is not None:
        seconds = expires_after.get("seconds") if isinstance(expires_after, dict) else None
        if not isinstance(seconds, int) or isinstance(seconds, bool) or not 10 <= seconds <= 7200:
            return _error(
                400,
                "expires_after.seconds must be an integer between 10 and 7200.",
                code="invalid_value",
                param="expires_after.seconds",
            )
        ttl = seconds
    session = body.get("session")
    if session is not None and not isinstance(session, dict):
        return _error(400, "session must be a JSON object.", code="invalid_type", param="session")
    if session is not None and session.get("type", "realtime") != "realtime":
        return _error(
            400, "Only realtime sessions are supported by the local engine.", code="invalid_value", param="session.type"
        )
    rendered = _render_session(state.config, session)
    if isinstance(rendered, ClientEventError):
        return _error(400, rendered.message, code=rendered.code, param=rendered.param)
    secret = state.mint_secret(ttl, session)
    return JSONResponse(
        {
            "value": secret.value,
            "expires_at": int(secret.expires_at),
            "session": {
                **rendered,
                "id": "sess_" + secrets.token_hex(12),
                "object": "realtime.session",
                "expires_at": int(secret.expires_at),
            },
        }
    )


def _session_refusal(config: EngineConfig, session: dict[str, Any] | None) -> Response | None:
    """A 400 naming the parameter when ``session`` is not one the GA service (or this engine) takes."""
    try:
        validate_session(session)
    except ClientEventError as exc:
        return _error(400, exc.message, code=exc.code, param=exc.param)
    rendered = _render_session(config, session)
    if isinstance(rendered, ClientEventError):
        return _error(400, rendered.message, code=rendered.code, param=rendered.param)
    return None


def _render_session(config: EngineConfig, session: dict[str, Any] | None) -> dict[str, Any] | ClientEventError:
    """The session object a Session would announce for this config, or why it refuses it."""
    probe = Session(transport="webrtc", config=config, initial_session=session, now=time.monotonic())
    rendered: dict[str, Any] | None = None
    for effect in probe.start():
        if not isinstance(effect, Send):
            continue
        event = effect.event
        if event.get("type") == "error":
            error = event.get("error", {})
            message = str(error.get("message", "invalid session")).removeprefix("Invalid initial session: ")
            return ClientEventError(str(error.get("code") or "invalid_value"), message, None, error.get("param"))
        if event.get("type") in ("session.created", "session.updated"):
            rendered = event.get("session")
    return dict(rendered or {"type": "realtime"})


# -- WebSocket ---------------------------------------------------------------------------------

_CLOSE = object()
CLOSE_CODES = {"session_expired": 1001, "engine stopping": 1001}
"""WebSocket close codes by the reason a session closed (1000 otherwise): the real service closes a
session that hit its maximum duration with 1001 (going away)."""


class WebSocketSink:
    """Server events onto one WebSocket; a writer task drains the queue so ``send`` never blocks."""

    def __init__(self, ws: WebSocket, max_pending_bytes: int = MAX_PENDING_SEND_BYTES) -> None:
        self._ws = ws
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._reason: str | None = None
        self._code = 1000
        self._pending = 0  # bytes queued, not yet written
        self._max_pending = max_pending_bytes
        self.peak_pending = 0
        self.task = asyncio.get_running_loop().create_task(self._pump(), name="ws-writer")

    def send(self, event: dict[str, Any]) -> None:
        if self._reason is not None:
            return
        text = json.dumps(event, separators=(",", ":"))
        self._pending += len(text)
        self.peak_pending = max(self.peak_pending, self._pending)
        if self._pending > self._max_pending:
            self._overflow()
            return
        self._queue.put_nowait(text)

    def _overflow(self) -> None:
        """The client left too much unread: drop what is queued and close now (not behind the queue)."""
        log.info("websocket closed: the client left %d bytes of events unread", self._pending)
        self._reason, self._code = "client is not reading its events", 1008
        while not self._queue.empty():
            self._queue.get_nowait()
        self._pending = 0
        self.task.cancel()  # it may be stuck in a write the client never reads
        self.task = asyncio.get_running_loop().create_task(self._close_now(), name="ws-overflow-close")

    async def _close_now(self) -> None:
        try:
            await asyncio.wait_for(self._ws.close(code=self._code, reason=self._reason or ""), 5)
        except Exception as exc:
            log.debug("websocket close after overflow failed: %r", exc)

    @property
    def closing(self) -> bool:
        return self._reason is not None

    def close(self, reason: str, code: int | None = None) -> None:
        """Close after what is queued; the code is ``code`` or the one the real service uses for ``reason``."""
        if self._reason is None:
            self._reason = reason
            self._code = code if code is not None else CLOSE_CODES.get(reason, 1000)
            self._queue.put_nowait(_CLOSE)

    async def _pump(self) -> None:
        try:
            while True:
                item = await self._queue.get()
                if item is _CLOSE:
                    reason = (self._reason or "")[:120].encode("utf-8")[:120].decode("utf-8", "ignore")
                    await self._ws.close(code=self._code, reason=reason)
                    return
                self._pending -= len(item)
                await self._ws.send_text(item)
        except Exception as exc:  # the client went away; the reader side notices too
            log.debug("websocket writer stopped: %s", exc)


async def realtime_ws(ws: WebSocket) -> None:
    state = _state(ws)
    key, subprotocol = _ws_key(ws)
    if not state.key_accepted(key):
        await _deny(ws, _auth_error(key))
        return
    call_id = ws.query_params.get("call_id")
    if call_id:
        call = state.calls.get(call_id)
        if call is None:
            await _deny(ws, _error(404, f"No call with id '{call_id}'.", code="call_not_found", param="call_id"))
            return
        driver, owned = call.driver, False
    else:
        if state.closing:
            await _deny(ws, _error(503, "The engine is stopping.", code="engine_stopping", type_="server_error"))
            return
        driver, owned = state.new_driver("websocket", state.secret_session(key)), True
        # The model named in the URL is the session's model from its first event (no extra
        # session.updated, as with the real service).
        model = ws.query_params.get("model") or DEFAULT_MODEL
        driver.session.settings = dataclasses.replace(driver.session.settings, model=model)

    await ws.accept(subprotocol=subprotocol)
    state.sockets.add(ws)
    sink = WebSocketSink(ws)
    driver.attach(sink)
    if owned:
        driver.start()
    end_reason, end_code = "client disconnected", 1000
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            raw = message.get("text")
            if raw is None:
                raw = message.get("bytes") or b""
            driver.receive(raw)
            if driver.closed or sink.closing:
                break
    except Exception as exc:  # a broken socket ends this connection only; no traceback for client input
        log.info("websocket ended: %r", exc)
        end_reason, end_code = "internal error", 1011
    finally:
        state.sockets.discard(ws)
        driver.detach(sink)
        if owned:
            driver.close(end_reason)
        sink.close(end_reason, code=end_code)
        await sink.task


async def _deny(ws: WebSocket, response: Response) -> None:
    """Refuse the handshake with an HTTP status (the SDK raises InvalidStatus with this body)."""
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        await ws.send_denial_response(response)
    else:  # pragma: no cover - servers without the denial extension
        await ws.close(code=1008, reason=json.loads(bytes(response.body))["error"]["message"][:120])


# -- app ---------------------------------------------------------------------------------------


def build_app(config: EngineConfig | None = None) -> Starlette:
    """The engine as an ASGI app. ``app.state.engine`` is its ``EngineState``."""
    state = EngineState(config or EngineConfig())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await state.close_all()
            state.executor.shutdown(wait=True, cancel_futures=True)
            state.recognizer.shutdown(wait=True, cancel_futures=True)

    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/v1/realtime/calls", create_call, methods=["POST"]),
            Route("/v1/realtime/calls/{call_id}/hangup", hangup_call, methods=["POST"]),
            Route("/v1/realtime/client_secrets", create_client_secret, methods=["POST"]),
            WebSocketRoute("/v1/realtime", realtime_ws),
        ],
        lifespan=lifespan,
    )
    app.state.engine = state
    return app
