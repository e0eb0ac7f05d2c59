"""realtime.image_log: what the vision inspector lists."""

from __future__ import annotations

from realtime.image_log import ImageLog, SentImage


def test_images_are_listed_in_order_and_marked_when_they_leave_the_conversation():
    log = ImageLog()
    log.sent(SentImage("img_1", 1.0, "camera", 640, 480, 30_000, "auto"))
    log.sent(SentImage("img_2", 2.0, "upload", 320, 200, 12_000, "low"))
    log.left("img_1")
    log.left("img_1")  # once is enough
    log.left("img_unknown")  # an id never sent changes nothing
    first, second = log.snapshot()
    assert (first.item_id, first.in_conversation) == ("img_1", False)
    assert (second.item_id, second.source, second.in_conversation) == ("img_2", "upload", True)
    assert len(log) == 2
