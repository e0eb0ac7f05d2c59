"""Share links: the setup round-trips through query parameters; junk and keys never get in."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from realtime.settings import MODELS, TRANSCRIPTION_MODELS, VOICES, CameraSettings, Settings, TurnDetection
from realtime.share import PARAM_NAMES, settings_from_query, settings_to_query, share_url
from realtime.tools import DEFAULT_TOOL_NAMES

KEY = "sk-test-NEVER-IN-A-LINK-abcdef0123456789"
BASE = Settings()


def shareable(s: Settings) -> Settings:
    """Everything a link carries (key, endpoint and ICE servers are the server's own)."""
    return s.replace(api_key="", base_url=None, ice_servers=())


settings_strategy = st.builds(
    Settings,
    api_key=st.just(KEY),
    model=st.sampled_from(MODELS),
    voice=st.sampled_from(VOICES),
    instructions=st.text(min_size=1, max_size=300).filter(lambda t: t.strip() != ""),
    turn_detection=st.builds(
        TurnDetection,
        mode=st.sampled_from(["server_vad", "semantic_vad", "none"]),
        threshold=st.floats(0, 1, allow_nan=False),
        silence_ms=st.integers(0, 10_000),
        prefix_padding_ms=st.integers(0, 10_000),
        eagerness=st.sampled_from(["low", "medium", "high", "auto"]),
    ),
    transcription_model=st.sampled_from(("", *TRANSCRIPTION_MODELS)),
    output_modalities=st.sampled_from(["audio", "text"]),
    camera=st.builds(
        CameraSettings,
        enabled=st.booleans(),
        interval_s=st.floats(0.2, 3600, allow_nan=False),
        max_side=st.integers(64, 4096),
        detail=st.sampled_from(["auto", "low", "high"]),
        max_images=st.integers(1, 50),
    ),
    tools=st.lists(st.sampled_from(DEFAULT_TOOL_NAMES), unique=True).map(tuple),
)


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
        "model": "gpt-realtime",
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
    }
    assert tuple(settings_to_query(s)) == PARAM_NAMES
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
    ):
        assert name in text, name
    assert len(warnings) == 15
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
