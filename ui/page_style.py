"""Page-wide style, put on every page once per run by `apply()` (the sidebar calls it):

- less empty space above the title, so a page's top and the chat box fit a 1280x800 screen;
- calmer metric figures (Streamlit's default size cuts words such as "Local (offline)" in a
  quarter-width column);
- the transcript box that follows the newest message (`ui.transcript_view.STYLE`).

The style is a markdown element where it is called (the sidebar puts it at its top, at the top level
of the script run). Not `st.html`: a style-only `st.html` goes to Streamlit's event container, and
with it the page's chat input was intermittently left hidden (`display: none`) after a reply, and
from inside a polling fragment the call controls vanished too (both measured in Chromium). Never
call it inside a fragment: a fragment may only write to its own body."""

from __future__ import annotations

import streamlit as st

from ui.transcript_view import STYLE as TRANSCRIPT_STYLE

STYLE = """<style>
[data-testid="stMainBlockContainer"] { padding-top: 2.75rem; }
[data-testid="stMainBlockContainer"] h1 { padding-top: 0.25rem; padding-bottom: 0.5rem; }
[data-testid="stMetricValue"] { font-size: 1.75rem; }
</style>"""


def apply() -> None:
    st.markdown(STYLE + TRANSCRIPT_STYLE, unsafe_allow_html=True)
