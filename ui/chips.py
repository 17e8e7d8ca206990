"""Genre chips that are links: clicking one opens that genre's gallery.

A pill keeps its selection in the session, so the click is turned into a pending navigation in the
callback and the pill is cleared; the page then switches at the next safe point (`follow_chip_click`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import streamlit as st

from ui.nav import GENRE_PAGE
from ui.text import md_escape

_PENDING = "_pending_genre_link"


def _on_chip(key: str, extra_params: dict[str, str]) -> None:
    genre = st.session_state.get(key)
    if genre:
        st.session_state[_PENDING] = {"genre": genre, **extra_params}
    st.session_state[key] = None


def genre_chips(
    genres: Sequence[str],
    key: str,
    label: str = "Genres",
    format_func: Callable[[str], str] | None = None,
    extra_params: dict[str, str] | None = None,
) -> None:
    """One chip per genre; a click opens the gallery of that genre (with `extra_params` in its URL)."""
    if not genres:
        st.caption("no genre")
        return
    st.pills(
        label,
        list(genres),
        key=key,
        format_func=format_func or md_escape,
        on_change=_on_chip,
        args=(key, extra_params or {}),
        label_visibility="collapsed",
    )


def follow_chip_click() -> None:
    """Switch to the gallery if a chip was clicked in the last interaction; call it early on every page."""
    target = st.session_state.pop(_PENDING, None)
    if target:
        st.switch_page(GENRE_PAGE, query_params=target)
