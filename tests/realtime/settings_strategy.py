"""One Hypothesis strategy over the whole settings space (every field, every choice the SDK lists).

Reused by the share-link and preset round trips, the SDK validation of ``session_payload`` and
(the lead's) property test of the local engine: import ``settings_strategy`` from here.
"""

from __future__ import annotations

from hypothesis import strategies as st

from realtime.settings import (
    AUDIO_CODECS,
    EAGERNESS,
    MAX_OUTPUT_TOKENS,
    MODELS,
    NOISE_REDUCTIONS,
    REASONING_EFFORTS,
    SPEED_RANGE,
    TOOL_CHOICES,
    TRANSCRIPTION_MODELS,
    TRUNCATIONS,
    VOICES,
    CameraSettings,
    Settings,
    TurnDetection,
)
from realtime.tools import DEFAULT_TOOL_NAMES

__all__ = ["KEY", "settings_strategy", "turn_detection_strategy"]

KEY = "sk-" + "test-NEVER-IN-A-LINK-abcdef0123456789"  # built, so no key-shaped literal sits in the source

_short_text = st.text(max_size=80)
_id = st.from_regex(r"[A-Za-z0-9_.\-]{1,30}", fullmatch=True)

turn_detection_strategy = st.builds(
    TurnDetection,
    mode=st.sampled_from(["server_vad", "semantic_vad", "none"]),
    threshold=st.floats(0, 1, allow_nan=False),
    silence_ms=st.integers(0, 10_000),
    prefix_padding_ms=st.integers(0, 10_000),
    eagerness=st.sampled_from(EAGERNESS),
    idle_timeout_ms=st.none() | st.integers(1, 3_600_000),
)

settings_strategy = st.builds(
    Settings,
    api_key=st.just(KEY),
    model=st.sampled_from(MODELS),
    reasoning_effort=st.none() | st.sampled_from(REASONING_EFFORTS),
    voice=st.sampled_from(VOICES),
    voice_speed=st.floats(*SPEED_RANGE, allow_nan=False),
    instructions=st.text(min_size=1, max_size=300).filter(lambda t: t.strip() != ""),
    turn_detection=turn_detection_strategy,
    noise_reduction=st.sampled_from([None, *NOISE_REDUCTIONS[1:]]),
    transcription_model=st.sampled_from(("", *TRANSCRIPTION_MODELS)),
    transcription_language=st.sampled_from(["", "en", "fr", "de", "pt-BR"]),
    transcription_prompt=_short_text,
    output_modalities=st.sampled_from(["audio", "text"]),
    max_output_tokens=st.just("inf") | st.integers(1, MAX_OUTPUT_TOKENS),
    camera=st.builds(
        CameraSettings,
        enabled=st.booleans(),
        interval_s=st.floats(0.2, 3600, allow_nan=False),
        max_side=st.integers(64, 4096),
        detail=st.sampled_from(["auto", "low", "high"]),
        max_images=st.integers(1, 50),
    ),
    tools=st.lists(st.sampled_from(DEFAULT_TOOL_NAMES), unique=True).map(tuple),
    tool_choice=st.sampled_from(TOOL_CHOICES),
    parallel_tool_calls=st.booleans(),
    truncation=st.sampled_from(TRUNCATIONS),
    truncation_retention_ratio=st.floats(0, 1, allow_nan=False),
    prompt_id=st.just("") | _id.map(lambda s: "pmpt_" + s),
    prompt_version=st.just("") | st.from_regex(r"[0-9]{1,3}", fullmatch=True),
    prompt_variables=st.dictionaries(st.text(min_size=1, max_size=20), _short_text, max_size=3).map(
        lambda d: tuple(d.items())
    ),
    audio_codec=st.sampled_from(AUDIO_CODECS),
)
