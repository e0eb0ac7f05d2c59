"""Where this session's initial Settings come from: the environment and `.streamlit/secrets.toml`."""

from __future__ import annotations

import os
from typing import Any

import streamlit as st

from realtime.settings import Settings, SettingsError
from scenarios import DEFAULT_SCENARIO


def read_secrets() -> dict[str, Any] | None:
    """Streamlit secrets as a plain dict, or None when there is no secrets file (that's normal)."""
    try:
        return {k: st.secrets[k] for k in st.secrets}
    except Exception:
        return None


def default_settings() -> Settings:
    return Settings.from_env(os.environ, secrets=read_secrets())


def configured_scenario() -> str:
    """The scenario this server is configured with (REALTIME_SCENARIO): besides the built-ins, the only
    one a page may choose. The default when the configuration cannot be read."""
    try:
        return default_settings().scenario
    except SettingsError:
        return DEFAULT_SCENARIO
