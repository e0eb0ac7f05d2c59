"""Conversation items as typed values: built (and checked) from GA item objects, rendered back to them.

``build_item`` turns the ``item`` of ``conversation.item.create`` (or an entry of
``response.input``) into an ``Item``, or raises ``ClientEventError`` with the parameter path at
fault. ``Item.to_wire`` renders the GA ``realtime.item``; ``Item.turn`` is the responder's view.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from .pcm import BYTES_PER_MS, decode_audio
from .responder import ImageInfo, Turn
from .schema import ClientEventError

__all__ = ["Item", "ItemStatus", "Part", "PartType", "build_item"]

PartType = Literal["input_text", "input_audio", "input_image", "output_text", "output_audio"]
ItemStatus = Literal["completed", "incomplete", "in_progress"]
Role = Literal["user", "assistant", "system"]

_ALLOWED_PARTS: dict[str, tuple[PartType, ...]] = {
    "user": ("input_text", "input_audio", "input_image"),
    "system": ("input_text",),
    "assistant": ("output_text", "output_audio"),
}


@dataclass(frozen=True)
class Part:
    """One content part of a message item."""

    type: PartType
    text: str | None = None
    transcript: str | None = None
    audio: bytes | None = field(default=None, repr=False)  # pcm16 24 kHz (input audio only)
    audio_ms: int = 0
    image_url: str | None = field(default=None, repr=False)
    detail: str | None = None
    image: ImageInfo | None = None

    def to_wire(self, with_audio: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.type in ("input_text", "output_text"):
            out["text"] = self.text or ""
        elif self.type in ("input_audio", "output_audio"):
            out["transcript"] = self.transcript
            if with_audio and self.audio is not None:
                out["audio"] = base64.b64encode(self.audio).decode("ascii")
        elif self.type == "input_image":
            out["image_url"] = self.image_url
            if self.detail:
                out["detail"] = self.detail
        return out


@dataclass(frozen=True)
class Item:
    id: str
    type: Literal["message", "function_call", "function_call_output"]
    status: ItemStatus = "completed"
    role: Role | None = None
    content: tuple[Part, ...] = ()
    name: str = ""
    call_id: str = ""
    arguments: str = ""
    output: str = ""

    @property
    def stored_audio_bytes(self) -> int:
        """Bytes of input audio this item keeps (what the session's audio bound counts)."""
        return sum(len(p.audio or b"") for p in self.content)

    def to_wire(self, with_audio: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "object": "realtime.item", "type": self.type, "status": self.status}
        if self.type == "message":
            out["role"] = self.role
            out["content"] = [p.to_wire(with_audio) for p in self.content]
        elif self.type == "function_call":
            out.update(name=self.name, call_id=self.call_id, arguments=self.arguments)
        else:
            out.update(call_id=self.call_id, output=self.output)
        return out

    def turn(self) -> Turn:
        if self.type == "function_call":
            return Turn("function_call", text=self.arguments, name=self.name, call_id=self.call_id)
        if self.type == "function_call_output":
            return Turn("function_call_output", text=self.output, call_id=self.call_id)
        words = " ".join(
            (p.text if p.type in ("input_text", "output_text") else p.transcript) or "" for p in self.content
        ).strip()
        image = next((p.image for p in reversed(self.content) if p.image is not None), None)
        return Turn(self.role or "user", text=words, image=image)


def build_item(wire: dict[str, Any], new_id: Callable[[str], str], param: str = "item") -> Item:
    """A checked ``Item`` from a GA item object; ``new_id(prefix)`` names what the client left unnamed."""
    kind = wire.get("type")
    if kind not in ("message", "function_call", "function_call_output"):
        raise ClientEventError(
            "unsupported_item_type", f"The local engine does not support {kind!r} items.", param=f"{param}.type"
        )
    item_id = wire.get("id") or new_id("item")
    if kind == "function_call":
        return Item(
            id=item_id,
            type=kind,
            name=wire["name"],
            arguments=wire.get("arguments") or "",
            call_id=wire.get("call_id") or new_id("call"),
        )
    if kind == "function_call_output":
        return Item(id=item_id, type=kind, call_id=wire["call_id"], output=wire["output"])
    role = wire["role"]
    parts = tuple(_build_part(role, part, f"{param}.content[{i}]") for i, part in enumerate(wire.get("content") or []))
    return Item(id=item_id, type="message", role=role, content=parts)


def _build_part(role: Role, part: dict[str, Any], param: str) -> Part:
    kind = part.get("type") or ("output_text" if role == "assistant" else "input_text")
    if kind not in _ALLOWED_PARTS[role]:
        raise ClientEventError(
            "invalid_value", f"Content type {kind!r} is not allowed in a {role} message.", param=f"{param}.type"
        )
    if kind in ("input_text", "output_text"):
        if part.get("text") is None:
            raise _missing(f"{param}.text")
        return Part(kind, text=part["text"])
    if kind in ("input_audio", "output_audio"):
        pcm = None
        if part.get("audio"):
            pcm = decode_audio(part["audio"], f"{param}.audio")
        elif part.get("transcript") is None:
            raise ClientEventError(
                "missing_required_parameter",
                f"Missing required parameter: '{param}.audio' (or '{param}.transcript').",
                param=f"{param}.audio",
            )
        ms = len(pcm) // BYTES_PER_MS if pcm else 0
        return Part(kind, transcript=part.get("transcript"), audio=pcm if kind == "input_audio" else None, audio_ms=ms)
    url = part.get("image_url")
    if not url:
        raise _missing(f"{param}.image_url")
    from .imaging import ImageError, describe_image  # Pillow is imported only when an image comes

    try:
        facts = describe_image(url)
    except ImageError as exc:
        raise ClientEventError(
            "invalid_image", f"Invalid image in '{param}.image_url': {exc}", param=f"{param}.image_url"
        ) from None
    image = ImageInfo(int(facts.width), int(facts.height), str(facts.colour))
    return Part("input_image", image_url=url, detail=part.get("detail") or "auto", image=image)


def _missing(param: str) -> ClientEventError:
    return ClientEventError("missing_required_parameter", f"Missing required parameter: '{param}'.", param=param)
