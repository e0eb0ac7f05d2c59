"""Every session the app can produce is one the strict local engine (as strict as the GA service)
accepts, at call set-up and as a mid-call ``session.update``; and a typo is refused."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import settings as hsettings

from localengine.config import EngineConfig
from localengine.conversation import Send, Session
from realtime.settings import Settings
from tests.realtime.settings_strategy import settings_strategy


def _sent(effects: list[Any]) -> list[dict[str, Any]]:
    return [e.event for e in effects if isinstance(e, Send)]


def _errors(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["error"] for e in events if e["type"] == "error"]


@hsettings(max_examples=150)
@given(settings_strategy)
def test_every_session_the_sidebar_can_make_is_accepted(settings: Settings):
    payload = settings.session_payload()
    session = Session("webrtc", EngineConfig(), initial_session=payload)
    started = _sent(session.start())
    assert not _errors(started), _errors(started)
    assert [e["type"] for e in started] == ["session.created", "session.updated"]
    # mid-call, as the bridge sends it: without the model (and without the voice once it has spoken)
    update = {"type": "session.update", "event_id": "evt_1", "session": settings.session_payload(omit=("model",))}
    answered = _sent(session.receive(json.dumps(update), now=1.0))
    assert not _errors(answered), _errors(answered)
    assert answered[-1]["type"] == "session.updated"
    no_voice = {**update, "session": settings.session_payload(omit=("model", "voice"))}
    assert not _errors(_sent(session.receive(json.dumps(no_voice), now=2.0)))


def test_a_typo_in_a_field_name_is_refused_and_changes_nothing():
    settings = Settings(instructions="Say: first.")
    session = Session("webrtc", EngineConfig(), initial_session=settings.session_payload())
    session.start()
    typo = {"type": "session.update", "event_id": "evt_typo", "session": {"type": "realtime", "instructionz": "x"}}
    (error,) = _errors(_sent(session.receive(json.dumps(typo), now=1.0)))
    assert error["type"] == "invalid_request_error" and error["param"] == "session.instructionz"
    assert error["event_id"] == "evt_typo"
    again = {"type": "session.update", "session": {"type": "realtime"}}
    (updated,) = _sent(session.receive(json.dumps(again), now=2.0))
    assert updated["session"]["instructions"] == "Say: first."
