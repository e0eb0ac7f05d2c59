"""The one typed settings object, and the one place that renders the Realtime ``session`` payload.

Where values come from (later wins): built-in defaults < environment variables < Streamlit secrets
(``st.secrets``, same key names as the environment) < sidebar changes (``settings.replace(...)``).
Secrets win over the environment because they are the app's own configuration file, while the
environment is often inherited from a shell.

| name | default | meaning |
|---|---|---|
| ``OPENAI_API_KEY`` | (none) | with a key the backend is OpenAI, without one the offline local engine |
| ``OPENAI_BASE_URL`` | ``https://api.openai.com/v1`` | OpenAI-compatible endpoint |
| ``REALTIME_MODEL`` | ``gpt-realtime`` | realtime model |
| ``REALTIME_VOICE`` | ``marin`` | one of ``VOICES`` |
| ``REALTIME_INSTRUCTIONS`` | ``DEFAULT_INSTRUCTIONS`` | system instructions |
| ``REALTIME_TURN_DETECTION`` | ``server_vad`` | ``server_vad``, ``semantic_vad`` or ``none`` (push to talk) |
| ``REALTIME_VAD_THRESHOLD`` | ``0.5`` | server VAD threshold, 0..1 |
| ``REALTIME_VAD_SILENCE_MS`` | ``500`` | server VAD silence before end of turn |
| ``REALTIME_VAD_PREFIX_PADDING_MS`` | ``300`` | server VAD audio kept before speech |
| ``REALTIME_VAD_EAGERNESS`` | ``auto`` | semantic VAD: ``low``, ``medium``, ``high``, ``auto`` |
| ``REALTIME_TRANSCRIPTION_MODEL`` | ``gpt-4o-mini-transcribe`` | input transcription; empty = off |
| ``REALTIME_OUTPUT_MODALITIES`` | ``audio`` | ``audio`` (voice + transcript) or ``text`` |
| ``REALTIME_CAMERA`` | ``on`` | send camera frames (``on``/``off``) |
| ``REALTIME_CAMERA_INTERVAL_S`` | ``2`` | at most one frame every N seconds |
| ``REALTIME_CAMERA_MAX_SIDE`` | ``1024`` | frames are resized to this longest side |
| ``REALTIME_CAMERA_DETAIL`` | ``auto`` | image detail: ``auto``, ``low``, ``high`` |
| ``REALTIME_MAX_IMAGES`` | ``3`` | images kept in the conversation |
| ``REALTIME_TOOLS`` | all tools | comma list of enabled tool names; empty = none |
| ``REALTIME_ICE_SERVERS`` | ``[]`` | JSON list of ICE servers for the browser leg |

Bad values raise ``SettingsError`` naming every offending setting and what it accepts.
The API key is stripped of whitespace and quotes and never appears in ``repr``/``str``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

from .tools import DEFAULT_TOOL_NAMES, DEFAULT_TOOLS, ToolRegistry

if TYPE_CHECKING:
    from .local_engine import LocalEngine

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_INSTRUCTIONS",
    "LIVE_FIELDS",
    "MODELS",
    "RESTART_FIELDS",
    "TRANSCRIPTION_MODELS",
    "VOICES",
    "CameraSettings",
    "Connection",
    "IceServer",
    "Settings",
    "SettingsError",
    "TurnDetection",
    "restart_required",
]

VOICES: tuple[str, ...] = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")
MODELS: tuple[str, ...] = (
    "gpt-realtime",
    "gpt-realtime-mini",
    "gpt-4o-realtime-preview",
    "gpt-4o-mini-realtime-preview",
)
TRANSCRIPTION_MODELS: tuple[str, ...] = ("gpt-4o-mini-transcribe", "gpt-4o-transcribe", "whisper-1")
DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_INSTRUCTIONS = (
    "You are a friendly, concise voice assistant in a live demo. Answer in one or two short sentences. "
    "When the user shows you something on camera, describe what you see plainly. "
    "Use the tools you have when they help."
)

TurnMode = Literal["server_vad", "semantic_vad", "none"]
Eagerness = Literal["low", "medium", "high", "auto"]
Detail = Literal["auto", "low", "high"]
Modality = Literal["audio", "text"]
TURN_MODES: tuple[str, ...] = get_args(TurnMode)
EAGERNESS: tuple[str, ...] = get_args(Eagerness)
DETAILS: tuple[str, ...] = get_args(Detail)
MODALITIES: tuple[str, ...] = get_args(Modality)

# Fields a live call can take through ``session.update`` (voice only until the first audio: the
# bridge decides that) and fields that need a new call. Camera settings are applied locally by the
# frame throttle. ICE servers belong to the browser leg, which must be reconnected.
LIVE_FIELDS: tuple[str, ...] = (
    "voice",
    "instructions",
    "turn_detection",
    "transcription_model",
    "output_modalities",
    "tools",
    "camera",
)
RESTART_FIELDS: tuple[str, ...] = ("backend", "api_key", "base_url", "model", "ice_servers")

_AUDIO_FORMAT = {"type": "audio/pcm", "rate": 24000}


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
        return p

    def payload(self) -> dict[str, Any] | None:
        """``session.audio.input.turn_detection`` (None turns it off: push to talk)."""
        if self.mode == "server_vad":
            return {
                "type": "server_vad",
                "threshold": self.threshold,
                "silence_duration_ms": self.silence_ms,
                "prefix_padding_ms": self.prefix_padding_ms,
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

    def problems(self) -> list[str]:
        p: list[str] = []
        _check(p, 0.2 <= self.interval_s <= 3600, f"Camera interval must be 0.2..3600 s, not {self.interval_s}.")
        _check(p, 64 <= self.max_side <= 4096, f"Camera max side must be 64..4096 px, not {self.max_side}.")
        _check(p, self.detail in DETAILS, f"Camera detail must be one of {', '.join(DETAILS)}, not {self.detail!r}.")
        _check(p, 1 <= self.max_images <= 50, f"Max images must be 1..50, not {self.max_images}.")
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
    model: str = "gpt-realtime"
    voice: str = "marin"
    instructions: str = DEFAULT_INSTRUCTIONS
    turn_detection: TurnDetection = TurnDetection()
    transcription_model: str = "gpt-4o-mini-transcribe"
    output_modalities: Modality = "audio"
    camera: CameraSettings = CameraSettings()
    tools: tuple[str, ...] = DEFAULT_TOOL_NAMES
    ice_servers: tuple[IceServer, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "api_key", clean_key(self.api_key))
        if self.base_url is not None:
            object.__setattr__(self, "base_url", self.base_url.strip() or None)
        object.__setattr__(self, "tools", tuple(dict.fromkeys(self.tools)))
        problems: list[str] = []
        _check(problems, bool(self.model.strip()), "The model name must not be empty.")
        _check(problems, self.voice in VOICES, f"Voice must be one of {', '.join(VOICES)}, not {self.voice!r}.")
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

        def number(name: str, default: float, kind: type) -> Any:
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
        )
        problems += td.problems()
        cam = CameraSettings(
            enabled=flag("REALTIME_CAMERA", d.camera.enabled),
            interval_s=number("REALTIME_CAMERA_INTERVAL_S", d.camera.interval_s, float),
            max_side=number("REALTIME_CAMERA_MAX_SIDE", d.camera.max_side, int),
            detail=text("REALTIME_CAMERA_DETAIL", d.camera.detail).lower() or d.camera.detail,  # type: ignore[arg-type]
            max_images=number("REALTIME_MAX_IMAGES", d.camera.max_images, int),
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
        kwargs: dict[str, Any] = dict(
            api_key=clean_key(m.get("OPENAI_API_KEY")),
            base_url=text("OPENAI_BASE_URL", "") or None,
            model=text("REALTIME_MODEL", d.model) or d.model,
            voice=text("REALTIME_VOICE", d.voice).lower() or d.voice,
            instructions=text("REALTIME_INSTRUCTIONS", d.instructions) or d.instructions,
            turn_detection=td,
            transcription_model=text("REALTIME_TRANSCRIPTION_MODEL", d.transcription_model),
            output_modalities=text("REALTIME_OUTPUT_MODALITIES", d.output_modalities).lower() or d.output_modalities,
            camera=cam,
            tools=tools,
            ice_servers=ice,
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
        transcription = {"model": self.transcription_model} if self.transcription_model else None
        output: dict[str, Any] = {"format": dict(_AUDIO_FORMAT)}
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
                    "turn_detection": self.turn_detection.payload(),
                    "transcription": transcription,
                },
                "output": output,
            },
            "tools": registry.session_tools(self.tools),
            "tool_choice": "auto",
        }
        for key in omit:
            if key != "type":
                payload.pop(key, None)
        return payload


def _parse_ice_servers(raw: Any, problems: list[str]) -> tuple[IceServer, ...]:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return ()
    what = "REALTIME_ICE_SERVERS must be a JSON list of URLs or of {urls, username, credential} objects"
    data = raw
    if isinstance(raw, str):
        try:
            data = json.loads(raw)
        except ValueError as exc:
            problems.append(f"{what}; it is not valid JSON ({exc}).")
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
