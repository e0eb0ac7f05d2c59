"""The vision inspector's rows and summary: what a person reads about the images the model saw."""

from __future__ import annotations

from realtime.image_log import SentImage
from realtime.usage import UsageTotals
from ui.vision_view import image_rows, images_summary


def test_rows_are_newest_first_and_say_source_size_detail_and_whether_still_in_the_conversation():
    images = (
        SentImage("img_1", 1_000.0, "camera", 640, 480, 31_000, "auto", b"t1", in_conversation=False),
        SentImage("msg_2#1", 1_010.0, "upload", 320, 240, 2_048, "low", b"t2"),
    )
    newest, oldest = image_rows(images)
    assert newest.caption.startswith("Chat box · ") and newest.thumbnail == b"t2"
    assert newest.facts == "320 × 240 px · 2.0 KB · detail low · in the conversation"
    assert oldest.caption.startswith("Camera · ")
    assert oldest.facts.endswith("deleted (outside the last-images window)")


def test_the_summary_counts_images_by_source_and_the_tokens_billed():
    images = (
        SentImage("img_1", 1.0, "camera", 640, 480, 1, "auto"),
        SentImage("img_2", 2.0, "camera", 640, 480, 1, "auto", in_conversation=False),
        SentImage("msg_3#1", 3.0, "upload", 64, 64, 1, "low"),
    )
    line = images_summary(images, UsageTotals(input_image=1_275, cached_image=425))
    assert line == (
        "3 images sent (2 from the camera, 1 from the chat box), 2 still in the conversation; "
        "image input tokens billed so far: 1,275 (425 of them cached)."
    )
    assert images_summary((), UsageTotals()) == "No image has been sent in this conversation yet."
    assert "no image tokens yet" in images_summary(images[:1], UsageTotals())
