"""The vision inspector: every image this conversation showed the model, what it was and what it cost.

The row and summary builders are pure (tested without Streamlit); `render_images` draws them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import streamlit as st

from ui.format import byte_size, clock_time, count

if TYPE_CHECKING:
    from realtime.image_log import SentImage
    from realtime.usage import UsageTotals

SOURCE_LABELS = {"camera": "Camera", "screen": "Screen", "upload": "Chat box", "client": "API client"}


@dataclass(frozen=True)
class ImageRow:
    caption: str  # "Camera · 12:03:04.512"
    facts: str  # "640 × 480 px · 31.2 KB · detail auto · in the conversation"
    thumbnail: bytes


def image_rows(images: Sequence[SentImage]) -> list[ImageRow]:
    """Newest first: what the model was shown most recently is what people look for."""
    rows = []
    for image in reversed(images):
        where = "in the conversation" if image.in_conversation else "deleted (outside the last-images window)"
        rows.append(
            ImageRow(
                caption=f"{SOURCE_LABELS.get(image.source, image.source)} · {clock_time(image.at)}",
                facts=(
                    f"{image.width} × {image.height} px · {byte_size(image.size_bytes)} · "
                    f"detail {image.detail} · {where}"
                ),
                thumbnail=image.thumbnail,
            )
        )
    return rows


def images_summary(images: Sequence[SentImage], usage: UsageTotals) -> str:
    """One line: how many images, from where, how many still in the conversation, image tokens billed."""
    if not images:
        return "No image has been sent in this conversation yet."
    by_source: dict[str, int] = {}
    for image in images:
        label = SOURCE_LABELS.get(image.source, image.source).lower()
        by_source[label] = by_source.get(label, 0) + 1
    sources = ", ".join(f"{n} from the {label}" for label, n in by_source.items())
    kept = sum(1 for i in images if i.in_conversation)
    tokens = (
        f"image input tokens billed so far: {count(usage.input_image)} ({count(usage.cached_image)} of them cached)"
        if usage.input_image
        else "the provider has reported no image tokens yet"
    )
    plural = "s" if len(images) != 1 else ""
    return f"{len(images)} image{plural} sent ({sources}), {kept} still in the conversation; {tokens}."


def render_images(images: Sequence[SentImage], usage: UsageTotals, *, per_row: int = 3) -> None:
    st.caption(images_summary(images, usage))
    rows = image_rows(images)
    for start in range(0, len(rows), per_row):
        columns = st.columns(per_row)
        for column, row in zip(columns, rows[start : start + per_row], strict=False):
            with column.container(border=True):
                if row.thumbnail:
                    st.image(row.thumbnail, width="stretch")
                st.markdown(f"**{row.caption}**")
                st.caption(row.facts)
