"""The engine's data for the pages: the catalog opened once per server, its tables cached per fingerprint.

Reading the dataset takes a few seconds the first time, so it happens here with a progress bar, and every
page after that gets the catalog from the cache. Tables are cached by the catalog's fingerprint, so a
rebuilt catalog can never be shown with an old table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from core import corrections
from core.config import DATA_DIR_ENV, DATASET_HOME_URL, Settings, get_settings
from core.data.catalog import Catalog
from core.data.catalog_build import clear_caches, open_catalog, open_existing_catalog
from core.data.ingest.archives import ArchiveError
from core.data.ingest.layout import DataNotFoundError, FolderStamps
from core.data.titles import title_with_year
from ui.text import md_escape

_log = logging.getLogger(__name__)


@st.cache_resource(ttl=60, show_spinner=False)
def _fresh_catalog(settings: Settings) -> Catalog | None:
    return open_existing_catalog(settings, _folder_stamps(str(settings.data_dir)))


@st.cache_resource(show_spinner=False)
def _folder_stamps(data_dir: str) -> FolderStamps:
    """What this server's checks last read of the dataset's year folders: at a million posters reading every
    file's stamp once a minute took about 10 s (`FolderStamps`)."""
    return FolderStamps()


def existing_catalog() -> Catalog | None:
    """The catalog when it is built and current, else None (without building it: for the sidebar's search)."""
    try:
        return _fresh_catalog(get_settings())
    except (DataNotFoundError, OSError):
        return None
    except Exception:  # every page draws the sidebar: a reader fault must cost its search, not the app
        _log.exception("the catalog could not be checked")
        return None


def forget_catalog_check() -> None:
    """Check the raw files again at the next page run (a page saw a poster change under the catalog), every
    one of them: a poster overwritten in place leaves its folder's time alone."""
    _fresh_catalog.clear()
    _folder_stamps.clear()


def _show_missing_data(settings: Settings, error: Exception) -> None:
    # A refused or damaged archive is there but unusable: the same advice (download it again) applies.
    what = "The dataset's archives cannot be used" if isinstance(error.__cause__, ArchiveError) else "No dataset found"
    st.error(f"{what}: {error}.", icon=":material/folder_off:")
    st.markdown(
        "The app reads the movie-poster dataset of Chu & Guo (2017) as its authors distribute it. "
        f"Download `Movie_Poster_Dataset.zip` and `Movie_Poster_Metadata.zip` from [the authors' page]({DATASET_HOME_URL}), "
        f"put them (or their unpacked folders) in one folder, and start the app with `{DATA_DIR_ENV}` set to it:"
    )
    st.code(f"{DATA_DIR_ENV}=/path/to/movie-posters make run", language="bash")
    st.caption(f"Looked in: {settings.data_dir}")


def get_catalog() -> Catalog:
    """The catalog, built with a progress bar if the raw files changed; stops the page if there is no data."""
    settings = get_settings()
    try:
        catalog = _fresh_catalog(settings)
        if catalog is not None:
            _show_corrections_notice(catalog)
            return catalog
        bar = st.progress(0.0, text="Reading the dataset…")
        catalog = open_catalog(settings, progress=lambda fraction, message: bar.progress(min(fraction, 1.0), message))
        bar.empty()
    except (DataNotFoundError, OSError) as error:
        _show_missing_data(settings, error)
        st.stop()
    except Exception as error:  # a fault of the reader itself: a message on this page, never a traceback
        _log.exception("the dataset could not be read")
        st.error(
            f"The dataset could not be read: {error} ({type(error).__name__}; the server's log has the details).",
            icon=":material/error:",
        )
        st.caption(f"Looked in: {settings.data_dir}")
        st.stop()
    _fresh_catalog.clear()
    if catalog.rebuilt_because == "no catalog yet":
        st.info(
            "The catalog was built from the raw data: there was no catalog file (a first start, or it was deleted).",
            icon=":material/sync:",
        )
    elif catalog.rebuilt_because:
        st.info(f"The catalog was rebuilt from the raw data: {catalog.rebuilt_because}.", icon=":material/sync:")
    _show_corrections_notice(catalog)
    return catalog


def _show_corrections_notice(catalog: Catalog) -> None:
    """Say, until dismissed, that the user's corrections store was damaged: which file, which backup."""
    notice = corrections.store_notice(catalog)
    if notice:
        with st.container(border=True):
            st.warning(md_escape(notice), icon=":material/warning:")
            st.button(
                "Dismiss", key="dismiss_corrections_notice", on_click=corrections.dismiss_store_notice, args=(catalog,)
            )


def clear_all_caches() -> list[str]:
    """Drop the on-disk caches and Streamlit's, so the next page load rebuilds from the raw data."""
    removed = clear_caches(get_settings())
    st.cache_data.clear()
    st.cache_resource.clear()
    return [path.name for path in removed]


# The catalog's tables are shared, not copied: `st.cache_data` would unpickle a fresh copy of the whole table
# on every rerun of every page that shows it (about 0.7 s of CPU for the movies of a 100,000-poster catalog,
# for a page that shows aggregates and 24 cards). Pandas' copy-on-write keeps a frame derived from one (a
# filter, a selection, a new index) from changing it, and no page assigns into the tables themselves.


@st.cache_resource(show_spinner=False, max_entries=8)
def movies_table(_catalog: Catalog, fingerprint: str) -> pd.DataFrame:
    return _catalog.movies()


@dataclass(frozen=True)
class DatasetFacts:
    """What the Dataset page shows of the movies table beyond the catalog's summary."""

    usable_count: int
    sample: pd.Series | None  # the welcome's sample movie to predict (`ui.welcome.sample_movie`)
    not_movies: pd.DataFrame  # the records of series and games


@st.cache_resource(show_spinner=False, max_entries=4)
def dataset_facts(_catalog: Catalog, fingerprint: str) -> DatasetFacts:
    """Once per catalog: filtering and sorting a million movies on every rerun took over a second."""
    from ui.welcome import sample_movie

    movies = movies_table(_catalog, fingerprint)
    usable = movies[movies["usable"]]
    return DatasetFacts(len(usable), sample_movie(usable), movies[movies["kind"] != "movie"])


@st.cache_resource(show_spinner=False, max_entries=4)
def usable_titles(_catalog: Catalog, fingerprint: str) -> dict[str, str]:
    """imdbID → "Title (year)" of every usable movie, series included, in imdbID order: the Predict page's
    pick list. Shared and never changed: reading it from the catalog took ~90 ms of a drop's script run."""
    movies = _catalog.usable_movies(include_non_movies=True)
    return {
        imdb_id: title_with_year(title, year)
        for imdb_id, title, year in zip(movies["imdb_id"], movies["title"], movies["year"], strict=True)
    }


@st.cache_resource(show_spinner=False, max_entries=8)
def findings_table(_catalog: Catalog, fingerprint: str) -> pd.DataFrame:
    return _catalog.findings()


@st.cache_resource(show_spinner=False, max_entries=8)
def metadata_files_table(_catalog: Catalog, fingerprint: str) -> pd.DataFrame:
    return _catalog.metadata_files()


# Live frames take more memory than the pickles `st.cache_data` kept: a few galleries' worth is enough.
@st.cache_resource(show_spinner=False, max_entries=16)
def gallery_table(
    _catalog: Catalog, fingerprint: str, genre: str, sort: str, year_from: int | None, year_to: int | None
) -> pd.DataFrame:
    return _catalog.genre_gallery(genre, sort, year_from, year_to)
