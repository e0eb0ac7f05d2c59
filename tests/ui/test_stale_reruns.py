"""Which fragment reruns `ui.stale_reruns` drops: those naming another page than the session's."""

from __future__ import annotations

from ui.stale_reruns import PageTracker

CONVERSATION, VISION = "f06178", "cb4d07"


def test_a_fragment_rerun_from_the_page_being_left_is_stale_until_the_tab_is_back():
    pages = PageTracker()
    pages.run_started(CONVERSATION)
    assert not pages.is_stale("frag-transcript", CONVERSATION)
    pages.full_rerun_requested(VISION)  # the click on Vision, before its run has started
    assert pages.is_stale("frag-transcript", CONVERSATION)
    pages.run_started(VISION)
    assert pages.is_stale("frag-transcript", CONVERSATION)
    assert not pages.is_stale("frag-vision", VISION)
    pages.full_rerun_requested(CONVERSATION)
    assert not pages.is_stale("frag-transcript", CONVERSATION)


def test_a_page_the_script_switched_to_counts_from_its_run():
    pages = PageTracker()
    pages.full_rerun_requested(CONVERSATION)
    pages.run_started(VISION)  # st.switch_page: the tab asked for one page, the script went on to another
    assert not pages.is_stale("frag-vision", VISION)
    assert pages.is_stale("frag-transcript", CONVERSATION)


def test_nothing_is_dropped_while_the_page_is_not_known():
    pages = PageTracker()
    assert not pages.is_stale("frag", CONVERSATION)  # the guard came in after this session's first run
    pages.run_started(CONVERSATION)
    pages.full_rerun_requested("")  # first load by address, or a rerun the server asked for
    assert not pages.is_stale("frag", VISION)
    pages.run_started("")  # the run that only shows a script's compile error names no page
    assert not pages.is_stale("frag", VISION)
    pages.run_started(VISION)
    assert not pages.is_stale("", CONVERSATION)  # a full rerun is never dropped
    assert not pages.is_stale("frag", "")
