"""Chinese by default, English on request: the toggle lives in the sidebar, the choice in state."""

from __future__ import annotations

import streamlit as st

_LANG_KEY = "pdo_lang_en"


def english() -> bool:
    """Whether this session reads the console in English."""
    return bool(st.session_state.get(_LANG_KEY, False))


def t(zh: str, en: str) -> str:
    """The text in the session's language."""
    return en if english() else zh


def language_toggle() -> None:
    """The sidebar switch between 中文 and English (kept across pages)."""
    st.toggle("English", key=_LANG_KEY, help="界面语言 / interface language")
