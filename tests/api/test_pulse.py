"""The pulse socket tells a tab's live part when what it shows has changed, and only then."""

from __future__ import annotations

import gc
import threading
import time

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from api.pulse import CLOSE_UNKNOWN, PulseBoard, pulse_boards, pulse_route, signature


@pytest.fixture
def client():
    with TestClient(Starlette(routes=[pulse_route()])) as c:
        yield c


class Value:
    """What a live part shows, changed by the test from its own thread."""

    def __init__(self, value: object) -> None:
        self.value = value
        self.reads = 0

    def read(self) -> object:
        self.reads += 1
        return self.value


def _set_later(target: Value, value: object, delay_s: float) -> None:
    def later() -> None:
        time.sleep(delay_s)
        target.value = value

    threading.Thread(target=later, daemon=True).start()


def test_signatures_follow_the_value_and_a_failing_read_has_its_own():
    assert signature(lambda: ("connected", 3)) == signature(lambda: ("connected", 3))
    assert signature(lambda: ("connected", 3)) != signature(lambda: ("connected", 4))

    def broken() -> object:
        raise KeyError("gone")

    assert signature(broken) == "error:KeyError"


def test_nothing_is_said_until_the_value_changes_then_the_new_signature_once(client):
    board = PulseBoard()
    shown = Value(("connected", 1))
    board.register("transcript", shown.read, interval_s=0.02)
    token = pulse_boards().register(board)
    drawn = signature(shown.read)
    with client.websocket_connect(f"/studio/pulse/{token}/transcript") as ws:
        ws.send_text(drawn)
        started = time.monotonic()
        _set_later(shown, ("connected", 2), 0.5)
        told = ws.receive_text()
        assert time.monotonic() - started >= 0.45  # not before the change
        assert told == signature(lambda: ("connected", 2))
        assert shown.reads >= 10  # the server kept comparing meanwhile (every 20 ms)

        # the page reran and drew the new value: a further change is told again
        ws.send_text(told)
        _set_later(shown, ("closed", 2), 0.2)
        assert ws.receive_text() == signature(lambda: ("closed", 2))


def test_a_page_that_has_not_drawn_yet_is_told_nothing_and_unknown_tokens_are_closed(client):
    board = PulseBoard()
    shown = Value("a")
    board.register("status", shown.read, interval_s=0.02)
    token = pulse_boards().register(board)
    with client.websocket_connect(f"/studio/pulse/{token}/status") as ws:
        shown.value = "b"  # changed before the page said what it drew: nothing to compare with yet
        ws.send_text(signature(lambda: "a"))
        assert ws.receive_text() == signature(lambda: "b")

    for url in (f"/studio/pulse/{token}/no-such-topic", "/studio/pulse/not-a-token/status"):
        with client.websocket_connect(url) as ws, pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == CLOSE_UNKNOWN


def test_a_board_lives_with_its_session_not_with_its_token():
    board = PulseBoard()
    token = pulse_boards().register(board)
    assert pulse_boards().get(token) is board
    del board
    gc.collect()
    assert pulse_boards().get(token) is None
