"""The one typed settings object, and the one place that renders the Realtime ``session`` payload.

Where values come from (later wins): built-in defaults < environment variables < Streamlit secrets
(``st.secrets``, same key names as the environment) < sidebar changes (``settings.replace(...)``).
Secrets win over the environment because they are the app's own configuration file, while the
environment is often inherited from a shell.

| name | default | meaning |
|---|---|---|
| ``OPENAI_API_KEY`` | (none) | with a key the backend is OpenAI, without one the offline local engine |
| ``OPENAI_BASE_URL`` | ``https://api.openai.com/v1`` | OpenAI-compatible endpoint |
| ``REALTIME_MODEL`` | ``DEFAULT_MODEL`` (``gpt-realtime-2.1``) | realtime model (``MODELS``, or any name); restart |
| ``REALTIME_REASONING_EFFORT`` | (model default) | ``REASONING_EFFORTS``; only for gpt-realtime-2* |
| ``REALTIME_VOICE`` | ``marin`` | one of ``VOICES`` |
| ``REALTIME_VOICE_SPEED`` | ``1.0`` | ``audio.output.speed``, 0.25..1.5 |
| ``REALTIME_NOISE_REDUCTION`` | ``off`` | ``off``, ``near_field`` or ``far_field`` |
| ``REALTIME_INSTRUCTIONS`` | ``DEFAULT_INSTRUCTIONS`` | system instructions |
| ``REALTIME_TURN_DETECTION`` | ``server_vad`` | ``server_vad``, ``semantic_vad`` or ``none`` (push to talk) |
| ``REALTIME_VAD_THRESHOLD`` | ``0.5`` | server VAD threshold, 0..1 |
| ``REALTIME_VAD_SILENCE_MS`` | ``500`` | server VAD silence before end of turn |
| ``REALTIME_VAD_PREFIX_PADDING_MS`` | ``300`` | server VAD audio kept before speech |
| ``REALTIME_VAD_IDLE_TIMEOUT_MS`` | (off) | server VAD: answer by itself after this much silence; empty or 0 = off |
| ``REALTIME_VAD_EAGERNESS`` | ``auto`` | semantic VAD: ``low``, ``medium``, ``high``, ``auto`` |
| ``REALTIME_TRANSCRIPTION_MODEL`` | ``gpt-4o-mini-transcribe`` | ``TRANSCRIPTION_MODELS``; empty = off |
| ``REALTIME_TRANSCRIPTION_LANGUAGE`` | (auto) | ISO-639-1 language of the input audio, e.g. ``en`` |
| ``REALTIME_TRANSCRIPTION_PROMPT`` | (none) | guidance text for the transcription model |
| ``REALTIME_OUTPUT_MODALITIES`` | ``audio`` | ``audio`` (voice + transcript) or ``text`` |
| ``REALTIME_MAX_OUTPUT_TOKENS`` | ``inf`` | per response: 1..4096 or ``inf`` |
| ``REALTIME_TOOL_CHOICE`` | ``auto`` | ``auto``, ``none`` or ``required`` |
| ``REALTIME_PARALLEL_TOOL_CALLS`` | ``on`` | let the model call several tools at once (reasoning models only) |
| ``REALTIME_TRUNCATION`` | ``auto`` | ``auto``, ``disabled`` or ``retention_ratio`` |
| ``REALTIME_TRUNCATION_RETENTION_RATIO`` | ``0.8`` | with ``retention_ratio``: fraction kept, 0..1 |
| ``REALTIME_PROMPT_ID`` | (none) | a reusable prompt (``pmpt_...``) |
| ``REALTIME_PROMPT_VERSION`` | (latest) | its version |
| ``REALTIME_PROMPT_VARIABLES`` | ``{}`` | JSON object of its variables (string values) |
| ``REALTIME_AUDIO_CODEC`` | ``opus`` | phone line: ``opus``, ``pcmu``, ``pcma`` (in the SDP, not ``session``) |
| ``REALTIME_CAMERA`` | ``on`` | send camera frames (``on``/``off``) |
| ``REALTIME_CAMERA_INTERVAL_S`` | ``2`` | at most one frame every N seconds |
| ``REALTIME_FRAME_POLICY`` | ``turn`` | when frames go: ``turn`` (at speech), ``interval``, ``manual`` |
| ``REALTIME_CAMERA_MAX_SIDE`` | ``1024`` | frames are resized to this longest side |
| ``REALTIME_CAMERA_DETAIL`` | ``auto`` | image detail: ``auto``, ``low``, ``high`` |
| ``REALTIME_MAX_IMAGES`` | ``3`` | images kept in the conversation |
| ``REALTIME_TOOLS`` | all tools | comma list of enabled tool names; empty = none |
| ``REALTIME_ICE_SERVERS`` | ``[]`` | JSON list of ICE servers for the browser leg |

Choices (models, voices, transcription models, efforts, noise reduction, eagerness, tool choice,
truncation) are read from the pinned SDK's types in ``openai.types.realtime``: the SDK is the schema.
Bad values raise ``SettingsError`` naming every offending setting and what it accepts.
The API key is stripped of whitespace and quotes and never appears in ``repr``/``str``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin, get_type_hints

from openai.types.realtime import RealtimeSessionCreateRequestParam
from openai.types.realtime.audio_transcription_param import AudioTranscriptionParam
from openai.types.realtime.noise_reduction_type import NoiseReductionType
from openai.types.realtime.realtime_audio_config_output_param import Voice
from openai.types.realtime.realtime_audio_input_turn_detection_param import SemanticVad
from openai.types.realtime.realtime_reasoning_effort import RealtimeReasoningEffort
from openai.types.realtime.realtime_truncation_param import RealtimeTruncationParam
from openai.types.realtime.realtime_truncation_retention_ratio_param import RealtimeTruncationRetentionRatioParam
from openai.types.responses.tool_choice_options import ToolChoiceOptions

from .frame_policy import DEFAULT_FRAME_POLICY, FRAME_POLICIES, FrameMode
from .tools import DEFAULT_TOOL_NAMES, DEFAULT_TOOLS, ToolRegistry

if TYPE_CHECKING:
    from .local_engine import LocalEngine

__all__ = [
    "AUDIO_CODECS",
    "DEFAULT_BASE_URL",
    "DEFAULT_INSTRUCTIONS",
    "DEFAULT_MODEL",
    "EAGERNESS",
    "FRAME_POLICIES",
    "LIVE_FIELDS",
    "MODELS",
    "NOISE_REDUCTIONS",
    "REASONING_EFFORTS",
    "RESTART_FIELDS",
    "SDK_MODELS",
    "TOOL_CHOICES",
    "TRANSCRIPTION_MODELS",
    "TRUNCATIONS",
    "VOICES",
    "CameraSettings",
    "Connection",
    "IceServer",
    "Settings",
    "SettingsError",
    "TurnDetection",
    "restart_required",
    "takes_reasoning",
]


def _literals(tp: Any) -> tuple[str, ...]:
    """Every string in the ``Literal``s inside ``tp`` (through unions and ``Optional``), in order."""
    if get_origin(tp) is Literal:
        return tuple(a for a in get_args(tp) if isinstance(a, str))
    found: list[str] = []
    if get_origin(tp) is Union:
        for arg in get_args(tp):
            found += _literals(arg)
    return tuple(dict.fromkeys(found))


def _field_literals(typed_dict: type, name: str) -> tuple[str, ...]:
    return _literals(get_type_hints(typed_dict)[name])


# Every model name the pinned SDK types for a realtime session ...
SDK_MODELS: tuple[str, ...] = _field_literals(RealtimeSessionCreateRequestParam, "model")
# ... minus the gpt-4o realtime previews the GA service no longer serves, and minus the gpt-audio
# models (Chat Completions audio models, listed in the same Literal, not realtime session models).
_NOT_SERVED = re.compile(r"^gpt-4o(-mini)?-realtime-preview|^gpt-audio")
MODELS: tuple[str, ...] = tuple(m for m in SDK_MODELS if not _NOT_SERVED.match(m))
_FLAGSHIP = re.compile(r"^gpt-realtime(?:-(\d+(?:\.\d+)*))?$")  # no -mini, no dated snapshot


def _newest_flagship(models: Collection[str]) -> str:
    """The highest-versioned undated, non-mini ``gpt-realtime[-N[.M]]`` (plain ``gpt-realtime`` is 1)."""
    versions = {}
    for m in models:
        match = _FLAGSHIP.match(m)
        if match:
            versions[m] = tuple(int(x) for x in (match.group(1) or "1").split("."))
    return max(versions, key=versions.__getitem__)


DEFAULT_MODEL: str = _newest_flagship(MODELS)
# Reasoning (``reasoning.effort``, ``parallel_tool_calls``) is for "reasoning-capable Realtime models
# such as gpt-realtime-2" (SDK docstrings): the gpt-realtime-2 family, not gpt-realtime-2025-08-28.
_REASONING = re.compile(r"^gpt-realtime-2(?:\.\d+)*(?:-|$)")
REASONING_EFFORTS: tuple[str, ...] = get_args(RealtimeReasoningEffort)
VOICES: tuple[str, ...] = _literals(Voice)
TRANSCRIPTION_MODELS: tuple[str, ...] = _field_literals(AudioTranscriptionParam, "model")
NOISE_REDUCTIONS: tuple[str, ...] = ("off", *get_args(NoiseReductionType))
EAGERNESS: tuple[str, ...] = _field_literals(SemanticVad, "eagerness")
TOOL_CHOICES: tuple[str, ...] = get_args(ToolChoiceOptions)
TRUNCATIONS: tuple[str, ...] = (
    *_literals(RealtimeTruncationParam),
    *_field_literals(RealtimeTruncationRetentionRatioParam, "type"),
)
MAX_OUTPUT_TOKENS = 4096  # "an integer between 1 and 4096 ... or inf" (SDK docstring)
SPEED_RANGE = (0.25, 1.5)  # audio.output.speed (SDK docstring)
AudioCodec = Literal["opus", "pcmu", "pcma"]
AUDIO_CODECS: tuple[str, ...] = get_args(AudioCodec)


def takes_reasoning(model: str) -> bool:
    """Whether ``model`` takes ``reasoning`` and ``parallel_tool_calls`` (the gpt-realtime-2 family)."""
    return bool(_REASONING.match(model.strip().lower()))


DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_INSTRUCTIONS = (
    "You are a friendly, concise voice assistant in a live demo. Answer in one or two short sentences. "
    "When the user shows you something on camera, describe what you see plainly. "
    "Use the tools you have when they help."
)

TurnMode = Literal["server_vad", "semantic_vad", "none"]
Eagerness = Literal["low", "medium", "high", "auto"]  # for the type checker; the choices are EAGERNESS
Detail = Literal["auto", "low", "high"]
Modality = Literal["audio", "text"]
TruncationMode = Literal["auto", "disabled", "retention_ratio"]  # for the type checker; choices: TRUNCATIONS
TURN_MODES: tuple[str, ...] = get_args(TurnMode)
DETAILS: tuple[str, ...] = get_args(Detail)
MODALITIES: tuple[str, ...] = get_args(Modality)

# Fields a live call can take through ``session.update`` (voice only until the first audio: the
# bridge decides that) and fields that need a new call. Camera settings are applied locally by the
# frame throttle. ICE servers belong to the browser leg, which must be reconnected.
# The phone-line codec is negotiated in the SDP offer, so it needs a new call too.
LIVE_FIELDS: tuple[str, ...] = (
    "voice",
    "voice_speed",
    "instructions",
    "reasoning_effort",
    "turn_detection",
    "noise_reduction",
    "transcription_model",
    "transcription_language",
    "transcription_prompt",
    "output_modalities",
    "max_output_tokens",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "truncation",
    "truncation_retention_ratio",
    "prompt_id",
    "prompt_version",
    "prompt_variables",
    "camera",
)
RESTART_FIELDS: tuple[str, ...] = ("backend", "api_key", "base_url", "model", "audio_codec", "ice_servers", "scenario")

_AUDIO_FORMAT = {"type": "audio/pcm", "rate": 24000}
_MAX_IDLE_MS = 3_600_000  # a session lasts at most 60 minutes
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


class SettingsError(ValueError):
    """One or more settings are invalid; ``problems`` lists each one as a sentence."""

    def __init__(self, problems: Collection[str]):
        self.problems = tuple(problems)
        super().__init__("Invalid settings: " + " ".join(self.problems))


def _check(problems: list[str], ok: bool, message: str) -> None:
    if not ok:
        problems.append(message)


@dataclass(frozen=True)
class TurnDetection:
    """How the end of the user's turn is found. ``mode="none"`` is push to talk."""

    mode: TurnMode = "server_vad"
    threshold: float = 0.5
    silence_ms: int = 500
    prefix_padding_ms: int = 300
    eagerness: Eagerness = "auto"
    idle_timeout_ms: int | None = None  # server VAD only; None = off

    def problems(self) -> list[str]:
        p: list[str] = []
        _check(p, self.mode in TURN_MODES, f"Turn detection must be one of {', '.join(TURN_MODES)}, not {self.mode!r}.")
        _check(p, 0.0 <= self.threshold <= 1.0, f"VAD threshold must be between 0 and 1, not {self.threshold}.")
        _check(p, 0 <= self.silence_ms <= 10_000, f"VAD silence must be 0..10000 ms, not {self.silence_ms}.")
        _check(
            p,
            0 <= self.prefix_padding_ms <= 10_000,
            f"VAD prefix padding must be 0..10000 ms, not {self.prefix_padding_ms}.",
        )
        _check(
            p,
            self.eagerness in EAGERNESS,
            f"VAD eagerness must be one of {', '.join(EAGERNESS)}, not {self.eagerness!r}.",
        )
        _check(
            p,
            self.idle_timeout_ms is None or 1 <= self.idle_timeout_ms <= _MAX_IDLE_MS,
            f"VAD idle timeout must be 1..{_MAX_IDLE_MS} ms or off, not {self.idle_timeout_ms}.",
        )
        return p

    def payload(self) -> dict[str, Any] | None:
        """``session.audio.input.turn_detection`` (None turns it off: push to talk)."""
        if self.mode == "server_vad":
            return {
                "type": "server_vad",
                "threshold": self.threshold,
                "silence_duration_ms": self.silence_ms,
                "prefix_padding_ms": self.prefix_padding_ms,
                "idle_timeout_ms": self.idle_timeout_ms,  # an explicit null turns it off mid-call
                "create_response": True,
                "interrupt_response": True,
            }
        if self.mode == "semantic_vad":
            return {
                "type": "semantic_vad",
                "eagerness": self.eagerness,
                "create_response": True,
                "interrupt_response": True,
            }
        return None


@dataclass(frozen=True)
class CameraSettings:
    enabled: bool = True
    interval_s: float = 2.0
    max_side: int = 1024
    detail: Detail = "auto"
    max_images: int = 3
    policy: FrameMode = DEFAULT_FRAME_POLICY  # when frames go: realtime.frame_policy

    def problems(self) -> list[str]:
        p: list[str] = []
        _check(p, 0.2 <= self.interval_s <= 3600, f"Camera interval must be 0.2..3600 s, not {self.interval_s}.")
        _check(p, 64 <= self.max_side <= 4096, f"Camera max side must be 64..4096 px, not {self.max_side}.")
        _check(p, self.detail in DETAILS, f"Camera detail must be one of {', '.join(DETAILS)}, not {self.detail!r}.")
        _check(p, 1 <= self.max_images <= 50, f"Max images must be 1..50, not {self.max_images}.")
        _check(
            p,
            self.policy in FRAME_POLICIES,
            f"Frame policy (REALTIME_FRAME_POLICY) must be one of {', '.join(FRAME_POLICIES)}, not {self.policy!r}.",
        )
        return p


@dataclass(frozen=True)
class IceServer:
    """One entry of the browser leg's ``rtc_configuration.iceServers``."""

    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"urls": list(self.urls)}
        if self.username is not None:
            d["username"] = self.username
        if self.credential is not None:
            d["credential"] = self.credential
        return d


@dataclass(frozen=True)
class Connection:
    """Where the bridge connects: the effective base URL and key (local engine or OpenAI)."""

    base_url: str
    api_key: str = field(repr=False)


def clean_key(raw: str | None) -> str:
    """Strip whitespace and one or more layers of matching or stray quotes from a pasted key."""
    if raw is None:
        return ""
    key = str(raw).strip()
    while key and key[0] in "\"'":
        key = key[1:].strip()
    while key and key[-1] in "\"'":
        key = key[:-1].strip()
    return key


@dataclass(frozen=True)
class Settings:
    api_key: str = field(default="", repr=False)
    base_url: str | None = None
    model: str = DEFAULT_MODEL
    reasoning_effort: RealtimeReasoningEffort | None = None  # None: the model's default
    voice: str = "marin"
    voice_speed: float = 1.0
    instructions: str = DEFAULT_INSTRUCTIONS
    turn_detection: TurnDetection = TurnDetection()
    noise_reduction: NoiseReductionType | None = None  # None: off
    transcription_model: str = "gpt-4o-mini-transcribe"
    transcription_language: str = ""  # "": detected
    transcription_prompt: str = ""
    output_modalities: Modality = "audio"
    max_output_tokens: int | Literal["inf"] = "inf"
    camera: CameraSettings = CameraSettings()
    tools: tuple[str, ...] = DEFAULT_TOOL_NAMES
    tool_choice: ToolChoiceOptions = "auto"
    parallel_tool_calls: bool = True
    truncation: TruncationMode = "auto"
    truncation_retention_ratio: float = 0.8  # used with truncation="retention_ratio"
    prompt_id: str = ""  # "": no reusable prompt
    prompt_version: str = ""  # "": its latest version (version and variables are sent only with an id)
    prompt_variables: tuple[tuple[str, str], ...] = ()
    audio_codec: AudioCodec = "opus"  # the upstream call's phone line (SDP), not part of ``session``
    ice_servers: tuple[IceServer, ...] = ()
    # the app's own call handling, not part of ``session``: a fresh call before the provider's
    # 60-minute cap, and hanging up after this long with no speech or typing (0: never)
    rollover_minutes: float = 55.0
    idle_pause_minutes: float = 10.0
    # the agents (openai-agents RealtimeAgents) that speak: a built-in name or the user's own
    # `file.py:attr` / `package.module:attr` (see `scenarios`); loaded when a call starts
    scenario: str = "assistant"
    # History keeps both sides' voice (for listening again and for replays), compressed, up to this
    # many MB per conversation
    keep_audio: bool = True
    audio_cap_mb: float = 20.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "api_key", clean_key(self.api_key))
        if self.base_url is not None:
            object.__setattr__(self, "base_url", self.base_url.strip() or None)
        object.__setattr__(self, "tools", tuple(dict.fromkeys(self.tools)))
        object.__setattr__(self, "prompt_variables", tuple((str(k), v) for k, v in dict(self.prompt_variables).items()))
        for name in ("transcription_language", "prompt_id", "prompt_version"):
            object.__setattr__(self, name, str(getattr(self, name)).strip())
        problems: list[str] = []
        _check(problems, bool(self.model.strip()), "The model name must not be empty.")
        _check(
            problems,
            self.reasoning_effort is None or self.reasoning_effort in REASONING_EFFORTS,
            f"Reasoning effort must be one of {', '.join(REASONING_EFFORTS)} (or the model's default), "
            f"not {self.reasoning_effort!r}.",
        )
        _check(problems, self.voice in VOICES, f"Voice must be one of {', '.join(VOICES)}, not {self.voice!r}.")
        low, high = SPEED_RANGE
        _check(
            problems,
            _is_number(self.voice_speed) and low <= self.voice_speed <= high,
            f"Voice speed must be {low}..{high}, not {self.voice_speed!r}.",
        )
        _check(
            problems,
            self.noise_reduction is None or self.noise_reduction in NOISE_REDUCTIONS[1:],
            f"Noise reduction must be one of {', '.join(NOISE_REDUCTIONS)}, not {self.noise_reduction!r}.",
        )
        _check(
            problems,
            not self.transcription_language or bool(_LANGUAGE.match(self.transcription_language)),
            f"Transcription language must be an ISO-639-1 code such as 'en', not {self.transcription_language!r}.",
        )
        _check(
            problems,
            self.max_output_tokens == "inf"
            or (
                isinstance(self.max_output_tokens, int)
                and not isinstance(self.max_output_tokens, bool)
                and 1 <= self.max_output_tokens <= MAX_OUTPUT_TOKENS
            ),
            f"Max output tokens must be 1..{MAX_OUTPUT_TOKENS} or 'inf', not {self.max_output_tokens!r}.",
        )
        _check(
            problems,
            self.tool_choice in TOOL_CHOICES,
            f"Tool choice must be one of {', '.join(TOOL_CHOICES)}, not {self.tool_choice!r}.",
        )
        _check(
            problems,
            self.truncation in TRUNCATIONS,
            f"Truncation must be one of {', '.join(TRUNCATIONS)}, not {self.truncation!r}.",
        )
        _check(
            problems,
            _is_number(self.truncation_retention_ratio) and 0.0 <= self.truncation_retention_ratio <= 1.0,
            f"Truncation retention ratio must be between 0 and 1, not {self.truncation_retention_ratio!r}.",
        )
        _check(
            problems,
            all(isinstance(v, str) for _, v in self.prompt_variables),
            "Prompt variables must be a JSON object whose values are strings.",
        )
        _check(
            problems,
            self.audio_codec in AUDIO_CODECS,
            f"Audio codec (phone line) must be one of {', '.join(AUDIO_CODECS)}, not {self.audio_codec!r}.",
        )
        _check(
            problems,
            self.output_modalities in MODALITIES,
            f"Output modality must be 'audio' (voice and transcript) or 'text', not {self.output_modalities!r}.",
        )
        unknown = [t for t in self.tools if t not in DEFAULT_TOOLS]
        _check(
            problems,
            not unknown,
            f"Unknown tool(s) {', '.join(unknown)}; known tools: {', '.join(DEFAULT_TOOL_NAMES)}.",
        )
        if self.base_url is not None:
            _check(
                problems,
                self.base_url.startswith(("http://", "https://")),
                f"OPENAI_BASE_URL must start with http:// or https://, not {self.base_url!r}.",
            )
        _check(
            problems,
            isinstance(self.scenario, str) and bool(self.scenario.strip()),
            "The scenario (REALTIME_SCENARIO) must name a built-in scenario or a file.py:attr / module:attr.",
        )
        _check(
            problems,
            _is_number(self.rollover_minutes) and 0 < self.rollover_minutes <= 60,
            f"Rollover (REALTIME_ROLLOVER_MINUTES) must be more than 0 and at most 60 minutes, "
            f"not {self.rollover_minutes!r}.",
        )
        _check(
            problems,
            _is_number(self.idle_pause_minutes) and self.idle_pause_minutes >= 0,
            f"Idle pause (REALTIME_IDLE_PAUSE_MINUTES) must be 0 (never) or more minutes, "
            f"not {self.idle_pause_minutes!r}.",
        )
        _check(
            problems,
            _is_number(self.audio_cap_mb) and self.audio_cap_mb > 0,
            f"The audio cap (REALTIME_AUDIO_CAP_MB) must be more than 0 MB, not {self.audio_cap_mb!r}.",
        )
        problems += self.turn_detection.problems() + self.camera.problems()
        if problems:
            raise SettingsError(problems)

    # --- building ------------------------------------------------------------------------

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, secrets: Mapping[str, Any] | None = None) -> Settings:
        """Settings from the environment overlaid with Streamlit secrets (secrets win)."""
        env = os.environ if env is None else env
        merged: dict[str, Any] = {k: v for k, v in env.items() if k.startswith(("OPENAI_", "REALTIME_"))}
        if secrets is not None:
            for k in list(secrets.keys()):
                if isinstance(k, str) and k.startswith(("OPENAI_", "REALTIME_")):
                    merged[k] = secrets[k]
        return cls._from_mapping(merged)

    @classmethod
    def _from_mapping(cls, m: Mapping[str, Any]) -> Settings:
        problems: list[str] = []
        d = cls()

        def text(name: str, default: str) -> str:
            v = m.get(name)
            return default if v is None else str(v).strip()

        def number(name: str, default: float | None, kind: type) -> Any:
            v = m.get(name)
            if v is None or str(v).strip() == "":
                return default
            try:
                f = float(str(v).strip())
                if kind is int:
                    if not f.is_integer():
                        raise ValueError
                    return int(f)
                return f
            except ValueError:
                problems.append(f"{name} must be {'a whole number' if kind is int else 'a number'}, not {v!r}.")
                return default

        def flag(name: str, default: bool) -> bool:
            v = m.get(name)
            if v is None or str(v).strip() == "":
                return default
            if isinstance(v, bool):
                return v
            s = str(v).strip().lower()
            if s in ("on", "true", "1", "yes"):
                return True
            if s in ("off", "false", "0", "no"):
                return False
            problems.append(f"{name} must be on or off, not {v!r}.")
            return default

        td = TurnDetection(
            mode=text("REALTIME_TURN_DETECTION", d.turn_detection.mode).lower() or d.turn_detection.mode,  # type: ignore[arg-type]
            threshold=number("REALTIME_VAD_THRESHOLD", d.turn_detection.threshold, float),
            silence_ms=number("REALTIME_VAD_SILENCE_MS", d.turn_detection.silence_ms, int),
            prefix_padding_ms=number("REALTIME_VAD_PREFIX_PADDING_MS", d.turn_detection.prefix_padding_ms, int),
            eagerness=text("REALTIME_VAD_EAGERNESS", d.turn_detection.eagerness).lower() or d.turn_detection.eagerness,  # type: ignore[arg-type]
            idle_timeout_ms=number("REALTIME_VAD_IDLE_TIMEOUT_MS", 0, int) or None,
        )
        problems += td.problems()
        cam = CameraSettings(
            enabled=flag("REALTIME_CAMERA", d.camera.enabled),
            interval_s=number("REALTIME_CAMERA_INTERVAL_S", d.camera.interval_s, float),
            max_side=number("REALTIME_CAMERA_MAX_SIDE", d.camera.max_side, int),
            detail=text("REALTIME_CAMERA_DETAIL", d.camera.detail).lower() or d.camera.detail,  # type: ignore[arg-type]
            max_images=number("REALTIME_MAX_IMAGES", d.camera.max_images, int),
            policy=text("REALTIME_FRAME_POLICY", d.camera.policy).lower() or d.camera.policy,  # type: ignore[arg-type]
        )
        problems += cam.problems()
        raw_tools = m.get("REALTIME_TOOLS")
        if raw_tools is None:
            tools = DEFAULT_TOOL_NAMES
        elif isinstance(raw_tools, (list, tuple)):
            tools = tuple(str(t).strip() for t in raw_tools if str(t).strip())
        else:
            tools = tuple(t.strip() for t in str(raw_tools).split(",") if t.strip())
        ice = _parse_ice_servers(m.get("REALTIME_ICE_SERVERS"), problems)
        raw_max = text("REALTIME_MAX_OUTPUT_TOKENS", "").lower()
        max_tokens: Any = "inf" if raw_max in ("", "inf") else number("REALTIME_MAX_OUTPUT_TOKENS", None, int)
        kwargs: dict[str, Any] = dict(
            api_key=clean_key(m.get("OPENAI_API_KEY")),
            base_url=text("OPENAI_BASE_URL", "") or None,
            model=text("REALTIME_MODEL", d.model) or d.model,
            reasoning_effort=text("REALTIME_REASONING_EFFORT", "").lower() or None,
            voice=text("REALTIME_VOICE", d.voice).lower() or d.voice,
            voice_speed=number("REALTIME_VOICE_SPEED", d.voice_speed, float),
            instructions=text("REALTIME_INSTRUCTIONS", d.instructions) or d.instructions,
            turn_detection=td,
            noise_reduction=_off_is_none(text("REALTIME_NOISE_REDUCTION", "").lower()),
            transcription_model=text("REALTIME_TRANSCRIPTION_MODEL", d.transcription_model),
            transcription_language=text("REALTIME_TRANSCRIPTION_LANGUAGE", ""),
            transcription_prompt=text("REALTIME_TRANSCRIPTION_PROMPT", ""),
            output_modalities=text("REALTIME_OUTPUT_MODALITIES", d.output_modalities).lower() or d.output_modalities,
            max_output_tokens=d.max_output_tokens if max_tokens is None else max_tokens,  # None: not a number
            camera=cam,
            tools=tools,
            tool_choice=text("REALTIME_TOOL_CHOICE", d.tool_choice).lower() or d.tool_choice,
            parallel_tool_calls=flag("REALTIME_PARALLEL_TOOL_CALLS", d.parallel_tool_calls),
            truncation=text("REALTIME_TRUNCATION", d.truncation).lower() or d.truncation,
            truncation_retention_ratio=number(
                "REALTIME_TRUNCATION_RETENTION_RATIO", d.truncation_retention_ratio, float
            ),
            prompt_id=text("REALTIME_PROMPT_ID", ""),
            prompt_version=text("REALTIME_PROMPT_VERSION", ""),
            prompt_variables=parse_prompt_variables(m.get("REALTIME_PROMPT_VARIABLES"), problems),
            audio_codec=text("REALTIME_AUDIO_CODEC", d.audio_codec).lower() or d.audio_codec,
            ice_servers=ice,
            rollover_minutes=number("REALTIME_ROLLOVER_MINUTES", d.rollover_minutes, float),
            idle_pause_minutes=number("REALTIME_IDLE_PAUSE_MINUTES", d.idle_pause_minutes, float),
            scenario=text("REALTIME_SCENARIO", d.scenario) or d.scenario,
            keep_audio=flag("REALTIME_KEEP_AUDIO", d.keep_audio),
            audio_cap_mb=number("REALTIME_AUDIO_CAP_MB", d.audio_cap_mb, float),
        )
        if not problems:
            return cls(**kwargs)
        # Report everything at once: also what Settings itself rejects (nested values already checked).
        try:
            cls(**{**kwargs, "turn_detection": d.turn_detection, "camera": d.camera})
        except SettingsError as exc:
            problems += exc.problems
        raise SettingsError(problems)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (validated). Nested values may be given as dicts of
        their fields, e.g. ``replace(turn_detection={"mode": "semantic_vad"})``."""
        for name, nested in (("turn_detection", self.turn_detection), ("camera", self.camera)):
            if isinstance(changes.get(name), Mapping):
                changes[name] = dataclasses.replace(nested, **changes[name])
        if "tools" in changes:
            changes["tools"] = tuple(changes["tools"])
        if isinstance(changes.get("prompt_variables"), Mapping):
            changes["prompt_variables"] = tuple(changes["prompt_variables"].items())
        return dataclasses.replace(self, **changes)

    # --- derived -------------------------------------------------------------------------

    @property
    def backend(self) -> Literal["openai", "local"]:
        return "openai" if self.api_key else "local"

    @property
    def has_key(self) -> bool:
        return bool(self.api_key)

    def connection(self, local_engine: LocalEngine | None = None) -> Connection:
        """The effective endpoint. For the local backend this starts the local engine child
        process if needed (blocking, a few seconds the first time)."""
        if self.backend == "openai":
            return Connection(base_url=self.base_url or DEFAULT_BASE_URL, api_key=self.api_key)
        if local_engine is None:
            from .local_engine import ensure_local_engine

            local_engine = ensure_local_engine()
        return Connection(base_url=local_engine.base_url, api_key=local_engine.api_key)

    def rtc_configuration(self) -> dict[str, Any]:
        """``rtc_configuration`` for streamlit-webrtc (the browser leg)."""
        return {"iceServers": [s.as_dict() for s in self.ice_servers]}

    def session_payload(self, *, omit: Collection[str] = (), registry: ToolRegistry | None = None) -> dict[str, Any]:
        """THE rendering of the GA ``session`` object (for ``calls.create(session=...)`` and
        ``session.update``). ``omit`` drops top-level keys or ``"voice"`` (the bridge omits the
        voice once audio has been produced, since the provider cannot change it then)."""
        registry = DEFAULT_TOOLS if registry is None else registry
        transcription: dict[str, Any] | None = None
        if self.transcription_model:
            transcription = {"model": self.transcription_model}
            if self.transcription_language:
                transcription["language"] = self.transcription_language
            if self.transcription_prompt:
                transcription["prompt"] = self.transcription_prompt
        output: dict[str, Any] = {"format": dict(_AUDIO_FORMAT), "speed": self.voice_speed}
        if "voice" not in omit:
            output["voice"] = self.voice
        payload: dict[str, Any] = {
            "type": "realtime",
            "model": self.model,
            "instructions": self.instructions,
            "output_modalities": [self.output_modalities],
            "audio": {
                "input": {
                    "format": dict(_AUDIO_FORMAT),
                    # explicit nulls turn a feature off mid-call (session.update merges)
                    "noise_reduction": {"type": self.noise_reduction} if self.noise_reduction else None,
                    "turn_detection": self.turn_detection.payload(),
                    "transcription": transcription,
                },
                "output": output,
            },
            "max_output_tokens": self.max_output_tokens,
            "tools": registry.session_tools(self.tools),
            "tool_choice": self.tool_choice,
            "truncation": (
                {"type": "retention_ratio", "retention_ratio": self.truncation_retention_ratio}
                if self.truncation == "retention_ratio"
                else self.truncation
            ),
            "prompt": self._prompt_payload(),
        }
        if takes_reasoning(self.model):
            payload["parallel_tool_calls"] = self.parallel_tool_calls
            if self.reasoning_effort is not None:
                payload["reasoning"] = {"effort": self.reasoning_effort}
        for key in omit:
            if key != "type":
                payload.pop(key, None)
        return payload

    def _prompt_payload(self) -> dict[str, Any] | None:
        if not self.prompt_id:
            return None
        prompt: dict[str, Any] = {"id": self.prompt_id}
        if self.prompt_version:
            prompt["version"] = self.prompt_version
        if self.prompt_variables:
            prompt["variables"] = dict(self.prompt_variables)
        return prompt


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _off_is_none(raw: str) -> str | None:
    return None if raw in ("", "off", "none") else raw


_NOT_JSON = object()  # a JSON setting that did not parse (its problem is recorded)


def _json_setting(raw: Any, problems: list[str], what: str) -> Any:
    """A JSON-valued setting: None when empty, the decoded value (secrets hand over values already
    decoded, e.g. a TOML table), or ``_NOT_JSON`` once ``what`` and the parse error are recorded."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError as exc:
        problems.append(f"{what}; it is not valid JSON ({exc}).")
        return _NOT_JSON


def parse_prompt_variables(
    raw: Any, problems: list[str], name: str = "REALTIME_PROMPT_VARIABLES"
) -> tuple[tuple[str, str], ...]:
    """A JSON object (or a TOML table from secrets) of string values, as sorted-by-insertion pairs."""
    data = _json_setting(raw, problems, f"{name} must be a JSON object of strings")
    if data is None or data is _NOT_JSON:
        return ()
    if not isinstance(data, Mapping) or not all(isinstance(v, str) for v in data.values()):
        problems.append(f'{name} must be a JSON object whose values are strings, e.g. {{"city": "Paris"}}.')
        return ()
    return tuple((str(k), v) for k, v in data.items())


def _parse_ice_servers(raw: Any, problems: list[str]) -> tuple[IceServer, ...]:
    what = "REALTIME_ICE_SERVERS must be a JSON list of URLs or of {urls, username, credential} objects"
    data = _json_setting(raw, problems, what)
    if data is None or data is _NOT_JSON:
        return ()
    if isinstance(data, Mapping):
        data = [data]
    if not isinstance(data, (list, tuple)):
        problems.append(f"{what}.")
        return ()
    servers: list[IceServer] = []
    for entry in data:
        if isinstance(entry, str):
            entry = {"urls": entry}
        if not isinstance(entry, Mapping):
            problems.append(f"{what}; found {entry!r}.")
            continue
        urls = entry.get("urls", entry.get("url"))
        if isinstance(urls, str):
            urls = [urls]
        if not urls or not all(isinstance(u, str) and u.startswith(("stun:", "turn:", "turns:")) for u in urls):
            problems.append(f"{what}; each URL must start with stun:, turn: or turns: (got {urls!r}).")
            continue
        username = entry.get("username")
        credential = entry.get("credential")
        servers.append(
            IceServer(
                urls=tuple(urls),
                username=None if username is None else str(username),
                credential=None if credential is None else str(credential),
            )
        )
    return tuple(servers)


def restart_required(old: Settings, new: Settings) -> tuple[str, ...]:
    """The RESTART_FIELDS that differ between ``old`` and ``new`` (names only, never values)."""
    changed = []
    for name in RESTART_FIELDS:
        if getattr(old, name) != getattr(new, name):
            changed.append(name)
    return tuple(changed)


def live_changes(old: Settings, new: Settings) -> tuple[str, ...]:
    """The LIVE_FIELDS that differ between ``old`` and ``new``."""
    return tuple(name for name in LIVE_FIELDS if getattr(old, name) != getattr(new, name))
