"""The header a first-time visitor reads on arrival: what the app is, its three steps and where each stands.

Like a Hugging Face demo's first lines: the name, one sentence, then the way in. Every step says whether
it is done (the catalog built, a model active) and links to where it is done; the third opens a sample
prediction on a movie of the catalog, so that no poster has to ship with the app.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.app import model_choice
from core.config import get_settings
from ui.nav import GENRE_PAGE, PREDICT_PAGE, TRAINING_PAGE
from ui.text import md_escape

DONE = ":green[:material/check_circle:]"
TO_DO = ":orange[:material/radio_button_unchecked:]"


def sample_movie(usable: pd.DataFrame) -> pd.Series | None:
    """A movie to predict as a sample: the most voted-for usable movie with two genres or more."""
    movies = usable[(usable["kind"] == "movie") & (usable["genres"].map(len) >= 2)]
    if movies.empty:
        movies = usable
    if movies.empty:
        return None
    return movies.sort_values(["imdb_votes", "imdb_id"], ascending=[False, True], na_position="last").iloc[0]


def welcome(usable_count: int, genre_counts: dict[str, int], sample: pd.Series | None) -> None:
    """The app's name, what it does, and its three steps with their state (`sample`: `sample_movie`'s)."""
    st.title("Poster Genre Explorer")
    st.markdown(
        "Guess a movie's genres from its poster alone. A movie can be Comedy *and* Romance, so each genre is its "
        "own yes/no question for the model. Look at the posters, train a model on them, then give it a poster."
    )
    active = model_choice.active_model_id(get_settings())
    explore, train, predict = st.columns(3)
    with explore.container(border=True, height="stretch"):
        st.markdown("**1 · Explore the data**")
        st.markdown(f"{DONE} Catalog built: {usable_count:,} usable movies in {len(genre_counts)} genres.")
        if genre_counts:
            first = next(iter(genre_counts))
            st.page_link(GENRE_PAGE, label=f"Browse the {md_escape(first)} posters", query_params={"genre": first})
        st.caption("Or read on: what is in the data, what is wrong with it, how uneven the genres are.")
    with train.container(border=True, height="stretch"):
        st.markdown("**2 · Train a model**")
        if active:
            st.markdown(f"{DONE} Active model: run {md_escape(active)}.")
            st.page_link(TRAINING_PAGE, label="Its figures", query_params={"run": active}, icon=":material/insights:")
        else:
            st.markdown(f"{TO_DO} No model yet: the Training page's form says how long the fast run takes here.")
            st.page_link(TRAINING_PAGE, label="Train one", icon=":material/model_training:")
    with predict.container(border=True, height="stretch"):
        st.markdown("**3 · Drop a poster**")
        if not active:
            st.markdown(f"{TO_DO} Needs a model (step 2).")
        if sample is not None:
            st.page_link(
                PREDICT_PAGE,
                label=f"Try a sample: {md_escape(sample['title'])}",
                query_params={"movie": str(sample["imdb_id"])},
                icon=":material/auto_awesome:",
                disabled=not active,
            )
        st.caption("The model's top-3 genres for any poster, and where in the poster it saw them.")
