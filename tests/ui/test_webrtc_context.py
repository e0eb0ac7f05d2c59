"""The call's streamlit-webrtc context survives a rerun whose run counter jumped by two.

The jump is what a busy server produces (the script thread starts a queued rerun before the event
loop has counted the previous one), which cannot be timed on demand; the counter is the only thing
faked here, the context and its reset are streamlit-webrtc's own.
"""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _script() -> None:
    from types import SimpleNamespace

    import streamlit as st
    import streamlit_webrtc.component as component

    from ui.webrtc_context import keep_context_across_reruns

    runs = st.session_state.setdefault("runs", 0)
    st.session_state["runs"] = runs + 1
    # Run 1 draws the component at count 0; the next run sees count 2, as after the race.
    component.get_this_session_info = lambda: SimpleNamespace(script_run_count=0 if runs == 0 else 2)  # type: ignore[assignment,return-value]

    class Worker:
        def stop(self) -> None:
            st.session_state["worker_stopped"] = True

    if st.session_state.get("keep"):
        keep_context_across_reruns("call")
    context = component._get_or_create_context("call")
    if runs == 0:
        st.session_state["worker"] = Worker()  # the context holds its worker weakly
        context._set_worker(st.session_state["worker"])
    st.write("worker" if context._get_worker() is not None else "no worker")


def _second_run(keep: bool) -> AppTest:
    at = AppTest.from_function(_script)
    at.session_state["keep"] = keep
    at.run()
    assert at.markdown[0].value == "worker"
    at.run()
    return at


def test_the_call_survives_a_skipped_run_count():
    at = _second_run(keep=True)
    assert at.markdown[0].value == "worker"
    assert "worker_stopped" not in at.session_state


def test_without_it_the_library_hangs_up():
    """Guards the premise: if streamlit-webrtc stops resetting on a jump, this module can go."""
    at = _second_run(keep=False)
    assert at.markdown[0].value == "no worker"
    assert at.session_state["worker_stopped"]
