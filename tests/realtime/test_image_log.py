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


def test_a_chat_message_with_two_images_lists_both_and_they_leave_with_their_item():
    import base64
    import io

    from PIL import Image

    from realtime.image_log import uploaded_images

    def png(rgb, size):
        buf = io.BytesIO()
        Image.new("RGB", size, rgb).save(buf, format="PNG")
        return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()

    event = {
        "type": "conversation.item.create",
        "item": {
            "id": "msg_1",
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "compare these"},
                {"type": "input_image", "image_url": png((0, 255, 0), (64, 48)), "detail": "low"},
                {"type": "input_image", "image_url": png((255, 0, 0), (32, 32)), "detail": "low"},
            ],
        },
    }
    log = ImageLog()
    for image in uploaded_images(event, "auto"):
        log.sent(image)
    first, second = log.snapshot()
    assert (first.item_id, first.source, first.width, first.height, first.detail) == (
        "msg_1#1",
        "upload",
        64,
        48,
        "low",
    )
    assert (second.item_id, second.width) == ("msg_1#2", 32) and second.thumbnail
    log.left("msg_1")  # the image window deleted the message
    assert not any(i.in_conversation for i in log.snapshot())
