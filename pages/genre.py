"""Genre gallery: the posters of one genre, paged, sorted and filtered, with the whole view in the URL."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import streamlit as st

from core.app.urls import GALLERY_SORTS, GalleryView, last_page_if_past, page_count, parse_gallery_params
from ui.chips import chip_style, genre_chips
from ui.corrections import active_by_movie, gallery_card_control, show_message
from ui.data import gallery_table, get_catalog
from ui.links import scroll_to_top_on_new_view
from ui.nav import GENRE_PAGE, require_entry_point
from ui.poster_grid import movie_card_top, page_of, pager, poster_grid
from ui.posters import show_poster
from ui.text import md_escape

require_entry_point()

KIND_LABELS = {"series": "TV series", "game": "video game", "episode": "TV episode"}
chip_style()
catalog = get_catalog()
genres = list(catalog.genre_counts())
years = catalog.year_range()
view = parse_gallery_params(st.query_params.to_dict(), genres, years)
for message in view.messages:
    st.warning(md_escape(message), icon=":material/link_off:")


def _show(new_view: GalleryView) -> None:
    """Make the URL say exactly what is shown (it is what a user shares or reloads)."""
    st.query_params.from_dict(new_view.to_params())


def _on_change() -> None:
    state = st.session_state
    year_from, year_to = state["gallery_years"]
    # Every other field of the view stays as the URL had it; a new filter starts again at page 1.
    _show(
        replace(
            view,
            genre=state["gallery_genre"],
            sort=state["gallery_sort"],
            year_from=None if year_from == years[0] else year_from,
            year_to=None if year_to == years[1] else year_to,
            page=1,
        )
    )


st.title(f"Genre gallery: {md_escape(view.genre)}" if view.genre else "Genre gallery")
# Similarity needs a reference: a poster dropped in this session, or a usable movie of the catalog. Both are
# checked before the index, so that a bad reference is answered at once, even while the index is prepared.
query, reference = None, None
if view.poster or view.like:
    from core.serving.dropped_posters import PosterLinkError
    from ui.model import index_or_progress, linked_poster  # TensorFlow only for this sort order

    dropped, missing = None, None
    if view.poster:
        try:  # this session's drop, or one kept on the server: a reload or a shared link shows the same order
            dropped = linked_poster(view.poster)
        except PosterLinkError as error:
            missing = str(error)
    liked = catalog.movie(view.like) if view.like else None  # `like` is dropped when a poster is given
    if missing:
        st.warning(f"{md_escape(missing)} Sorted by title meanwhile.", icon=":material/hide_image:")
    elif view.like and not (liked and liked["usable"]):
        st.warning(f"{md_escape(view.like)} is not a usable movie of the catalog; sorted by title.")
    else:
        # While the index is being prepared its progress is shown, and the gallery is sorted by title meanwhile.
        index = index_or_progress(catalog, "The order by similarity")
        if index is not None and dropped is not None:
            query, reference = dropped.embedding, ("poster", dropped.poster)
        elif index is not None:  # the index holds every usable movie, so a usable `liked` is in it
            query, reference = index.vector(view.like), ("movie", liked)
# Similarity is offered only with a reference to compare with, and then first.
catalog_sorts = [sort for sort in GALLERY_SORTS if sort != "similar"]
sort_orders = ["similar", *catalog_sorts] if query is not None else catalog_sorts
if view.sort not in sort_orders:
    view = replace(view, sort="title")
st.session_state["gallery_genre"] = view.genre
st.session_state["gallery_sort"] = view.sort
st.session_state["gallery_years"] = (view.year_from or years[0], view.year_to or years[1])
controls = st.columns([2, 2, 3])
controls[0].selectbox(
    "Genre", genres, key="gallery_genre", on_change=_on_change, placeholder="Choose a genre", format_func=md_escape
)
controls[1].selectbox("Sort by", sort_orders, key="gallery_sort", format_func=GALLERY_SORTS.get, on_change=_on_change)
controls[2].slider("Years", min_value=years[0], max_value=years[1], key="gallery_years", on_change=_on_change)

if not view.genre:
    st.info("Choose a genre to see its posters.", icon=":material/photo_library:")
    st.stop()

sort = st.session_state["gallery_sort"]
movies = gallery_table(
    catalog, catalog.fingerprint, view.genre, "title" if sort == "similar" else sort, view.year_from, view.year_to
)
similarity: dict[str, float] = {}
if sort == "similar" and query is not None:
    ranked = index.rank(query, movies["imdb_id"])
    similarity = {neighbour.imdb_id: neighbour.similarity for neighbour in ranked}
    movies = movies.set_index("imdb_id").loc[list(similarity)].reset_index()
if reference is not None:
    with st.container(horizontal=True, vertical_alignment="center"):
        if reference[0] == "poster":
            st.image(reference[1].pixels, width=60)
            st.caption(f"Similarity is to your poster {md_escape(reference[1].filename)}")
        else:
            show_poster(
                reference[1]["poster_path"], reference[1]["poster_size"], reference[1]["poster_mtime_ns"], 60, card=True
            )
            st.caption(f"Similarity is to the poster of {md_escape(reference[1]['title'])}")
pages = page_count(len(movies))
past: list[str] = []
view = replace(view, page=last_page_if_past(view.page, pages, past))
for message in past:
    st.warning(message)
span = f"{view.year_from or years[0]}–{view.year_to or years[1]}"
st.markdown(f"**{len(movies):,} movies** of genre {md_escape(view.genre)} from {span} · page {view.page} of {pages}")

show_message()
corrected = active_by_movie(catalog)


def card(movie) -> None:
    movie_card_top(movie.imdb_id, movie.title, movie.poster_path, movie.poster_size, movie.poster_mtime_ns)
    rating = "" if pd.isna(movie.imdb_rating) else f" · ★ {movie.imdb_rating:.1f}"
    alike = f" · similarity {similarity[movie.imdb_id]:.2f}" if movie.imdb_id in similarity else ""
    caption = md_escape(f"{movie.year}{rating}{alike}")
    if movie.kind != "movie":  # series and games are in the dataset too: say so on their card
        caption += f" · :violet-badge[{md_escape(KIND_LABELS.get(movie.kind, movie.kind))}]"
    st.caption(caption)
    genre_chips(movie.genres, key=movie.imdb_id)
    gallery_card_control(catalog, movie.imdb_id, movie.title, view.genre, corrected.get(movie.imdb_id, []))


def page_params(number: int) -> dict[str, str]:
    return replace(view, page=number).to_params()


pager(GENRE_PAGE, view.page, pages, page_params, "top")
shown = list(page_of(movies, view.page).itertuples())
poster_grid(shown, card, lambda movie: f"card-{movie.imdb_id}", "gallery")
pager(GENRE_PAGE, view.page, pages, page_params, "bottom")
scroll_to_top_on_new_view(view.to_params())
