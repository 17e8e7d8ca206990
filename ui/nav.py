"""The app's pages and their URL paths, in one place so that links, `switch_page` and tests agree."""

from __future__ import annotations

DATASET_PAGE = "pages/dataset.py"
GENRE_PAGE = "pages/genre.py"
MOVIE_PAGE = "pages/movie.py"
PREDICT_PAGE = "pages/predict.py"
TRAINING_PAGE = "pages/training.py"
MAP_PAGE = "pages/map.py"

# (file, title, icon, url path); the first page is the default one, at "/" and at its own path.
PAGES: list[tuple[str, str, str, str]] = [
    (DATASET_PAGE, "Dataset", ":material/dataset:", "dataset"),
    (GENRE_PAGE, "Genre gallery", ":material/photo_library:", "genre"),
    (MOVIE_PAGE, "Movie", ":material/movie:", "movie"),
    (PREDICT_PAGE, "Predict", ":material/auto_awesome:", "predict"),
    (TRAINING_PAGE, "Training", ":material/model_training:", "training"),
    (MAP_PAGE, "Map", ":material/scatter_plot:", "map"),
]


def require_entry_point() -> None:
    """Make sure this page runs inside `app.py`'s navigation, even on a fresh server's first deep link.

    Streamlit decides once per server process whether the app uses the old `pages/` folder discovery or
    `st.navigation`, and it only learns the latter when `app.py` itself runs. A first visit straight to
    `/genre` therefore runs this file on its own, without the app's layout, sidebar or page list. Telling
    Streamlit that `st.navigation` is in charge and rerunning makes that first visit go through `app.py`.
    """
    import streamlit as st
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
