"""Find a movie by its title, from the sidebar of every page and from the empty Movie page.

A select box that filters as one types is the keyboard's way in (type, arrows, Enter), and the choice is
followed as a link click (`ui.links.follow_link`), so the movie's view gets its URL and one history entry.
"""

from __future__ import annotations

import random

import streamlit as st

from core.data.catalog import Catalog
from core.data.titles import title_sort_key, title_with_year
from ui.data import movies_table
from ui.links import follow_link
from ui.nav import MOVIE_PAGE

_CHOSEN = "search_chosen"
LIST_ALL_UP_TO = 20_000  # movies a single select box offers; past this, typed text first (title_search)
MATCHES_SHOWN = 50


@st.cache_resource(show_spinner=False, max_entries=4)
def movie_titles(_catalog: Catalog, fingerprint: str) -> dict[str, str]:
    """imdbID → "Title (year)" of every movie of the catalog, in the order titles file. Shared, never changed
    (the sidebar reads it on every script run of every page: `st.cache_data` unpickled a copy each time)."""
    movies = movies_table(_catalog, fingerprint)
    movies = movies.assign(key=movies["title"].map(title_sort_key)).sort_values(["key", "year", "imdb_id"])
    return {
        imdb_id: title_with_year(title, year)
        for imdb_id, title, year in zip(movies["imdb_id"], movies["title"], movies["year"], strict=True)
    }


def _chosen(key: str) -> None:
    st.session_state[_CHOSEN] = (key, st.session_state[key])
    st.session_state[key] = None  # the box is empty again when Back returns to this page


@st.cache_resource(show_spinner=False, max_entries=4)
def _folded_titles(_catalog: Catalog, fingerprint: str) -> tuple[list[str], list[str]]:
    """The ids and case-folded "Title (year)" of every movie, in the titles' order, for matching typed text."""
    titles = movie_titles(_catalog, fingerprint)
    return list(titles), [title.casefold() for title in titles.values()]


@st.cache_data(show_spinner=False, max_entries=64)
def _matching(_catalog: Catalog, fingerprint: str, text: str) -> list[str]:
    """The first MATCHES_SHOWN movies whose "Title (year)" holds `text`, whatever its case."""
    ids, folded = _folded_titles(_catalog, fingerprint)
    wanted = text.casefold()
    return [ids[row] for row, title in enumerate(folded) if wanted in title][:MATCHES_SHOWN]


def title_search(catalog: Catalog, key: str, label: str = "Find a movie") -> None:
    """The search box; a choice opens the movie's view.

    Up to LIST_ALL_UP_TO movies, one select box that filters as one types. Past that, a select box would send
    every title to the browser on every script run of every page (a million titles: 25 MB, and 1.3 s of the
    script to index them), so the typed text comes first and the box lists the titles that hold it.
    """
    titles = movie_titles(catalog, catalog.fingerprint)
    if len(titles) <= LIST_ALL_UP_TO:
        st.selectbox(
            label,
            list(titles),
            index=None,
            format_func=titles.__getitem__,
            placeholder="Type a title…",
            key=key,
            on_change=_chosen,
            args=(key,),
            help="Type part of a title, pick with the arrow keys and Enter: the movie's page opens.",
        )
    else:
        text = st.text_input(
            label,
            key=f"{key}_text",
            placeholder="Type part of a title, then Enter",
            help=f"{len(titles):,} movies: type part of a title and press Enter, then pick one of the matches.",
        ).strip()
        if text:
            matches = _matching(catalog, catalog.fingerprint, text)
            if matches:
                st.selectbox(
                    f"Titles that hold “{text}”"
                    + (f" (the first {MATCHES_SHOWN})" if len(matches) == MATCHES_SHOWN else ""),
                    matches,
                    index=None,
                    format_func=titles.__getitem__,
                    placeholder=f"{len(matches)} match{'es' if len(matches) > 1 else ''}: pick one",
                    key=key,
                    on_change=_chosen,
                    args=(key,),
                )
            else:
                st.caption("No title holds that.")
    chosen = st.session_state.get(_CHOSEN)
    if chosen and chosen[0] == key and chosen[1]:
        st.session_state.pop(_CHOSEN)
        follow_link(MOVIE_PAGE, {"movie": chosen[1]}, f"Opening {titles[chosen[1]]}", key=f"{key}-{chosen[1]}")


def open_random_movie(catalog: Catalog) -> None:
    """A button callback: show a random usable movie, its id put in the URL."""
    ids = catalog.usable_movies(include_non_movies=True)["imdb_id"].tolist()
    if ids:
        st.query_params.from_dict({"movie": random.choice(ids)})
