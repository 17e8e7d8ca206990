"""Poster Genre Explorer: the entry point wires the pages together and nothing else."""

from __future__ import annotations

import streamlit as st

from core.config import get_settings
from ui.caches import caches_control
from ui.data import existing_catalog
from ui.keras_session import keep_keras_session
from ui.links import keep_url_in_step
from ui.nav import PAGES
from ui.search import title_search

st.set_page_config(page_title="Poster Genre Explorer", page_icon=":material/movie_filter:", layout="wide")
keep_keras_session()  # the models this server loaded stay warm between script runs

pages = [
    st.Page(path, title=title, icon=icon, url_path="" if number == 0 else url_path, default=(number == 0))
    for number, (path, title, icon, url_path) in enumerate(PAGES)
]
# Streamlit serves the default page at "/" alone: a hidden twin answers at its own path (`/dataset?doubts=…`).
path, title, icon, url_path = PAGES[0]
pages.append(st.Page(path, title=title, icon=icon, url_path=url_path, visibility="hidden"))
page = st.navigation(pages)

with st.sidebar:
    settings = get_settings()
    search_place = st.container()
    catalog = existing_catalog()
    if catalog is not None:  # a page builds it first, with its progress bar
        with search_place:
            title_search(catalog, key="sidebar_search")
    st.caption(f"Dataset folder: `{settings.data_dir}`")
    caches_control()

keep_url_in_step(page.url_path)  # a link to the page already shown leaves its parameters in the URL
page.run()
if catalog is None and (built := existing_catalog()) is not None:  # the page has just built it: a first visit
    with search_place:
        title_search(built, key="sidebar_search")
