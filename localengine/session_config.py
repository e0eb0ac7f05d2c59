"""The session's configuration as typed values, and the checks on what a client asks for.

``apply_session`` folds a GA session object (``session.update``, or the initial session of a call)
into ``SessionSettings``; ``response_options`` resolves the per-response overrides of
``response.create`` against them. Both are pure: they return a new value or raise
``ClientEventError`` (then nothing is applied), with the codes and messages the real service uses
where it has them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from .pcm import SAMPLE_RATE, wire_format
from .schema import ClientEventError

__all__ = [
    "DEFAULT_INSTRUCTIONS",
    "DEFAULT_MODEL",
    "DEFAULT_VOICE",
    "MAX_OUTPUT_TOKENS",
    "FunctionTool",
    "ResponseOptions",
    "SessionSettings",
    "ToolChoice",
    "TurnDetectionConfig",
    "apply_session",
    "forced_tool_name",
    "response_options",
]

DEFAULT_MODEL = "gpt-realtime"
DEFAULT_VOICE = "alloy"
DEFAULT_INSTRUCTIONS = "You are the Realtime Studio offline local engine. Answer briefly and in a friendly voice."
MAX_OUTPUT_TOKENS = 4096
"""The cap of one response's output tokens (text plus audio); ``max_output_tokens: "inf"`` means this."""
SPEED_RANGE = (0.25, 1.5)
_SEMANTIC_SILENCE_MS = {"low": 1500, "medium": 800, "auto": 800, "high": 400}

ToolChoice = str | dict[str, Any]
"""``"auto"`` / ``"none"`` / ``"required"``, or the wire object that forces one function."""


@dataclass(frozen=True)
class TurnDetectionConfig:
    """``audio.input.turn_detection`` as a value (server_vad or semantic_vad)."""

    type: Literal["server_vad", "semantic_vad"] = "server_vad"
    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    create_response: bool = True
    interrupt_response: bool = True
    eagerness: Literal["low", "medium", "high", "auto"] = "auto"
    idle_timeout_ms: int | None = None

    @property
    def silence_ms(self) -> int:
        """Silence that ends a turn; semantic_vad derives it from ``eagerness``."""
        if self.type == "semantic_vad":
            return _SEMANTIC_SILENCE_MS[self.eagerness]
        return self.silence_duration_ms

    def to_wire(self) -> dict[str, Any]:
        if self.type == "semantic_vad":
            return {
                "type": "semantic_vad",
                "eagerness": self.eagerness,
                "create_response": self.create_response,
                "interrupt_response": self.interrupt_response,
            }
        return {
            "type": "server_vad",
            "threshold": self.threshold,
            "prefix_padding_ms": self.prefix_padding_ms,
            "silence_duration_ms": self.silence_duration_ms,
            "idle_timeout_ms": self.idle_timeout_ms,
            "create_response": self.create_response,
            "interrupt_response": self.interrupt_response,
        }

    @classmethod
    def from_wire(cls, wire: dict[str, Any], default_silence_ms: int) -> TurnDetectionConfig:
        base = cls(silence_duration_ms=default_silence_ms)
        kind = wire.get("type", "server_vad")
        changes: dict[str, Any] = {"type": kind}
        for key in (
            "threshold",
            "prefix_padding_ms",
            "silence_duration_ms",
            "create_response",
            "interrupt_response",
            "eagerness",
            "idle_timeout_ms",
        ):
            if wire.get(key) is not None:
                changes[key] = wire[key]
        td = replace(base, **changes)
        if not 0.0 <= td.threshold <= 1.0:
            raise _FieldError("threshold", f"{td.threshold!r}: must be between 0.0 and 1.0")
        if td.silence_duration_ms < 0:
            raise _FieldError("silence_duration_ms", f"{td.silence_duration_ms!r}: must not be negative")
        if td.prefix_padding_ms < 0:
            raise _FieldError("prefix_padding_ms", f"{td.prefix_padding_ms!r}: must not be negative")
        if td.idle_timeout_ms is not None and td.idle_timeout_ms <= 0:
            raise _FieldError("idle_timeout_ms", f"{td.idle_timeout_ms!r}: must be positive")
        return td


class _FieldError(ValueError):
    """A turn_detection value out of range: ``field`` names it inside the turn_detection object."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class FunctionTool:
    """One function tool, kept as the client sent it (it is echoed back) with typed reads."""

    wire: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.wire["name"])

    @property
    def description(self) -> str:
        return str(self.wire.get("description") or "")

    @property
    def parameters(self) -> Any:
        """The JSON schema of the arguments, as sent (may be missing or malformed)."""
        return self.wire.get("parameters")


@dataclass(frozen=True)
class SessionSettings:
    """The effective session configuration (rendered by ``to_wire`` into the GA session object)."""

    id: str
    model: str = DEFAULT_MODEL
    instructions: str = DEFAULT_INSTRUCTIONS
    voice: str = DEFAULT_VOICE
    output_modalities: tuple[str, ...] = ("audio",)
    turn_detection: TurnDetectionConfig | None = TurnDetectionConfig()
    transcription: dict[str, Any] | None = None  # wire AudioTranscription
    noise_reduction: dict[str, Any] | None = None  # wire NoiseReduction
    speed: float = 1.0
    tools: tuple[FunctionTool, ...] = ()
    tool_choice: ToolChoice = "auto"
    max_output_tokens: int | str = "inf"
    tracing: Any = None  # wire: "auto", a tracing config object or null; echoed only
    truncation: Any = "auto"  # wire: "auto", "disabled" or a truncation object; echoed only
    include: tuple[str, ...] | None = None
    reasoning: dict[str, Any] | None = None  # wire RealtimeReasoning; echoed only
    prompt: dict[str, Any] | None = None  # wire ResponsePrompt; echoed only
    parallel_tool_calls: bool | None = None  # echoed only (one call per response here)

    def to_wire(self) -> dict[str, Any]:
        return {
            "type": "realtime",
            "object": "realtime.session",
            "id": self.id,
            "model": self.model,
            "output_modalities": list(self.output_modalities),
            "instructions": self.instructions,
            "tools": [dict(t.wire) for t in self.tools],
            "tool_choice": self.tool_choice,
            "max_output_tokens": self.max_output_tokens,
            "tracing": self.tracing,
            "truncation": self.truncation,
            "prompt": dict(self.prompt) if self.prompt is not None else None,
            "include": list(self.include) if self.include is not None else None,
            **({"reasoning": dict(self.reasoning)} if self.reasoning is not None else {}),
            **({"parallel_tool_calls": self.parallel_tool_calls} if self.parallel_tool_calls is not None else {}),
            "audio": {
                "input": {
                    "format": wire_format(),
                    "transcription": dict(self.transcription) if self.transcription else None,
                    "noise_reduction": dict(self.noise_reduction) if self.noise_reduction else None,
                    "turn_detection": self.turn_detection.to_wire() if self.turn_detection else None,
                },
                "output": {"format": wire_format(), "voice": self.voice, "speed": self.speed},
            },
        }


@dataclass(frozen=True)
class ResponseOptions:
    """What one ``response.create`` asks for, with the session's settings filling the gaps."""

    conversation: Literal["auto", "none"]
    modalities: tuple[str, ...]
    voice: str
    instructions: str
    tools: tuple[FunctionTool, ...]
    tool_choice: ToolChoice
    metadata: dict[str, Any] | None
    max_output_tokens: int | str
    speed: float = 1.0

    @property
    def audio(self) -> bool:
        return "audio" in self.modalities

    @property
    def token_cap(self) -> int:
        """The output tokens this response may use: ``max_output_tokens``, ``"inf"`` being the engine's cap."""
        return self.max_output_tokens if isinstance(self.max_output_tokens, int) else MAX_OUTPUT_TOKENS


def apply_session(
    current: SessionSettings, s: dict[str, Any], *, audio_produced: bool, default_silence_ms: int
) -> SessionSettings:
    """``current`` with GA session object ``s`` applied; raises ``ClientEventError`` (nothing applied).

    ``audio_produced``: the assistant has spoken in this conversation, so the voice is fixed.
    ``default_silence_ms``: the silence a new turn_detection object gets when it names none.
    """
    if s.get("type", "realtime") != "realtime":
        raise ClientEventError(
            "unsupported_session_type",
            "The local engine supports realtime sessions only, not transcription sessions.",
            param="session.type",
        )
    changes: dict[str, Any] = {}
    if s.get("model"):
        changes["model"] = str(s["model"])
    if "instructions" in s:
        changes["instructions"] = s["instructions"] or ""
    if "output_modalities" in s and s["output_modalities"] is not None:
        changes["output_modalities"] = _check_modalities(s["output_modalities"], "session.output_modalities")
    audio = s.get("audio") or {}
    ain, aout = audio.get("input") or {}, audio.get("output") or {}
    for where, cfg in (("input", ain), ("output", aout)):
        _check_format(cfg.get("format"), f"session.audio.{where}.format")
    if "voice" in aout and aout["voice"] is not None:
        changes["voice"] = _check_voice(aout["voice"], current.voice, audio_produced, "session.audio.output.voice")
    if aout.get("speed") is not None:
        changes["speed"] = _check_speed(aout["speed"], "session.audio.output.speed")
    if "turn_detection" in ain:
        td = ain["turn_detection"]
        try:
            changes["turn_detection"] = None if td is None else TurnDetectionConfig.from_wire(td, default_silence_ms)
        except _FieldError as exc:
            where = f"session.audio.input.turn_detection.{exc.field}"
            raise ClientEventError("invalid_value", f"Invalid value for '{where}': {exc}.", param=where) from None
    if "transcription" in ain:
        tr = ain["transcription"]
        changes["transcription"] = None if tr is None else {"model": "whisper-1", **tr}
    if "noise_reduction" in ain:
        changes["noise_reduction"] = ain["noise_reduction"]
    if "tools" in s and s["tools"] is not None:
        changes["tools"] = _check_tools(s["tools"], "session.tools")
    if "tool_choice" in s and s["tool_choice"] is not None:
        changes["tool_choice"] = s["tool_choice"]
    tools = changes.get("tools", current.tools)
    _check_tool_choice(changes.get("tool_choice", current.tool_choice), tools, "session.tool_choice")
    if "max_output_tokens" in s and s["max_output_tokens"] is not None:
        changes["max_output_tokens"] = _check_max_tokens(s["max_output_tokens"], "session.max_output_tokens")
    truncation = s.get("truncation")
    if isinstance(truncation, dict) and not 0.0 <= float(truncation.get("retention_ratio", 0.0)) <= 1.0:
        where = "session.truncation.retention_ratio"
        raise ClientEventError(
            "invalid_value", f"Invalid value for '{where}': must be between 0.0 and 1.0.", param=where
        )
    for key in ("tracing", "truncation", "reasoning", "prompt", "parallel_tool_calls"):
        if key in s:
            changes[key] = s[key]
    if "include" in s:
        changes["include"] = tuple(s["include"]) if s["include"] is not None else None
    return replace(current, **changes)


def response_options(settings: SessionSettings, params: dict[str, Any], *, audio_produced: bool) -> ResponseOptions:
    """The options of a ``response.create`` (its ``response`` object); raises ``ClientEventError``.

    ``response.input`` is not looked at here: it names conversation items, which the session owns.
    """
    requested = params.get("conversation") or "auto"
    if requested not in ("auto", "none"):
        raise ClientEventError(
            "invalid_value", "response.conversation must be 'auto' or 'none'.", param="response.conversation"
        )
    conversation: Literal["auto", "none"] = "none" if requested == "none" else "auto"
    modalities = settings.output_modalities
    if params.get("output_modalities") is not None:
        modalities = _check_modalities(params["output_modalities"], "response.output_modalities")
    out_cfg = (params.get("audio") or {}).get("output") or {}
    _check_format(out_cfg.get("format"), "response.audio.output.format")
    voice = settings.voice
    if out_cfg.get("voice") is not None:
        voice = _check_voice(out_cfg["voice"], settings.voice, audio_produced, "response.audio.output.voice")
    tools = settings.tools if params.get("tools") is None else _check_tools(params["tools"], "response.tools")
    tool_choice = settings.tool_choice if params.get("tool_choice") is None else params["tool_choice"]
    _check_tool_choice(tool_choice, tools, "response.tool_choice")
    max_tokens = settings.max_output_tokens
    if params.get("max_output_tokens") is not None:
        max_tokens = _check_max_tokens(params["max_output_tokens"], "response.max_output_tokens")
    return ResponseOptions(
        conversation=conversation,
        modalities=modalities,
        voice=voice,
        instructions=settings.instructions if params.get("instructions") is None else params["instructions"],
        tools=tools,
        tool_choice=tool_choice,
        metadata=params.get("metadata"),
        max_output_tokens=max_tokens,
        speed=settings.speed,
    )


def forced_tool_name(choice: ToolChoice) -> str:
    """The responder's view of a tool choice: the mode, or the name of the forced function."""
    return str(choice["name"]) if isinstance(choice, dict) else choice


def _check_speed(value: float, param: str) -> float:
    low, high = SPEED_RANGE
    if not low <= float(value) <= high:
        raise ClientEventError(
            "invalid_value",
            f"Invalid value for '{param}': {value!r}. It must be between {low} and {high}.",
            param=param,
        )
    return float(value)


def _check_max_tokens(value: int | str, param: str) -> int | str:
    if value == "inf" or (isinstance(value, int) and 1 <= value <= MAX_OUTPUT_TOKENS):
        return value
    raise ClientEventError(
        "invalid_value",
        f"Invalid value for '{param}': {value!r}. Provide an integer between 1 and {MAX_OUTPUT_TOKENS}, or 'inf'.",
        param=param,
    )


def _check_modalities(value: list[str], param: str) -> tuple[str, ...]:
    mods = tuple(dict.fromkeys(value))
    if mods not in (("audio",), ("text",)):
        raise ClientEventError("invalid_value", "output_modalities must be ['audio'] or ['text'].", param=param)
    return mods


def _check_format(fmt: dict[str, Any] | None, param: str) -> None:
    if fmt is None:
        return
    if fmt.get("type", "audio/pcm") != "audio/pcm" or fmt.get("rate", SAMPLE_RATE) != SAMPLE_RATE:
        raise ClientEventError(
            "unsupported_audio_format",
            f"The local engine supports only audio/pcm at {SAMPLE_RATE} Hz, not {fmt.get('type')}.",
            param=param,
        )


def _check_voice(voice: object, current: str, audio_produced: bool, param: str) -> str:
    if not isinstance(voice, str):
        raise ClientEventError("unsupported_voice", "The local engine supports named voices only.", param=param)
    if voice != current and audio_produced:
        raise ClientEventError(
            "cannot_update_voice", "Cannot update a conversation's voice if assistant audio is present.", param=param
        )
    return voice


def _check_tools(tools: list[dict[str, Any]], param: str) -> tuple[FunctionTool, ...]:
    out = []
    for i, tool in enumerate(tools):
        if tool.get("type", "function") != "function":
            raise ClientEventError(
                "unsupported_tool",
                f"The local engine supports function tools only, not {tool.get('type')!r} tools.",
                param=f"{param}[{i}].type",
            )
        if not tool.get("name"):
            raise ClientEventError(
                "missing_required_parameter",
                f"Missing required parameter: '{param}[{i}].name'.",
                param=f"{param}[{i}].name",
            )
        out.append(FunctionTool({"type": "function", **tool}))
    return tuple(out)


def _check_tool_choice(choice: ToolChoice, tools: tuple[FunctionTool, ...], param: str) -> None:
    if isinstance(choice, dict):
        if choice.get("type") != "function":
            raise ClientEventError(
                "unsupported_tool", "The local engine supports function tool choices only.", param=param
            )
        if not any(t.name == choice.get("name") for t in tools):
            raise ClientEventError(
                "invalid_value",
                f"tool_choice names function {choice.get('name')!r}, which is not among the tools.",
                param=param,
            )
