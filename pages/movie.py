"""Movie: one movie's poster, IMDb record and genres, and what the data-quality report says about it."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.corrections import active_corrections, corrected_genres
from core.data.ids import MOVIE_ID_RULE, imdb_url, valid_movie_id
from ui.chips import chip_style, genre_chips
from ui.corrections import movie_controls
from ui.data import findings_table, get_catalog
from ui.nav import require_entry_point
from ui.poster_grid import alike_cards
from ui.posters import show_poster
from ui.search import open_random_movie, title_search
from ui.text import literal_heading, literal_table, md_escape

require_entry_point()

FIELDS = {
    "year": "Year",
    "kind": "Type",
    "imdb_rating": "IMDb rating",
    "imdb_votes": "IMDb votes",
    "metascore": "Metascore",
    "runtime_min": "Runtime (min)",
    "rated": "Rated",
    "released": "Released",
    "director": "Director",
    "writer": "Writer",
    "actors": "Actors",
    "language": "Language",
    "country": "Country",
    "awards": "Awards",
    "box_office": "Box office",
    "plot": "Plot",
}

chip_style()
catalog = get_catalog()
raw_id = st.query_params.get("movie")
movie_id = valid_movie_id(raw_id)
if raw_id is None:
    st.title("Movie")
    st.write("One movie's poster, record and genres, and what the model makes of its poster.")
    with st.container(horizontal=True, vertical_alignment="bottom"):
        title_search(catalog, key="movie_page_search", label="Find a movie by its title")
        st.button("A random movie", icon=":material/casino:", on_click=open_random_movie, args=(catalog,))
    st.caption("Or open one from a genre gallery; its IMDb id is in the URL (`?movie=tt0080684`) to share it.")
    st.stop()
if movie_id is None:
    st.title("Movie")
    st.error(
        f"{md_escape(repr(raw_id[:40]))} is not a movie id ({md_escape(MOVIE_ID_RULE)}).", icon=":material/link_off:"
    )
    st.stop()
movie = catalog.movie(movie_id)
if movie is None:
    st.title("Movie")
    st.error(f"There is no movie {md_escape(movie_id)} in the catalog.", icon=":material/search_off:")
    st.stop()

literal_heading(movie["title"])
poster_column, details = st.columns([1, 2])
with poster_column:
    if movie["poster_path"] and movie["poster_readable"]:
        show_poster(movie["poster_path"], movie["poster_size"], movie["poster_mtime_ns"])
    else:
        st.warning("This movie has no readable poster.", icon=":material/hide_image:")
with details:
    corrections = active_corrections(catalog, movie_id)
    genres_now = corrected_genres(movie["genres"], corrections)
    st.caption("Genres (click one to open its gallery)")
    genre_chips(genres_now, key="movie")
    if corrections:
        st.caption(f"Corrected by you; the dataset says: {', '.join(map(md_escape, movie['genres'])) or 'no genre'}")
    movie_controls(catalog, movie, genres_now, corrections)
    rows = [{"field": label, "value": str(movie[key])} for key, label in FIELDS.items() if not pd.isna(movie.get(key))]
    literal_table(rows, hide_header=True)
    link = imdb_url(movie_id)
    st.caption(
        (f"IMDb id [{movie_id}]({link})" if link else f"id {md_escape(movie_id)}")
        + f" · record from {md_escape(str(movie['metadata_file']))}, line {movie['metadata_line']}"
    )

findings = findings_table(catalog, catalog.fingerprint)
own = findings[findings["imdb_id"] == movie_id]
if not own.empty:
    st.subheader("Data-quality findings")
    st.dataframe(own, hide_index=True, width="stretch")

# --- What the model and the poster embeddings say ----------------------------------------------------------
if movie["usable"]:
    from core.evaluation.mistakes import check_prediction
    from core.serving.uploads import UploadError
    from ui.explain import render_evidence
    from ui.mistakes import render_verdict
    from ui.model import active_model, catalog_poster_scores, index_or_progress

    loaded = active_model()
    if loaded is not None:
        run_id, model = loaded
        try:
            poster, scores = catalog_poster_scores(model, movie["poster_path"])
        except (UploadError, OSError) as error:
            st.error(f"The poster cannot be read for a prediction: {error}")
        else:
            st.subheader("The model's prediction beside the true genres")
            top = model.vocabulary.top_k(scores, 3)
            evidence, chips = st.columns([1, 1])
            with evidence:
                render_evidence(model, poster.pixels, poster.content_hash, top, key=movie_id, url_param="why")
            with chips:
                st.caption(
                    f"Top 3 of the active model (run {run_id}); true genres: {', '.join(map(md_escape, genres_now))}"
                )
                genre_chips(
                    [g for g, _ in top],
                    key="predicted",
                    scores=[s for _, s in top],
                    extra_params={"sort": "similar", "like": movie_id},
                )
                render_verdict(
                    check_prediction(model.genres, scores, model.thresholds, genres_now), corrected=bool(corrections)
                )
    st.subheader("Posters that look alike")
    index = index_or_progress(catalog, "Finding the posters that look alike", start=False)
    if index is not None and movie_id in index:
        alike_cards(catalog, index.nearest(index.vector(movie_id), k=6, exclude=[movie_id]), "alike")
