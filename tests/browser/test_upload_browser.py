"""Images in the chat box, in Debian's Chromium on the local engine (issue 12).

The fake camera is solid blue, so a reply naming green can only come from the uploaded image. The
files are made at run time: a solid green PNG (picked), a solid red one (dragged and dropped), and a
text file named like a PNG.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from tests.browser.driver import (
    LONG,
    items,
    open_app,
    screenshot,
    start_call,
    type_message,
    wait_assistant_text,
)
from tests.browser.harness import VIEWPORT

pytestmark = pytest.mark.browser

GREEN = (30, 200, 40)
RED = (220, 30, 30)
# A drag from the desktop: a DataTransfer holding the File enters the chat box, which then shows its
# drop zone (a second file input's parent, over the box); the file is dragged over it and dropped.
_DRAG_AND_DROP = """
async (chat, [b64, name, type]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const dataTransfer = new DataTransfer();
  dataTransfer.items.add(new File([bytes], name, {type}));
  const fire = (el, kind) => el.dispatchEvent(new DragEvent(kind, {bubbles: true, cancelable: true, dataTransfer}));
  fire(chat, "dragenter");
  fire(chat, "dragover");
  let zone = null;
  for (let i = 0; i < 50 && !zone; i++) {
    await new Promise((r) => setTimeout(r, 20));
    const input = [...chat.querySelectorAll("input[type=file]")].find(
      (el) => !el.closest("[data-testid=stChatInputFileUploadButton]"));
    zone = input ? input.parentElement : null;
  }
  if (!zone) return "no drop zone appeared";
  for (const kind of ["dragenter", "dragover", "drop"]) fire(zone, kind);
  return "dropped";
}
"""
NO_TRACEBACK = re.compile(r"Traceback|File \".*\.py\"", re.I)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    green = tmp_path / "green.png"
    Image.new("RGB", (400, 300), GREEN).save(green)
    red = tmp_path / "red.png"
    Image.new("RGB", (200, 200), RED).save(red)
    notes = tmp_path / "notes.png"
    notes.write_text("Shopping list\n- milk\n- eggs\n", encoding="utf-8")
    return {"green": green, "red": red, "notes": notes}


def send_with_file(page: Page, text: str, path: Path) -> None:
    """Add ``path`` with the chat box's file picker, type ``text`` and send both."""
    chat = page.get_by_test_id("stChatInput")
    box = page.get_by_test_id("stChatInputTextArea")
    expect(box).to_be_enabled(timeout=LONG)
    chat.get_by_test_id("stChatInputFileUploadButton").locator("input[type=file]").set_input_files(str(path))
    expect(chat.get_by_text(path.name)).to_be_visible(timeout=LONG)  # the file's chip: it is uploaded
    box.fill(text)
    submit = page.get_by_test_id("stChatInputSubmitButton")
    expect(submit).to_be_enabled(timeout=LONG)
    submit.click()


def drop_file(page: Page, path: Path, mime: str = "image/png") -> None:
    """Drag ``path`` onto the chat box and drop it there."""
    chat = page.get_by_test_id("stChatInput")
    expect(page.get_by_test_id("stChatInputTextArea")).to_be_enabled(timeout=LONG)
    outcome = chat.evaluate(_DRAG_AND_DROP, [base64.b64encode(path.read_bytes()).decode("ascii"), path.name, mime])
    assert outcome == "dropped", outcome
    expect(chat.get_by_text(path.name)).to_be_visible(timeout=LONG)


def test_an_image_in_the_chat_box_is_seen_and_a_fake_one_is_refused(app, silent_browser, files):
    page = silent_browser.new_context(viewport=VIEWPORT).new_page()
    open_app(page, app.url)
    start_call(page)

    # The blue camera frame is in the conversation first: the answer below must come from the upload.
    expect(items(page, "user").locator("img").first).to_be_visible(timeout=LONG)
    type_message(page, "what do you see?")
    wait_assistant_text(page, r"\bblue\b")

    send_with_file(page, "what do you see?", files["green"])
    wait_assistant_text(page, r"It is mostly green")
    bubble = items(page, "user").filter(has_text="what do you see?").last
    expect(bubble.locator("img")).to_be_visible(timeout=LONG)  # the thumbnail, in the user's bubble
    screenshot(page, "12-chat-image")

    # Dragged and dropped onto the box instead of picked: the same.
    drop_file(page, files["red"])
    page.get_by_test_id("stChatInputTextArea").fill("and now, what do you see?")
    page.get_by_test_id("stChatInputSubmitButton").click()
    wait_assistant_text(page, r"It is mostly red")

    # A text file named .png: one clear sentence, nothing sent for it, and the chat goes on.
    send_with_file(page, "and this one?", files["notes"])
    error = items(page, "error").filter(has_text="notes.png")
    expect(error).to_contain_text("not an image", timeout=LONG)
    wait_assistant_text(page, r"You said: and this one\?")  # the text sent with it still went out
    screenshot(page, "13-chat-not-an-image")
    type_message(page, "still talking after that")
    wait_assistant_text(page, r"You said: still talking after that")
    assert not NO_TRACEBACK.search(page.inner_text("body"))
    page.context.close()
