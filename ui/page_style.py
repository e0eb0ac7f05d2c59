"""Page-wide layout touches shared by every page: less empty space above the title, so a page's
title, status and controls fit a 1280x800 screen, and calmer metric figures (Streamlit's default
size cuts words such as "Local (offline)" in a quarter-width column). Style only; call `apply()`
once per page run."""

from __future__ import annotations

import streamlit as st

STYLE = """<style>
[data-testid="stMainBlockContainer"] { padding-top: 2.75rem; }
[data-testid="stMainBlockContainer"] h1 { padding-top: 0.25rem; padding-bottom: 0.5rem; }
[data-testid="stMetricValue"] { font-size: 1.75rem; }
</style>"""


def apply() -> None:
    """A style-only `st.html` takes no space on the page."""
    st.html(STYLE)
