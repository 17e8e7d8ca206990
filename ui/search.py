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


def title_search(catalog: Catalog, key: str, label: str = "Find a movie") -> None:
    """The search box; a choice opens the movie's view."""
    titles = movie_titles(catalog, catalog.fingerprint)
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
    chosen = st.session_state.get(_CHOSEN)
    if chosen and chosen[0] == key and chosen[1]:
        st.session_state.pop(_CHOSEN)
        follow_link(MOVIE_PAGE, {"movie": chosen[1]}, f"Opening {titles[chosen[1]]}", key=f"{key}-{chosen[1]}")


def open_random_movie(catalog: Catalog) -> None:
    """A button callback: show a random usable movie, its id put in the URL."""
    ids = catalog.usable_movies(include_non_movies=True)["imdb_id"].tolist()
    if ids:
        st.query_params.from_dict({"movie": random.choice(ids)})
