"""Page-wide style, put on every page once per run by `apply()` (the sidebar calls it):

- less empty space above the title, so a page's top and the chat box fit a 1280x800 screen;
- calmer metric figures (Streamlit's default size cuts words such as "Local (offline)" in a
  quarter-width column);
- the transcript box that follows the newest message (`ui.transcript_view.STYLE`).

Style-only `st.html` goes to Streamlit's event container and takes no space. It must be called at
the top level of a script run, never inside a fragment: a fragment may only write to its own body,
and a style written from a polling fragment left the page without the elements drawn after it
(measured: the chat input and call controls vanished after a fragment rerun)."""

from __future__ import annotations

import streamlit as st

from ui.transcript_view import STYLE as TRANSCRIPT_STYLE

STYLE = """<style>
[data-testid="stMainBlockContainer"] { padding-top: 2.75rem; }
[data-testid="stMainBlockContainer"] h1 { padding-top: 0.25rem; padding-bottom: 0.5rem; }
[data-testid="stMetricValue"] { font-size: 1.75rem; }
</style>"""


def apply() -> None:
    st.html(STYLE + TRANSCRIPT_STYLE)
