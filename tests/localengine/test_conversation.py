"""Unit tests for the sans-IO ``localengine.conversation.Session``.

Every server event of every test goes through ``Harness``, which validates it against the SDK's
``RealtimeServerEvent`` union and checks that its ``event_id`` is unique. Speech is faked: a
simple energy detector stands in for pocketsphinx VAD and synthesis results are pcm bytes made
here, so these tests need neither pocketsphinx nor espeak.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from localengine.config import EngineConfig
from localengine.conversation import (
    _HANDLERS,
    CancelTranscribe,
    ClearPlayback,
    Close,
    Play,
    Send,
    Session,
    StreamSpeech,
    Synthesize,
    Transcribe,
    TurnDetectionConfig,
)
from localengine.schema import CLIENT_EVENT_TYPES, validate_server_event
from tests.media import solid_png_data_url

SEEN_TYPES: set[str] = set()


# ------------------------------------------------------------------------------- fakes


@dataclass(frozen=True)
class Edge:
    kind: str
    audio_ms: int


class EnergyDetector:
    """20 ms frames; RMS over a threshold is speech; ``silence_ms`` of quiet ends it."""

    def __init__(self, td: TurnDetectionConfig) -> None:
        self.td = td
        self.silence_ms = td.silence_ms
        self.speaking = False
        self.quiet_ms = 0
        self.rest = b""
        self.pos_ms = 0
        self.speech_until_ms = None  # it does not say how far speech goes: turns are transcribed once committed

    def feed(self, pcm24k: bytes, *, at_ms: int) -> list[Edge]:
        data = self.rest + pcm24k
        frame = 960  # 20 ms at 24 kHz pcm16
        whole = len(data) - len(data) % frame
        self.rest = data[whole:]
        self.pos_ms = at_ms - (len(data) - len(pcm24k)) // 48
        edges = []
        for start in range(0, whole, frame):
            samples = np.frombuffer(data[start : start + frame], dtype="<i2").astype(np.float32)
            loud = float(np.sqrt(np.mean(samples**2))) > 500
            if loud and not self.speaking:
                self.speaking, self.quiet_ms = True, 0
                edges.append(Edge("started", self.pos_ms))
            elif self.speaking:
                self.quiet_ms = 0 if loud else self.quiet_ms + 20
                if self.quiet_ms >= self.silence_ms:
                    self.speaking = False
                    edges.append(Edge("stopped", self.pos_ms + 20))
            self.pos_ms += 20
        return edges


def tone(ms: int, amplitude: int = 8000) -> bytes:
    t = np.arange(ms * 24) / 24000
    return (amplitude * np.sin(2 * np.pi * 220 * t)).astype("<i2").tobytes()


def silence(ms: int) -> bytes:
    return bytes(ms * 48)


def b64(pcm: bytes) -> str:
    return base64.b64encode(pcm).decode("ascii")


class Harness:
    """Wraps a Session: validates every emitted event, keeps them, and offers short-hands."""

    def __init__(self, transport="websocket", initial=None, config=None, factory=EnergyDetector, start=True):
        self.config = config or EngineConfig()
        self.session = Session(transport, self.config, initial, 0.0, detector_factory=factory)
        self.events: list[dict] = []
        self.effects: list[object] = []
        self.ids: set[str] = set()
        self.now = 0.0
        if start:
            self.last = self._take(self.session.start())

    def _take(self, effects):
        for effect in effects:
            if isinstance(effect, Send):
                event = effect.event
                validate_server_event(event)
                json.dumps(event)  # wire-serialisable
                assert event["event_id"] not in self.ids, f"duplicate event_id {event['event_id']}"
                self.ids.add(event["event_id"])
                self.events.append(event)
                SEEN_TYPES.add(event["type"])
            self.effects.append(effect)
        self.last = list(effects)
        return self.last

    def send(self, event) -> list:
        raw = event if isinstance(event, (str, bytes)) else json.dumps(event)
        return self._take(self.session.receive(raw, self.now))

    def audio(self, pcm: bytes) -> list:
        return self._take(self.session.audio_in(pcm, self.now))

    def result(self, job_id, value) -> list:
        return self._take(self.session.speech_result(job_id, value, self.now))

    def tick(self, now: float) -> list:
        self.now = now
        return self._take(self.session.tick(now))

    def started(self, item_id):
        return self._take(self.session.playback_started(item_id, self.now))

    def progress(self, item_id, ms):
        return self._take(self.session.playback_progress(item_id, ms, self.now))

    def finished(self, item_id):
        return self._take(self.session.playback_finished(item_id, self.now))

    # views over the last batch
    def types(self, effects=None) -> list[str]:
        effects = self.last if effects is None else effects
        return [e.event["type"] if isinstance(e, Send) else type(e).__name__ for e in effects]

    def sent(self, kind: str, effects=None) -> list[dict]:
        effects = self.last if effects is None else effects
        return [e.event for e in effects if isinstance(e, Send) and e.event["type"] == kind]

    def one(self, kind: str, effects=None) -> dict:
        found = self.sent(kind, effects)
        assert len(found) == 1, (kind, self.types(effects))
        return found[0]

    def of(self, cls, effects=None):
        effects = self.last if effects is None else effects
        return [e for e in effects if isinstance(e, cls)]

    def update(self, **session) -> list:
        return self.send({"type": "session.update", "session": {"type": "realtime", **session}})

    def say(self, text: str, **extra) -> list:
        return self.send(
            {
                "type": "conversation.item.create",
                "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]},
                **extra,
            }
        )

    def respond(self, event_id=None, **response) -> list:
        event = {"type": "response.create", **({"response": response} if response else {})}
        return self.send({**event, **({"event_id": event_id} if event_id else {})})

    def reply_text(self, effects=None) -> str:
        done = self.sent("response.output_text.done", effects) or self.sent(
            "response.output_audio_transcript.done", effects
        )
        assert done, self.types(effects)
        text = done[-1].get("text", done[-1].get("transcript"))
        assert isinstance(text, str), done[-1]
        return text

    def spoken_reply(self, text: str, ms: int) -> Play:
        """Say ``text`` and answer it; its voice is ``ms`` of tone. Returns the one ``Play`` (WebRTC)."""
        self.say(text)
        self.respond()
        self.result(self.of(Synthesize)[0].job_id, tone(ms))
        (play,) = self.of(Play)
        return play

    def error(self, effects=None) -> dict:
        return self.one("error", effects)["error"]


@pytest.fixture(autouse=True, scope="module")
def _coverage_dump():
    yield
    out = os.environ.get("ENGINE_EVENT_COVERAGE")
    if out:
        with open(out, "w") as fh:
            json.dump(sorted(SEEN_TYPES), fh)


TEXT = {"output_modalities": ["text"]}
DELAYED_ADD = {
    "type": "function",
    "name": "delayed_add",
    "description": "Add two numbers slowly",
    "parameters": {
        "type": "object",
        "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
        "required": ["a", "b"],
    },
}
ECHO_UPPER = {
    "type": "function",
    "name": "echo_upper",
    "parameters": {"type": "object", "properties": {"text": {"type": "string"}}},
}


def text_session(**kw) -> Harness:
    h = Harness(**kw)
    h.update(**TEXT)
    return h


# ------------------------------------------------------------------------------ session


def test_start_announces_full_default_session():
    h = Harness(config=EngineConfig(vad_silence_ms=650))
    assert h.types() == ["session.created"]
    s = h.events[0]["session"]
    assert s["type"] == "realtime" and s["object"] == "realtime.session" and s["id"].startswith("sess_")
    assert s["model"] == "gpt-realtime"
    assert s["output_modalities"] == ["audio"]
    assert s["instructions"]
    assert s["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert s["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert s["audio"]["output"]["voice"] == "alloy"
    td = s["audio"]["input"]["turn_detection"]
    assert td["type"] == "server_vad" and td["silence_duration_ms"] == 650
    assert td["create_response"] is True and td["interrupt_response"] is True
    assert s["audio"]["input"]["transcription"] is None
    assert s["tools"] == [] and s["tool_choice"] == "auto"


def test_initial_session_is_applied_ga_and_beta_refused():
    ga = Harness(
        initial={
            "type": "realtime",
            "model": "gpt-realtime-mini",
            "instructions": "Be brief.",
            "audio": {"output": {"voice": "cedar"}},
            "output_modalities": ["text"],
        }
    )
    assert ga.types() == ["session.created", "session.updated"]
    s = ga.events[0]["session"]
    assert (s["model"], s["instructions"], s["audio"]["output"]["voice"], s["output_modalities"]) == (
        "gpt-realtime-mini",
        "Be brief.",
        "cedar",
        ["text"],
    )
    # The beta shape is refused (as by the GA service since 2026-05-12); the defaults stay.
    beta = Harness(
        initial={
            "modalities": ["text"],
            "voice": "ash",
            "turn_detection": None,
            "input_audio_transcription": {"model": "whisper-1"},
        }
    )
    assert beta.types() == ["session.created", "error"]
    assert (beta.error()["code"], beta.error()["param"]) == ("beta_api_shape_disabled", "session.modalities")
    s = beta.events[0]["session"]
    assert s["output_modalities"] == ["audio"] and s["audio"]["output"]["voice"] == "alloy"


def test_invalid_initial_session_reports_error_and_keeps_defaults():
    h = Harness(initial={"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcmu"}}}})
    assert h.types() == ["session.created", "error"]
    assert h.error()["code"] == "unsupported_audio_format"
    assert h.events[0]["session"]["audio"]["input"]["format"]["type"] == "audio/pcm"


def test_session_update_applies_every_supported_field():
    h = Harness()
    h.update(
        instructions="Say: Hi.",
        output_modalities=["text"],
        tools=[DELAYED_ADD],
        tool_choice="required",
        audio={
            "input": {
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.7,
                    "silence_duration_ms": 300,
                    "prefix_padding_ms": 100,
                    "create_response": False,
                    "interrupt_response": False,
                },
                "transcription": {"model": "gpt-4o-transcribe"},
            },
            "output": {"voice": "verse"},
        },
    )
    s = h.one("session.updated")["session"]
    assert s["instructions"] == "Say: Hi."
    assert s["output_modalities"] == ["text"]
    assert s["tools"][0]["name"] == "delayed_add" and s["tool_choice"] == "required"
    assert s["audio"]["output"]["voice"] == "verse"
    td = s["audio"]["input"]["turn_detection"]
    assert (td["threshold"], td["silence_duration_ms"], td["prefix_padding_ms"]) == (0.7, 300, 100)
    assert td["create_response"] is False and td["interrupt_response"] is False
    assert s["audio"]["input"]["transcription"]["model"] == "gpt-4o-transcribe"
    # semantic_vad, then turn detection off; fields not present are left alone
    h.update(audio={"input": {"turn_detection": {"type": "semantic_vad", "eagerness": "high"}}})
    s = h.one("session.updated")["session"]
    assert s["audio"]["input"]["turn_detection"]["type"] == "semantic_vad"
    assert s["audio"]["input"]["turn_detection"]["eagerness"] == "high"
    assert s["instructions"] == "Say: Hi."
    td = h.session.settings.turn_detection
    assert td is not None and td.silence_ms == 400
    h.update(audio={"input": {"turn_detection": None, "transcription": None}}, tools=[], tool_choice="auto")
    s = h.one("session.updated")["session"]
    assert s["audio"]["input"]["turn_detection"] is None and s["audio"]["input"]["transcription"] is None
    assert s["tools"] == []


def test_session_update_beta_shape_is_refused_and_changes_nothing():
    h = Harness()
    before = h.session.settings
    h.send(
        {
            "type": "session.update",
            "event_id": "e_beta",
            "session": {
                "modalities": ["text", "audio"],
                "voice": "sage",
                "instructions": "x",
                "temperature": 0.7,
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 900},
                "input_audio_format": "pcm16",
                "output_audio_format": "pcm16",
                "input_audio_transcription": {"model": "whisper-1"},
                "max_response_output_tokens": 50,
            },
        }
    )
    err = h.error()
    assert (err["code"], err["param"], err["event_id"]) == ("beta_api_shape_disabled", "session.modalities", "e_beta")
    assert h.session.settings == before


@pytest.mark.parametrize(
    "session, code",
    [
        ({"audio": {"output": {"format": {"type": "audio/pcma"}}}}, "unsupported_audio_format"),
        (
            {"tools": [{"type": "mcp", "server_label": "x", "server_url": "https://example.invalid"}]},
            "unsupported_tool",
        ),
        ({"tools": [{"type": "function", "description": "no name"}]}, "missing_required_parameter"),
        ({"tool_choice": {"type": "function", "name": "nope"}}, "invalid_value"),
        ({"output_modalities": []}, "invalid_value"),
        ({"audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 3}}}}, "invalid_value"),
        ({"audio": {"output": {"voice": {"id": "voice_custom"}}}}, "unsupported_voice"),
    ],
)
def test_session_update_refusals_change_nothing(session, code):
    h = Harness()
    before = h.session.settings
    h.send(
        {
            "type": "session.update",
            "event_id": "evt_upd",
            "session": {"type": "realtime", "instructions": "changed", **session},
        }
    )
    err = h.error()
    assert err["code"] == code and err["event_id"] == "evt_upd" and err["type"] == "invalid_request_error"
    assert h.session.settings == before


def test_transcription_session_type_is_refused():
    h = Harness()
    h.send({"type": "session.update", "session": {"type": "transcription"}})
    assert h.error()["code"] == "unsupported_session_type"


def test_voice_cannot_change_after_audio_but_same_voice_is_fine():
    h = Harness()
    h.say("hi")
    h.respond()
    (synth,) = h.of(Synthesize)
    assert synth.voice == "alloy"
    h.result(synth.job_id, tone(300))
    h.update(instructions="new", audio={"output": {"voice": "ash"}})
    assert h.error()["code"] == "cannot_update_voice"
    assert h.session.settings.voice == "alloy" and h.session.settings.instructions != "new"
    h.update(instructions="new", audio={"output": {"voice": "alloy"}})
    assert h.one("session.updated")["session"]["instructions"] == "new"
    h.say("again")
    h.respond(audio={"output": {"voice": "echo"}})
    assert h.error()["code"] == "cannot_update_voice"


def test_voice_change_before_any_audio_is_used_for_speech():
    h = Harness()
    h.update(audio={"output": {"voice": "shimmer"}})
    h.say("hi")
    h.respond()
    assert h.of(Synthesize)[0].voice == "shimmer"


# ------------------------------------------------------------------------------- items


def test_item_create_chain_previous_item_ids_root_and_insertion():
    h = Harness()
    h.say("one", event_id="e1")
    a = h.one("conversation.item.added")
    d = h.one("conversation.item.done")
    assert h.types() == ["conversation.item.added", "conversation.item.done"]
    assert a["previous_item_id"] is None and a["item"]["content"][0] == {"type": "input_text", "text": "one"}
    assert a["item"]["role"] == "user" and a["item"]["status"] == "completed" and d["item"]["id"] == a["item"]["id"]
    first = a["item"]["id"]
    h.say("three")
    third = h.one("conversation.item.added")["item"]["id"]
    assert h.one("conversation.item.added")["previous_item_id"] == first
    h.send(
        {
            "type": "conversation.item.create",
            "previous_item_id": first,
            "item": {
                "id": "item_two",
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "two"}],
            },
        }
    )
    assert h.one("conversation.item.added")["previous_item_id"] == first
    h.send(
        {
            "type": "conversation.item.create",
            "previous_item_id": "root",
            "item": {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "zero"}]},
        }
    )
    assert h.one("conversation.item.added")["previous_item_id"] is None
    texts = [i.content[0].text for i in h.session.items]
    assert texts == ["zero", "one", "two", "three"]
    assert [i.id for i in h.session.items][1:] == [first, "item_two", third]


def test_item_create_errors_keep_the_conversation():
    h = Harness()
    h.say("x", previous_item_id="item_missing", event_id="e_prev")
    err = h.error()
    assert err["code"] == "previous_item_not_found" and err["event_id"] == "e_prev" and "item_missing" in err["message"]
    h.send(
        {
            "type": "conversation.item.create",
            "item": {"id": "dup", "type": "message", "role": "user", "content": [{"type": "input_text", "text": "a"}]},
        }
    )
    h.send(
        {
            "type": "conversation.item.create",
            "item": {"id": "dup", "type": "message", "role": "user", "content": [{"type": "input_text", "text": "b"}]},
        }
    )
    assert h.error()["code"] == "item_already_exists"
    h.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": [{"type": "output_text", "text": "b"}]},
        }
    )
    assert h.error()["code"] == "invalid_value"
    h.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_text"}]},
        }
    )
    assert h.error()["code"] == "missing_required_parameter"
    h.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "mcp_approval_response", "id": "m", "approval_request_id": "r", "approve": True},
        }
    )
    assert h.error()["code"] == "unsupported_item_type"
    # a tool output must answer a function call in the conversation (the service checks the call id)
    output = {"type": "function_call_output", "call_id": "call_nowhere", "output": "{}"}
    h.send({"type": "conversation.item.create", "item": output})
    err = h.error()
    assert err["code"] == "tool_call_not_found" and "call_nowhere" in err["message"]
    call = {"type": "function_call", "call_id": "call_1", "name": "get_datetime", "arguments": "{}"}
    h.send({"type": "conversation.item.create", "item": call})
    h.send({"type": "conversation.item.create", "item": {**output, "call_id": "call_1"}})
    assert [i.type for i in h.session.items] == ["message", "function_call", "function_call_output"]
    assert [i.content[0].text for i in h.session.items if i.type == "message"] == ["a"]


def test_input_image_is_described_and_bad_image_is_refused():
    h = text_session()
    url = solid_png_data_url((20, 40, 230), size=(640, 480))
    h.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_image", "image_url": url}]},
        }
    )
    added = h.one("conversation.item.added")["item"]["content"][0]
    assert added["type"] == "input_image" and added["image_url"] == url
    h.say("What do you see?")
    h.respond()
    assert h.reply_text() == "I see a 640 by 480 image. It is mostly blue."
    usage = h.one("response.done")["response"]["usage"]
    assert usage["input_token_details"]["image_tokens"] == 85 + 170 * 2  # 640x480 = 2 tiles of 512
    h.send(
        {
            "type": "conversation.item.create",
            "event_id": "e_img",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_image", "image_url": "data:image/png;base64," + b64(b"not a png at all")}],
            },
        }
    )
    err = h.error()
    assert err["code"] == "invalid_image" and err["event_id"] == "e_img" and err["type"] == "invalid_request_error"
    assert len(h.session.items) == 3  # image, question, answer; the bad image was not added


def test_input_audio_item_is_transcribed_and_answered():
    h = text_session()
    h.update(audio={"input": {"transcription": {"model": "whisper-1"}, "turn_detection": None}})
    h.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_audio", "audio": b64(tone(500))}]},
        }
    )
    (job,) = h.of(Transcribe)
    assert len(job.pcm24k) == 500 * 48
    item_id = h.one("conversation.item.added")["item"]["id"]
    assert h.one("conversation.item.added")["item"]["content"][0]["transcript"] is None
    h.respond()
    assert h.types() == ["response.created"]  # waits for the words
    h.result(job.job_id, " hello from audio ")
    assert h.types()[:2] == [
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
    ]
    done = h.one("conversation.item.input_audio_transcription.completed")
    assert done["item_id"] == item_id and done["transcript"] == "hello from audio"
    assert h.reply_text() == "You said: hello from audio"


def test_transcription_events_only_when_configured_and_failures():
    h = text_session()
    h.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_audio", "audio": b64(tone(200))}]},
        }
    )
    (job,) = h.of(Transcribe)
    h.result(job.job_id, "quiet words")
    assert h.last == []
    h.respond()
    assert h.reply_text() == "You said: quiet words"
    h.update(audio={"input": {"transcription": {"model": "whisper-1"}}})
    h.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_audio", "audio": b64(tone(200))}]},
        }
    )
    (job,) = h.of(Transcribe)
    h.result(job.job_id, RuntimeError("decoder broke"))
    failed = h.one("conversation.item.input_audio_transcription.failed")
    assert "decoder broke" in failed["error"]["message"]
    assert h.result(job.job_id, "late") == []  # unknown/finished jobs are ignored


def test_delete_retrieve_truncate_and_their_errors():
    h = Harness(transport="websocket")
    h.say("hello")
    user_id = h.one("conversation.item.added")["item"]["id"]
    h.respond()
    synth = h.of(Synthesize)[0]
    h.result(synth.job_id, tone(1000))
    assistant_id = h.one("response.output_item.done")["item"]["id"]
    h.send({"type": "conversation.item.retrieve", "item_id": user_id})
    assert h.one("conversation.item.retrieved")["item"]["content"][0]["text"] == "hello"
    h.send({"type": "conversation.item.truncate", "item_id": assistant_id, "content_index": 0, "audio_end_ms": 400})
    t = h.one("conversation.item.truncated")
    assert (t["item_id"], t["content_index"], t["audio_end_ms"]) == (assistant_id, 0, 400)
    for event, code in [
        (
            {"type": "conversation.item.truncate", "item_id": assistant_id, "content_index": 0, "audio_end_ms": 5000},
            "item_truncate_invalid_audio_end_ms",
        ),
        (
            {"type": "conversation.item.truncate", "item_id": assistant_id, "content_index": 3, "audio_end_ms": 1},
            "item_truncate_invalid_content_index",
        ),
        (
            {"type": "conversation.item.truncate", "item_id": user_id, "content_index": 0, "audio_end_ms": 1},
            "item_truncate_invalid_item_id",
        ),
        (
            {"type": "conversation.item.truncate", "item_id": "nope", "content_index": 0, "audio_end_ms": 1},
            "item_truncate_invalid_item_id",
        ),
        ({"type": "conversation.item.retrieve", "item_id": "nope"}, "item_retrieve_invalid_item_id"),
        ({"type": "conversation.item.delete", "item_id": "nope"}, "item_delete_invalid_item_id"),
    ]:
        h.send({**event, "event_id": "e_" + code})
        err = h.error()
        assert (err["code"], err["event_id"]) == (code, "e_" + code)
    h.send({"type": "conversation.item.delete", "item_id": user_id})
    assert h.one("conversation.item.deleted")["item_id"] == user_id
    assert [i.id for i in h.session.items] == [assistant_id]


# ---------------------------------------------------------------------------- responses


def test_text_response_event_sequence_and_usage():
    h = text_session()
    h.say("hello there")
    h.respond()
    types = h.types()
    assert types[:4] == [
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
    ]
    deltas = h.sent("response.output_text.delta")
    assert len(deltas) >= 2 and "".join(d["delta"] for d in deltas) == "You said: hello there"
    assert types[4 + len(deltas) :] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "conversation.item.done",
        "response.done",
        "rate_limits.updated",
    ]
    created = h.one("response.created")["response"]
    done = h.one("response.done")["response"]
    assert created["status"] == "in_progress" and created["output"] == [] and created["id"] == done["id"]
    assert done["status"] == "completed" and done["output"][0]["content"][0] == {
        "type": "output_text",
        "text": "You said: hello there",
    }
    usage = done["usage"]
    assert usage["output_token_details"] == {"text_tokens": 6, "audio_tokens": 0}  # 21 chars / 4
    assert usage["input_token_details"]["text_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    limits = {r["name"]: r for r in h.one("rate_limits.updated")["rate_limits"]}
    assert limits["tokens"]["remaining"] == limits["tokens"]["limit"] - usage["total_tokens"]
    assert h.session.items[-1].role == "assistant" and h.session.items[-1].status == "completed"


def test_audio_response_over_websocket_streams_100ms_deltas():
    h = Harness()
    h.say("hello")
    h.respond()
    assert h.one("response.content_part.added")["part"] == {"type": "audio", "transcript": ""}
    (synth,) = h.of(Synthesize)
    assert synth.text == "You said: hello"
    pcm = tone(1250)
    h.result(synth.job_id, pcm)
    deltas = h.sent("response.output_audio.delta")
    chunks = [base64.b64decode(d["delta"]) for d in deltas]
    assert b"".join(chunks) == pcm and max(len(c) for c in chunks) <= 4800 and len(chunks) == 13
    assert h.types()[len(deltas) :] == [
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.content_part.done",
        "response.output_item.done",
        "conversation.item.done",
        "response.done",
        "rate_limits.updated",
    ]
    done = h.one("response.done")["response"]
    assert done["output"][0]["content"][0]["transcript"] == "You said: hello"
    assert done["usage"]["output_token_details"]["audio_tokens"] == 13  # 10 per second, rounded up
    assert not h.of(Play)


def test_audio_response_over_webrtc_plays_and_reports_buffer():
    h = Harness(transport="webrtc")
    play = h.spoken_reply("hello", ms=800)
    rid = h.one("response.done")["response"]["id"]
    assert play.response_id == rid and len(play.pcm24k) == 800 * 48
    assert not h.sent("response.output_audio.delta")
    assert h.started(play.item_id)[0].event == {
        **h.last[0].event,
        "type": "output_audio_buffer.started",
        "response_id": rid,
    }
    assert h.started(play.item_id) == []  # once
    h.progress(play.item_id, 400)
    assert h.last == []
    assert h.types(h.finished(play.item_id)) == ["output_audio_buffer.stopped"]
    assert h.one("output_audio_buffer.stopped")["response_id"] == rid
    assert h.finished(play.item_id) == []


def test_only_one_response_at_a_time_and_cancel():
    h = Harness()
    h.say("hello")
    h.respond()
    rid = h.one("response.created")["response"]["id"]
    synth = h.of(Synthesize)[0]
    h.respond(event_id="e_second")
    err = h.error()
    assert err["code"] == "conversation_already_has_active_response" and err["event_id"] == "e_second"
    h.send({"type": "response.cancel", "response_id": "resp_other"})
    assert h.error()["code"] == "response_cancel_not_active"
    h.send({"type": "response.cancel"})
    done = h.one("response.done")["response"]
    assert done["id"] == rid and done["status"] == "cancelled"
    assert done["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    assert done["output"][0]["status"] == "incomplete"
    assert h.result(synth.job_id, tone(300)) == []  # late audio is dropped
    h.send({"type": "response.cancel", "event_id": "e_cancel"})
    err = h.error()
    assert err["code"] == "response_cancel_not_active" and err["event_id"] == "e_cancel"
    h.respond(**TEXT)
    assert h.one("response.done")["response"]["status"] == "completed"


def test_response_overrides():
    h = Harness()
    h.say("hello")
    h.respond(instructions="Say: Override here.", output_modalities=["text"], metadata={"topic": "t1"})
    done = h.one("response.done")["response"]
    assert h.reply_text() == "Override here. You said: hello"
    assert done["metadata"] == {"topic": "t1"} and done["output_modalities"] == ["text"]
    assert not h.of(Synthesize)
    h.respond(output_modalities=["text"])
    assert h.reply_text() == "You said: hello"  # the override was for one response only
    h.respond(audio={"output": {"voice": "coral"}})
    assert h.of(Synthesize)[0].voice == "coral"
    assert h.one("response.created")["response"]["audio"]["output"]["voice"] == "coral"


def test_out_of_band_response_with_input_and_references():
    h = text_session()
    h.say("in the conversation")
    ref = h.one("conversation.item.added")["item"]["id"]
    before = h.session.items
    h.respond(
        conversation="none",
        input=[{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "only for this one"}]}],
    )
    assert h.reply_text() == "You said: only for this one"
    assert not h.sent("conversation.item.added") and not h.sent("conversation.item.done")
    assert h.one("response.done")["response"]["conversation_id"] is None
    assert h.session.items == before
    h.respond(conversation="none", input=[{"type": "item_reference", "id": ref}])
    assert h.reply_text() == "You said: in the conversation"
    h.respond(conversation="none", input=[{"type": "item_reference", "id": "missing"}])
    assert h.error()["code"] == "item_not_found"
    h.respond(conversation="none")  # no input: the default conversation is the context
    assert h.reply_text() == "You said: in the conversation"


def test_tool_call_then_function_output_answer():
    h = text_session()
    h.update(tools=[DELAYED_ADD, ECHO_UPPER])
    h.say("please delayed add three and 4")
    h.respond()
    item = h.one("response.output_item.added")["item"]
    assert item["type"] == "function_call" and item["name"] == "delayed_add" and item["status"] == "in_progress"
    args_done = h.one("response.function_call_arguments.done")
    assert json.loads(args_done["arguments"]) == {"a": 3, "b": 4}
    deltas = "".join(d["delta"] for d in h.sent("response.function_call_arguments.delta"))
    assert deltas == args_done["arguments"]
    done = h.one("response.done")["response"]
    assert done["output"][0]["type"] == "function_call" and done["output"][0]["call_id"] == args_done["call_id"]
    assert h.types()[-5:] == [
        "response.function_call_arguments.done",
        "response.output_item.done",
        "conversation.item.done",
        "response.done",
        "rate_limits.updated",
    ]
    h.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": args_done["call_id"], "output": "7"},
        }
    )
    h.respond()
    assert h.reply_text() == "delayed_add returned 7."


def test_tool_choice_none_required_and_named():
    h = text_session()
    h.update(tools=[DELAYED_ADD, ECHO_UPPER], tool_choice="none")
    h.say("delayed add 1 and 2")
    h.respond()
    assert h.reply_text() == "You said: delayed add 1 and 2"
    h.respond(tool_choice="required")
    assert h.one("response.function_call_arguments.done")["name"] == "delayed_add"
    h.say('shout "quiet words"')
    h.respond(tool_choice={"type": "function", "name": "echo_upper"})
    assert json.loads(h.one("response.function_call_arguments.done")["arguments"]) == {"text": "quiet words"}
    h.respond(tools=[], tool_choice="auto")
    assert h.reply_text() == 'You said: shout "quiet words"'


def test_max_output_tokens_makes_response_incomplete():
    h = text_session()
    h.say("count to 50")
    h.respond(max_output_tokens=5)
    done = h.one("response.done")["response"]
    assert done["status"] == "incomplete" and done["status_details"]["reason"] == "max_output_tokens"
    assert len(h.reply_text()) == 20


def test_synthesis_failure_fails_the_response():
    h = Harness()
    h.say("hello")
    h.respond()
    h.result(h.of(Synthesize)[0].job_id, OSError("espeak missing"))
    done = h.one("response.done")["response"]
    assert done["status"] == "failed" and "espeak missing" in done["status_details"]["error"]["message"]
    h.respond(**TEXT)  # the session goes on
    assert h.one("response.done")["response"]["status"] == "completed"


# ------------------------------------------------------------------------------ input audio


def speak(h: Harness, ms: int = 600, *, via_append=False, trailing_ms=700) -> list:
    out = []
    for chunk in (silence(200), tone(ms), silence(trailing_ms)):
        for start in range(0, len(chunk), 960 * 5):
            piece = chunk[start : start + 960 * 5]
            if via_append:
                out += h.send({"type": "input_audio_buffer.append", "audio": b64(piece)})
            else:
                out += h.audio(piece)
    h.last = out
    return out


def test_server_vad_turn_end_to_end():
    h = Harness(transport="webrtc")
    h.update(
        audio={
            "input": {
                "transcription": {"model": "whisper-1"},
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 500, "prefix_padding_ms": 100},
            }
        }
    )
    effects = speak(h, 600)
    types = h.types(effects)
    assert types[:7] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "Transcribe",
        "response.created",
    ]
    started = h.one("input_audio_buffer.speech_started", effects)
    stopped = h.one("input_audio_buffer.speech_stopped", effects)
    committed = h.one("input_audio_buffer.committed", effects)
    assert started["audio_start_ms"] == 200 and stopped["audio_end_ms"] == 1300
    assert started["item_id"] == stopped["item_id"] == committed["item_id"]
    (job,) = h.of(Transcribe, effects)
    assert len(job.pcm24k) == (1300 - 100) * 48  # from the prefix padding to the end of the turn
    h.result(job.job_id, "what time is it")
    assert h.one("conversation.item.input_audio_transcription.completed")["transcript"] == "what time is it"
    assert h.of(Synthesize)[0].text == "You said: what time is it"


class StreamingDetector:
    """Like the real detector: 20 ms frames, RMS over a threshold is speech, ``stopped`` is placed where the
    speech ended once ``silence_ms`` of quiet followed, and ``speech_until_ms`` says where speech ends so far."""

    def __init__(self, td: TurnDetectionConfig) -> None:
        self.silence_ms = td.silence_ms
        self.speaking, self.quiet_ms, self.end_ms, self.pos_ms = False, 0, 0, 0

    @property
    def speech_until_ms(self) -> int | None:
        return self.end_ms if self.speaking else None

    def feed(self, pcm24k: bytes, *, at_ms: int) -> list[Edge]:
        edges = []
        self.pos_ms = at_ms
        for start in range(0, len(pcm24k) - len(pcm24k) % 960, 960):
            samples = np.frombuffer(pcm24k[start : start + 960], dtype="<i2").astype(np.float32)
            loud = float(np.sqrt(np.mean(samples**2))) > 500
            if loud:
                if not self.speaking:
                    edges.append(Edge("started", self.pos_ms))
                self.speaking, self.quiet_ms, self.end_ms = True, 0, self.pos_ms + 20
            elif self.speaking:
                self.quiet_ms += 20
                if self.quiet_ms >= self.silence_ms:
                    self.speaking = False
                    edges.append(Edge("stopped", self.end_ms))
            self.pos_ms += 20
        return edges


def streaming_session(**config) -> Harness:
    h = Harness(transport="webrtc", factory=StreamingDetector, config=EngineConfig(**config) if config else None)
    h.update(
        audio={
            "input": {
                "transcription": {"model": "whisper-1"},
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 500, "prefix_padding_ms": 100},
            }
        }
    )
    return h


def feed(h: Harness, pcm: bytes) -> list:
    out = []
    for start in range(0, len(pcm), 960):
        out += h.audio(pcm[start : start + 960])
    h.last = out
    return out


def streamed(h: Harness, effects=None) -> tuple[set[str], bytes]:
    pieces = h.of(StreamSpeech, effects)
    return {p.job_id for p in pieces}, b"".join(p.pcm24k for p in pieces)


def test_a_turn_goes_to_the_recognizer_while_it_is_spoken_and_its_end_sends_only_the_rest():
    h = streaming_session()
    audio = silence(200) + tone(600) + silence(500)
    effects = feed(h, audio[: 800 * 48])
    jobs, sent = streamed(h, effects)
    assert len(jobs) == 1 and all(len(p.pcm24k) >= 100 * 48 for p in h.of(StreamSpeech, effects))
    assert sent == audio[100 * 48 : len(sent) + 100 * 48] and len(sent) >= 600 * 48  # the turn, from its padding
    pause = feed(h, audio[800 * 48 : 1280 * 48])
    assert h.of(StreamSpeech, pause) == []  # the quiet after the speech may not be the turn's: held back
    effects = feed(h, audio[1280 * 48 :])
    (job,) = h.of(Transcribe, effects)
    assert {job.job_id} == jobs and sent + job.pcm24k == audio[100 * 48 : 800 * 48]  # the turn's audio, once
    h.result(job.job_id, "what time is it")
    assert h.one("conversation.item.input_audio_transcription.completed")["transcript"] == "what time is it"
    assert h.of(Synthesize)[0].text == "You said: what time is it"
    assert h.of(CancelTranscribe) == []


def test_speech_after_a_pause_goes_on_in_the_same_stream_with_the_pause_in_it():
    h = streaming_session()
    audio = silence(200) + tone(400) + silence(300) + tone(400) + silence(500)
    effects = feed(h, audio)
    jobs, sent = streamed(h, effects)
    (job,) = h.of(Transcribe, effects)
    assert jobs == {job.job_id} and sent + job.pcm24k == audio[100 * 48 : 1300 * 48]
    assert len(h.sent("input_audio_buffer.committed")) == 1 and h.of(CancelTranscribe) == []


def test_a_turn_that_is_not_committed_drops_its_stream_and_the_next_turn_gets_its_own():
    h = streaming_session()
    jobs, _ = streamed(h, feed(h, silence(200) + tone(400)))
    effects = h.send({"type": "input_audio_buffer.clear"})
    assert [c.job_id for c in h.of(CancelTranscribe, effects)] == list(jobs)
    again, _ = streamed(h, feed(h, silence(200) + tone(400)))
    td = {"type": "server_vad", "silence_duration_ms": 700, "prefix_padding_ms": 100}
    effects = h.update(audio={"input": {"turn_detection": td}})
    assert [c.job_id for c in h.of(CancelTranscribe, effects)] == list(again) and again != jobs
    effects = feed(h, silence(200) + tone(400) + silence(800))
    third, sent = streamed(h, effects)
    (job,) = h.of(Transcribe, effects)
    assert third == {job.job_id} and third.isdisjoint(jobs | again)
    assert sent + job.pcm24k == (silence(200) + tone(400))[100 * 48 :]


def test_a_commit_in_the_middle_of_speech_finishes_the_stream_with_the_buffer():
    h = streaming_session()
    audio = silence(200) + tone(500)
    jobs, sent = streamed(h, feed(h, audio))
    effects = h.send({"type": "input_audio_buffer.commit"})
    (job,) = h.of(Transcribe, effects)
    assert {job.job_id} == jobs and sent + job.pcm24k == audio[100 * 48 :]
    assert h.of(CancelTranscribe, effects) == []


def test_a_turn_longer_than_the_buffer_is_transcribed_once_from_what_the_buffer_kept():
    h = streaming_session(max_input_audio_seconds=1)
    effects = feed(h, silence(200) + tone(1500) + silence(600))
    jobs, _ = streamed(h, effects)
    assert [c.job_id for c in h.of(CancelTranscribe, effects)] == list(jobs)  # its start was dropped
    (job,) = h.of(Transcribe, effects)
    assert job.job_id not in jobs and len(job.pcm24k) <= 1000 * 48


def test_vad_over_websocket_append_and_create_response_false():
    h = Harness()
    h.update(audio={"input": {"turn_detection": {"type": "server_vad", "create_response": False}}})
    effects = speak(h, 400, via_append=True)
    assert "input_audio_buffer.committed" in h.types(effects)
    assert "response.created" not in h.types(effects)
    (job,) = h.of(Transcribe, effects)
    assert h.result(job.job_id, "words") == []  # transcription not configured: no events


def test_semantic_vad_uses_eagerness_silence():
    seen = []

    def factory(td):
        seen.append(td)
        return EnergyDetector(td)

    h = Harness(factory=factory)
    h.update(audio={"input": {"turn_detection": {"type": "semantic_vad", "eagerness": "low"}}})
    assert seen[-1].type == "semantic_vad" and seen[-1].silence_ms == 1500
    effects = speak(h, 400, trailing_ms=1000)
    assert "input_audio_buffer.speech_stopped" not in h.types(effects)
    effects = h.audio(silence(600))
    assert "input_audio_buffer.speech_stopped" in h.types(effects)


def test_manual_commit_clear_and_empty_commit():
    h = Harness()
    h.update(audio={"input": {"turn_detection": None}})
    effects = speak(h, 400, via_append=True)
    assert effects == []  # no VAD
    h.send({"type": "input_audio_buffer.commit"})
    assert h.types() == [
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "Transcribe",
    ]
    assert len(h.of(Transcribe)[0].pcm24k) == (200 + 400 + 700) * 48
    h.send({"type": "input_audio_buffer.commit", "event_id": "e_commit"})
    err = h.error()
    assert err["code"] == "input_audio_buffer_commit_empty" and err["event_id"] == "e_commit"
    h.send({"type": "input_audio_buffer.append", "audio": b64(tone(300))})
    h.send({"type": "input_audio_buffer.clear"})
    assert h.types() == ["input_audio_buffer.cleared"]
    h.send({"type": "input_audio_buffer.commit"})
    assert h.error()["code"] == "input_audio_buffer_commit_empty"


def test_bad_audio_append_is_refused():
    h = Harness()
    h.send({"type": "input_audio_buffer.append", "audio": "***not base64***", "event_id": "e_a"})
    err = h.error()
    assert err["code"] == "invalid_value" and err["event_id"] == "e_a"
    h.send({"type": "input_audio_buffer.append", "audio": b64(b"\x01\x02\x03")})
    assert "even number of bytes" in h.error()["message"]


def test_input_audio_buffer_is_bounded():
    h = Harness(config=EngineConfig(max_input_audio_seconds=1))
    h.update(audio={"input": {"turn_detection": None}})
    for _ in range(30):
        h.send({"type": "input_audio_buffer.append", "audio": b64(tone(100))})
    h.send({"type": "input_audio_buffer.commit"})
    assert len(h.of(Transcribe)[0].pcm24k) == 1000 * 48  # only the newest second survives
    # audio kept inside items is bounded too: the oldest item loses its audio first
    first = h.session.items[0].id
    h.send({"type": "input_audio_buffer.append", "audio": b64(tone(600))})
    h.send({"type": "input_audio_buffer.commit"})
    h.send({"type": "conversation.item.retrieve", "item_id": first})
    assert "audio" not in h.one("conversation.item.retrieved")["item"]["content"][0]
    h.send({"type": "conversation.item.retrieve", "item_id": h.session.items[-1].id})
    assert len(base64.b64decode(h.one("conversation.item.retrieved")["item"]["content"][0]["audio"])) == 600 * 48


# ------------------------------------------------------------------------------ barge-in


def test_barge_in_over_webrtc_clears_playback_and_truncates_at_played_ms():
    h = Harness(transport="webrtc")
    play = h.spoken_reply("count to twenty", ms=4000)
    h.started(play.item_id)
    h.progress(play.item_id, 700)
    effects = speak(h, 300)
    types = h.types(effects)
    i = types.index("input_audio_buffer.speech_started")
    assert types[i + 1 : i + 4] == ["ClearPlayback", "output_audio_buffer.cleared", "conversation.item.truncated"]
    assert h.one("output_audio_buffer.cleared", effects)["response_id"] == play.response_id
    t = h.one("conversation.item.truncated", effects)
    assert (t["item_id"], t["audio_end_ms"]) == (play.item_id, 700)
    assert h.finished(play.item_id) == []  # cleared audio does not report stopped
    truncated = next(i for i in h.session.items if i.id == play.item_id)
    assert truncated.content[0].audio_ms == 700
    full = play_text = h.of(Synthesize, h.effects)[0].text
    assert play_text.endswith("nineteen, twenty.")
    heard = truncated.content[0].transcript
    assert heard and full.startswith(heard) and len(heard) < len(full) * 700 / 4000 + 1


def test_barge_in_cancels_active_response_and_drops_its_audio():
    h = Harness(transport="webrtc")
    h.say("hello")
    h.respond()
    synth = h.of(Synthesize)[0]
    effects = speak(h, 300)
    done = h.one("response.done", effects)["response"]
    assert done["status"] == "cancelled" and done["status_details"]["reason"] == "turn_detected"
    assert h.result(synth.job_id, tone(500)) == []
    assert not [e for e in h.effects if isinstance(e, Play)]


def test_no_barge_in_when_interrupt_response_is_false():
    h = Harness(transport="webrtc")
    h.update(
        audio={
            "input": {"turn_detection": {"type": "server_vad", "interrupt_response": False, "create_response": False}}
        }
    )
    play = h.spoken_reply("hello", ms=2000)
    effects = speak(h, 300)
    assert "output_audio_buffer.cleared" not in h.types(effects) and not h.of(ClearPlayback, effects)
    assert h.types(h.finished(play.item_id)) == ["output_audio_buffer.started", "output_audio_buffer.stopped"]


def test_websocket_barge_in_cancels_but_leaves_truncation_to_the_client():
    h = Harness()
    h.say("hello")
    h.respond()
    effects = speak(h, 300)
    assert h.one("response.done", effects)["response"]["status"] == "cancelled"
    assert not h.sent("conversation.item.truncated", effects) and not h.of(ClearPlayback, effects)


def test_output_audio_buffer_clear():
    h = Harness(transport="webrtc")
    play = h.spoken_reply("hello", ms=1000)
    h.started(play.item_id)
    h.send({"type": "output_audio_buffer.clear"})
    assert h.types() == ["ClearPlayback", "output_audio_buffer.cleared"]
    assert h.one("output_audio_buffer.cleared")["response_id"] == play.response_id
    ws = Harness()
    ws.send({"type": "output_audio_buffer.clear", "event_id": "e_clr"})
    err = ws.error()
    assert err["code"] == "unsupported_for_transport" and err["event_id"] == "e_clr"


# ------------------------------------------------------------------------- limits, errors


def test_session_expires_after_max_duration():
    h = Harness(config=EngineConfig(max_session_seconds=120))
    assert h.tick(119.9) == []
    effects = h.tick(120.0)
    assert h.types(effects) == ["error", "Close"]
    assert h.error(effects)["code"] == "session_expired" and "2 minutes" in h.error(effects)["message"]
    assert h.of(Close, effects)[0].reason == "session_expired"
    assert h.session.closed
    assert h.say("hello") == [] and h.tick(500) == [] and h.audio(tone(100)) == []


@pytest.mark.parametrize(
    "raw, code, event_id",
    [
        ("{not json", "invalid_json", None),
        ('{"type": "response.creat", "event_id": "e_typo"}', "invalid_value", "e_typo"),
        ('{"type": "conversation.item.delete", "item_id": 42, "event_id": "e_int"}', "invalid_type", "e_int"),
        (
            '{"type": "conversation.item.truncate", "item_id": "x", "event_id": "e_miss"}',
            "missing_required_parameter",
            "e_miss",
        ),
        ('{"event_id": "e_notype"}', "missing_required_parameter", "e_notype"),
        ('["a", "list"]', "invalid_type", None),
    ],
)
def test_malformed_events_get_an_error_and_the_session_goes_on(raw, code, event_id):
    h = text_session()
    h.send(raw)
    err = h.error()
    assert err["type"] == "invalid_request_error" and err["code"] == code and err["event_id"] == event_id
    assert err["message"]
    h.say("still here")
    h.respond()
    assert h.reply_text() == "You said: still here"


def test_oversize_event_is_refused_with_its_event_id():
    h = text_session(config=EngineConfig(max_event_bytes=2000))
    big = json.dumps({"event_id": "e_big", "type": "input_audio_buffer.append", "audio": b64(tone(100))})
    assert len(big) > 2000
    h.send(big)
    err = h.error()
    assert err["code"] == "event_too_large" and err["event_id"] == "e_big" and "2000" in err["message"]
    h.say("ok")
    h.respond()
    assert h.reply_text() == "You said: ok"


def test_beta_names_on_input():
    h = Harness()
    h.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "assistant", "content": [{"type": "text", "text": "earlier answer"}]},
        }
    )
    assert h.one("conversation.item.added")["item"]["content"][0] == {"type": "output_text", "text": "earlier answer"}
    h.say("hi")
    # The beta response shape is refused (GA since 2026-05-12); its GA twin works.
    h.send({"type": "response.create", "response": {"modalities": ["text"], "temperature": 0.8}})
    assert h.error()["code"] == "beta_api_shape_disabled"
    h.send({"type": "response.create", "response": {"output_modalities": ["text"]}})
    assert h.reply_text() == "You said: hi"
    h.send({"type": "response.create", "response": {"voice": "ballad"}})
    assert (h.error()["code"], h.error()["param"]) == ("beta_api_shape_disabled", "response.voice")
    h.send(
        {
            "type": "response.create",
            "response": {"output_modalities": ["audio"], "audio": {"output": {"voice": "ballad"}}},
        }
    )
    assert h.of(Synthesize)[0].voice == "ballad"


def test_greeting_with_nothing_to_answer_and_say_instructions():
    h = text_session()
    h.update(instructions="Say: Welcome to the demo.\nOther lines are ignored.")
    h.respond()
    assert h.reply_text().startswith("Welcome to the demo. Hello!")


def test_internal_failure_is_an_error_event_not_a_crash():
    class Broken:
        def feed(self, pcm24k, *, at_ms):
            raise RuntimeError("vad exploded")

    h = Harness(factory=lambda td: Broken())
    effects = h.audio(tone(100))
    err = h.error(effects)
    assert err["type"] == "server_error" and "vad exploded" in err["message"]
    h.send({"type": "input_audio_buffer.append", "audio": b64(tone(100)), "event_id": "e_boom"})
    assert h.error()["event_id"] == "e_boom"
    h.say("still fine")
    h.respond(**TEXT)
    assert h.reply_text() == "You said: still fine"


def test_every_client_event_type_has_a_handler():
    assert sorted(_HANDLERS) == sorted(CLIENT_EVENT_TYPES)


def test_constructor_rejects_unknown_transport():
    transport: Any = "carrier-pigeon"  # not a transport, whatever the annotation says
    with pytest.raises(ValueError):
        Session(transport, EngineConfig(), None, 0.0)
