"""The console's one workspace per ledger, opened once per process and shared by every page."""

from __future__ import annotations

import streamlit as st

from pdo.settings import Settings
from pdo.workspace import Workspace

_SETTINGS_KEY = "pdo_settings"


@st.cache_resource(show_spinner=False)
def _open(db_url: str, home: str, _settings: Settings) -> Workspace:
    """Engine and lake are costly to build; keyed by where they point, not by the object."""
    return Workspace.open(_settings)


def bind(settings: Settings) -> None:
    """Remember the settings the entrypoint read, so pages never read the environment."""
    st.session_state[_SETTINGS_KEY] = settings


def is_bound() -> bool:
    return _SETTINGS_KEY in st.session_state


def settings() -> Settings:
    """The settings the entrypoint read (pages never read the environment themselves)."""
    bound: Settings = st.session_state[_SETTINGS_KEY]
    return bound


def workspace() -> Workspace:
    """The cached workspace for this session's settings (bound by `dashboard/app.py`)."""
    settings: Settings = st.session_state[_SETTINGS_KEY]
    return _open(settings.db_url, str(settings.resolved_home), settings)
