"""errors: real openai SDK exceptions (from a loopback HTTP server answering like the provider)
turned into messages for people, never carrying the key."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import cast

import openai
import pytest
from openai.types.realtime import RealtimeSessionCreateRequestParam

from realtime.errors import BridgeError, classify, describe_error, redact
from realtime.events import ErrorInfo, ProviderError, read_server_event
from realtime.settings import Settings

KEY = "sk-proj-SECRETKEY0123456789abcdefXYZ"

# The API key selects the answer: "status-401" -> 401, etc.
ANSWERS = {
    401: ("invalid_api_key", "Incorrect API key provided: sk-proj-****XYZ. You can find your API key at ..."),
    403: ("model_not_allowed", "Project does not have access to model gpt-realtime"),
    404: ("model_not_found", "The model 'gpt-nope' does not exist or you do not have access to it."),
    429: ("rate_limit_exceeded", "Rate limit reached for gpt-realtime in organization org-1"),
    4291: ("insufficient_quota", "You exceeded your current quota, please check your plan and billing details."),
    400: ("invalid_value", "Invalid value: 'robot'. Supported values are: 'alloy', ..."),
    500: ("server_error", "The server had an error while processing your request."),
    409: (None, "conflict"),
}


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        key = self.headers.get("authorization", "").removeprefix("Bearer ")
        code = int(key.removeprefix("status-")) if key.startswith("status-") else 401
        err_code, message = ANSWERS[code]
        status = 429 if code == 4291 else code
        body = json.dumps({"error": {"message": message, "type": "invalid_request_error", "code": err_code}}).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def provider():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()
    thread.join()


async def sdk_error(base_url: str, key: str) -> openai.OpenAIError:
    client = openai.AsyncOpenAI(api_key=key, base_url=base_url, max_retries=0, timeout=5)
    try:
        session = cast(RealtimeSessionCreateRequestParam, Settings().session_payload())
        await client.realtime.calls.create(sdp="v=0\r\n", session=session)
    except openai.OpenAIError as exc:
        return exc
    finally:
        await client.close()
    raise AssertionError("the call did not fail")


@pytest.mark.parametrize(
    "code, kind, status, fragment",
    [
        (401, "auth", 401, "The provider rejected the API key (401). Check OPENAI_API_KEY."),
        (403, "auth", 403, "not allowed to use the Realtime API or this model (403)"),
        (404, "model", 404, "does not know this model or endpoint (404). Check REALTIME_MODEL"),
        (429, "rate_limit", 429, "rate limiting this key (429)"),
        (4291, "rate_limit", 429, "out of quota (429)"),
        (400, "config", 400, "refused the session settings (400). Provider said: Invalid value: 'robot'"),
        (500, "provider", 500, "had a problem (500)"),
        (409, "provider", 409, "answered with an error (409)"),
    ],
)
async def test_sdk_status_errors(provider, code, kind, status, fragment):
    exc = await sdk_error(provider, f"status-{code}")
    err = classify(exc, secrets=[f"status-{code}"])
    assert isinstance(err, BridgeError)
    assert (err.kind, err.status) == (kind, status)
    assert fragment in err.message, err.message
    assert f"status-{code}" not in err.message
    assert "sk-proj" not in err.message  # the SDK's own message shows part of the key; ours never does
    assert str(err) == err.message


async def test_connection_refused_is_a_connection_error():
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}/v1"
    exc = await sdk_error(base, KEY)
    assert isinstance(exc, openai.APIConnectionError)
    err = classify(exc, secrets=[KEY], base_url=base)
    assert err.kind == "connection" and err.status is None
    assert err.message == f"Could not reach the realtime provider at {base}. Check the network and OPENAI_BASE_URL."


async def test_timeout_is_a_connection_error():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()  # accepts, never answers
    try:
        client = openai.AsyncOpenAI(
            api_key=KEY, base_url=f"http://127.0.0.1:{listener.getsockname()[1]}/v1", max_retries=0, timeout=0.3
        )
        with pytest.raises(openai.APITimeoutError) as info:
            await client.realtime.calls.create(sdp="v=0\r\n")
        await client.close()
    finally:
        listener.close()
    err = classify(info.value)
    assert err.kind == "connection" and "did not answer in time" in err.message


@pytest.mark.parametrize(
    "exc, kind, fragment",
    [
        (TimeoutError(), "connection", "timed out"),
        (ConnectionResetError(f"reset while using {KEY}"), "connection", "failed: reset while using [redacted]"),
        (OSError("Network is unreachable"), "connection", "Network is unreachable"),
        (ValueError("bad SDP"), "config", "Invalid configuration: bad SDP"),
        (RuntimeError(f"Bearer {KEY} leaked"), "provider", "Unexpected error (RuntimeError): [redacted] leaked."),
    ],
)
def test_other_exceptions(exc, kind, fragment):
    err = classify(exc)
    assert err.kind == kind and fragment in err.message and KEY not in err.message


@pytest.mark.parametrize(
    "error, kind, fragment",
    [
        (
            {"type": "invalid_request_error", "code": "invalid_api_key", "message": f"Incorrect API key {KEY}"},
            "auth",
            "rejected the API key: Incorrect API key [redacted]",
        ),
        (
            {"type": "invalid_request_error", "code": "model_not_found", "message": "no such model"},
            "model",
            "no such model",
        ),
        (
            {"type": "rate_limit_error", "code": "rate_limit_exceeded", "message": "slow down"},
            "rate_limit",
            "slow down",
        ),
        (
            {"type": "invalid_request_error", "code": "invalid_image", "message": "image too large"},
            "media",
            "image too large",
        ),
        (
            {"type": "invalid_request_error", "code": "unknown_parameter", "message": "Unknown parameter: 'x'"},
            "config",
            "refused a request: Unknown parameter",
        ),
        ({"type": "server_error", "message": "oops"}, "provider", "reported an error: oops"),
        ({"type": "server_error", "message": "x" * 1000}, "provider", "…"),
    ],
)
def test_error_events(error, kind, fragment):
    event = read_server_event({"type": "error", "event_id": "e1", "error": error})
    assert isinstance(event, ProviderError)
    err = describe_error(event.error, secrets=[KEY])
    assert err.kind == kind and fragment in err.message and KEY not in err.message
    assert len(err.message) < 400
    assert err.code == error.get("code")


def test_malformed_error_events():
    for bad in ({"type": "error"}, {"type": "error", "error": "boom"}):
        event = read_server_event(bad)
        assert isinstance(event, ProviderError)
        err = describe_error(event.error)
        assert err.kind == "provider" and err.message == "The provider reported an error without details."


def test_redact():
    assert redact(f"key={KEY}!") == "key=[redacted]!"
    assert redact("my custom secret value", ["custom secret"]) == "my [redacted] value"
    assert redact("ordinary text about sk- things") == "ordinary text about sk- things"


def test_the_session_cap_reads_as_the_end_of_a_session_not_a_refused_request():
    cap = ErrorInfo("invalid_request_error", "session_expired", "Your session hit the maximum duration of 60 minutes.")
    error = describe_error(cap)
    assert error.kind == "connection" and error.code == "session_expired"
    assert error.message == "The provider ended the session: Your session hit the maximum duration of 60 minutes."
