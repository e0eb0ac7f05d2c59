"""Where this session's initial Settings come from: the environment and `.streamlit/secrets.toml`."""

from __future__ import annotations

import os
from typing import Any

import streamlit as st

from realtime.settings import Settings


def read_secrets() -> dict[str, Any] | None:
    """Streamlit secrets as a plain dict, or None when there is no secrets file (that's normal)."""
    try:
        return {k: st.secrets[k] for k in st.secrets}
    except Exception:
        return None


def default_settings() -> Settings:
    return Settings.from_env(os.environ, secrets=read_secrets())
