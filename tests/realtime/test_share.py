"""Share links: the setup round-trips through query parameters; junk and keys never get in."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from hypothesis import given
from hypothesis import settings as hsettings

from realtime.settings import Settings
from realtime.share import PARAM_NAMES, settings_from_query, settings_to_query, share_url
from tests.realtime.settings_strategy import KEY, settings_strategy

BASE = Settings()


def shareable(s: Settings) -> Settings:
    """Everything a link carries (key, endpoint and ICE servers are the server's own)."""
    return s.replace(api_key="", base_url=None, ice_servers=())


@hsettings(max_examples=150, deadline=None)
@given(settings_strategy)
def test_any_setup_round_trips_through_the_link_and_never_carries_the_key(s):
    query = settings_to_query(s)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in query.items())
    assert KEY not in "".join(query) + "".join(query.values())
    restored, warnings = settings_from_query(query, BASE)
    assert warnings == ()
    assert shareable(restored) == shareable(s)
    assert restored.api_key == ""  # the receiver's own key (none here), not the sender's


@hsettings(max_examples=50, deadline=None)
@given(settings_strategy)
def test_the_url_form_round_trips_too(s):
    url = share_url("http://127.0.0.1:8501/History?old=1#frag", s)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path, parts.fragment) == ("http", "127.0.0.1:8501", "/History", "")
    params = parse_qs(parts.query, keep_blank_values=True)
    assert "old" not in params
    restored, warnings = settings_from_query(params, BASE)  # lists, as parse_qs gives them
    assert warnings == () and shareable(restored) == shareable(s)


def test_the_encoding_is_readable_and_stable():
    s = BASE.replace(
        voice="cedar",
        instructions="Be brief.",
        turn_detection={"mode": "none"},
        camera={"enabled": False, "interval_s": 2.5},
        tools=("get_datetime", "echo_upper"),
        transcription_model="",
    )
    assert settings_to_query(s) == {
        "v": "1",
        "model": "gpt-realtime-2.1",
        "voice": "cedar",
        "instructions": "Be brief.",
        "turn": "push_to_talk",
        "threshold": "0.5",
        "silence_ms": "500",
        "padding_ms": "300",
        "eagerness": "auto",
        "transcription": "off",
        "output": "audio",
        "camera": "off",
        "camera_interval": "2.5",
        "camera_max": "1024",
        "camera_detail": "auto",
        "max_images": "3",
        "tools": "get_datetime,echo_upper",
        "reasoning": "default",
        "speed": "1",
        "noise": "off",
        "idle_ms": "off",
        "transcription_language": "",
        "transcription_prompt": "",
        "max_tokens": "inf",
        "tool_choice": "auto",
        "parallel_tools": "on",
        "truncation": "auto",
        "retention_ratio": "0.8",
        "prompt_id": "",
        "prompt_version": "",
        "prompt_variables": "",
        "codec": "opus",
        "scenario": "assistant",
        "camera_policy": "turn",
    }
    assert tuple(settings_to_query(s)) == PARAM_NAMES
    rich = s.replace(
        reasoning_effort="high",
        voice_speed=1.25,
        noise_reduction="far_field",
        turn_detection={"mode": "server_vad", "idle_timeout_ms": 6000},
        transcription_model="gpt-realtime-whisper",
        transcription_language="fr",
        transcription_prompt="Paris metro stations",
        max_output_tokens=512,
        tool_choice="required",
        parallel_tool_calls=False,
        truncation="retention_ratio",
        truncation_retention_ratio=0.5,
        prompt_id="pmpt_123",
        prompt_version="4",
        prompt_variables={"city": "Paris"},
        audio_codec="pcmu",
        scenario="front_desk",
    )
    q = settings_to_query(rich)
    assert (q["reasoning"], q["speed"], q["noise"], q["idle_ms"], q["max_tokens"]) == (
        "high",
        "1.25",
        "far_field",
        "6000",
        "512",
    )
    assert (q["truncation"], q["retention_ratio"], q["prompt_variables"], q["codec"]) == (
        "retention_ratio",
        "0.5",
        '{"city":"Paris"}',
        "pcmu",
    )
    assert q["scenario"] == "front_desk"
    assert settings_from_query(q, BASE) == (rich.replace(api_key=""), ())
    assert "model" not in settings_to_query(s, include_model=False)
    url = share_url("http://localhost:8501/", s)
    assert "tools=get_datetime,echo_upper" in url and "instructions=Be+brief." in url


def test_a_key_or_an_endpoint_in_the_link_is_ignored_with_a_warning():
    restored, warnings = settings_from_query(
        {
            "api_key": "sk-evil",
            "key": "sk-evil2",
            "OPENAI_API_KEY": "sk-evil3",
            "base_url": "https://evil.example/v1",
            "voice": "ash",
        },
        BASE,
    )
    assert restored.api_key == "" and restored.base_url is None
    assert restored.voice == "ash"
    assert len(warnings) == 4
    assert sum("never carries an API key" in w for w in warnings) == 3
    assert any("endpoint" in w for w in warnings)
    assert not any("sk-evil" in w for w in warnings)  # the value is not echoed back


def test_the_receivers_own_key_is_kept():
    mine = Settings(api_key="sk-mine-1234567890")
    restored, _ = settings_from_query({"key": "sk-theirs-000", "voice": "sage"}, mine)
    assert restored.api_key == "sk-mine-1234567890" and restored.voice == "sage"


def test_junk_values_are_ignored_one_by_one_and_the_rest_applies():
    params = {
        "voice": "robot",
        "threshold": "1.7",
        "silence_ms": "abc",
        "padding_ms": "12.5",
        "camera": "maybe",
        "camera_interval": "nan",
        "camera_max": "99999",
        "output": "smell",
        "turn": "telepathy",
        "eagerness": "very",
        "instructions": "   ",
        "model": "bad model!",
        "transcription": "<script>",
        "tools": "get_datetime,rm_rf,echo_upper",
        "wat": "1",
        "camera_detail": "high",
        "max_images": "7",
        "reasoning": "extreme",
        "speed": "3",
        "noise": "loud",
        "idle_ms": "-5",
        "transcription_language": "French!",
        "max_tokens": "9999",
        "tool_choice": "always",
        "parallel_tools": "maybe",
        "truncation": "sometimes",
        "retention_ratio": "1.5",
        "prompt_id": "has space",
        "prompt_variables": "[1, 2]",
        "codec": "mp3",
        "camera_policy": "sometimes",
    }
    restored, warnings = settings_from_query(params, BASE)
    # the valid ones were applied
    assert restored.camera.detail == "high" and restored.camera.max_images == 7
    assert restored.tools == ("get_datetime", "echo_upper")
    # everything else kept its value
    assert shareable(restored) == shareable(
        BASE.replace(camera={"detail": "high", "max_images": 7}, tools=("get_datetime", "echo_upper"))
    )
    text = "\n".join(warnings)
    for name in (
        "voice",
        "threshold",
        "silence_ms",
        "padding_ms",
        "camera",
        "camera_interval",
        "camera_max",
        "output",
        "turn",
        "eagerness",
        "instructions",
        "model",
        "transcription",
        "rm_rf",
        "wat",
        "reasoning",
        "speed",
        "noise",
        "idle_ms",
        "transcription_language",
        "max_tokens",
        "tool_choice",
        "parallel_tools",
        "truncation",
        "retention_ratio",
        "prompt_id",
        "prompt_variables",
        "codec",
        "camera_policy",
    ):
        assert name in text, name
    assert len(warnings) == 29
    assert "Voice must be one of" in text  # the settings' own words say what is accepted


def test_repeated_params_use_the_last_value_and_say_so():
    restored, warnings = settings_from_query({"voice": ["ash", "verse"]}, BASE)
    assert restored.voice == "verse" and len(warnings) == 1 and "2 times" in warnings[0]
    restored, warnings = settings_from_query({"voice": ["ash", "ash"], "tools": []}, BASE)
    assert restored.voice == "ash" and warnings == () and restored.tools == BASE.tools


def test_empty_and_unrelated_queries_change_nothing():
    assert settings_from_query({}, BASE) == (BASE, ())
    restored, warnings = settings_from_query({"v": "9", "voice": "echo"}, BASE)
    assert restored.voice == "echo" and len(warnings) == 1 and "version" in warnings[0]


def test_long_junk_is_not_echoed_in_full():
    restored, warnings = settings_from_query({"voice": "x" * 5000}, BASE)
    assert restored == BASE and len(warnings[0]) < 400


def test_the_scenario_is_carried_as_text_and_trusted_by_the_page_not_here():
    # Any spec is carried (the page lets through only built-ins and the server's own: ui.scenario_choice)
    spec = "/x/my agents.py:agent"
    assert settings_to_query(BASE.replace(scenario=spec))["scenario"] == spec
    assert "&scenario=%2Fx%2Fmy+agents.py:agent" in share_url("http://h/", BASE.replace(scenario=spec))
    assert settings_from_query({"scenario": f"  {spec} "}, BASE) == (BASE.replace(scenario=spec), ())
    for junk in ("", "   ", "a\nb", "x" * 501):
        settings, warnings = settings_from_query({"scenario": junk, "voice": "ash"}, BASE)
        assert settings == BASE.replace(voice="ash")
        assert len(warnings) == 1 and warnings[0].startswith("Ignored scenario=") and "scenario name" in warnings[0]


def test_the_frame_policy_is_carried_and_an_older_link_keeps_the_receivers():
    for policy in ("interval", "turn", "manual"):
        s = BASE.replace(camera={"policy": policy, "interval_s": 3.0})
        query = settings_to_query(s)
        assert query["camera_policy"] == policy
        assert settings_from_query(query, BASE) == (s, ())
    assert settings_from_query({"camera_policy": " Manual "}, BASE)[0].camera.policy == "manual"
    # a link from before the setting existed leaves the receiver's choice alone
    receiver = BASE.replace(camera={"policy": "manual"})
    old_link = {k: v for k, v in settings_to_query(BASE).items() if k != "camera_policy"}
    assert settings_from_query(old_link, receiver)[0].camera.policy == "manual"
    restored, warnings = settings_from_query({"camera_policy": "often"}, BASE)
    assert restored == BASE and len(warnings) == 1
    assert warnings[0].startswith("Ignored camera_policy='often'") and "interval, turn, manual" in warnings[0]
