"""Map: every usable poster placed by how the backbone sees it (a 2-D layout of the similarity vectors),
coloured by a genre or by year; a box or lasso selection opens a gallery of exactly those posters, and a
click on one poster opens its card.

The chart keeps Streamlit's own drag mode (pan): Streamlit turns a click into a points selection only
outside the box and lasso modes, so a map that opened in box mode ignored every click. The box and lasso
are one click away in the chart's toolbar.

The view is in the URL: `/map?layout=umap&color=Horror&box=x0,x1,y0,y1` (or `poly=x1,y1,…` for a lasso),
`movie=` for a clicked poster's card and `poster=` for a poster dropped on the Predict page, marked on the
map. Every link the page writes names its layout: a selection means something only in its own layout, and a
link without one is older than UMAP, so its selection opens on PCA (`projection.parse_layout`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core.app import jobs
from core.app.urls import MapView, last_page_if_past, page_count, parse_map_params
from core.config import get_settings
from core.serving import projection
from core.serving.similar import SimilarityIndex
from ui.data import get_catalog, movies_table
from ui.nav import MAP_PAGE, MOVIE_PAGE, require_entry_point
from ui.poster_grid import movie_card_top, page_of, pager, poster_grid
from ui.posters import show_poster
from ui.text import md_escape

require_entry_point()

st.title("Map of the posters")
settings = get_settings()
catalog = get_catalog()
key = projection.map_key(catalog)
poster_map = projection.load_map(settings, key)
if poster_map is None:
    status = jobs.job_status(settings, key)
    if status.state == "failed":
        st.error(f"The map could not be computed: {md_escape(status.error or 'no reason recorded')}")
        if st.button("Try again"):
            jobs.start_job(settings, key, projection.JOB_TARGET)
            st.rerun()
        st.stop()
    jobs.ensure_job(settings, key, projection.JOB_TARGET)

    @st.fragment(run_every=2)
    def waiting() -> None:
        current = jobs.job_status(settings, key)
        if not current.is_active:
            st.rerun()
        st.progress(
            current.fraction,
            text=f"Computing the map: {current.message or current.state} ({current.done:,} of {current.total:,})",
        )

    st.info(
        "The map is computed once per dataset, in the background: the posters are embedded (minutes the "
        "first time, unless a training run did it already), then laid out (a minute or two)."
    )
    waiting()
    st.stop()

movies = movies_table(catalog, catalog.fingerprint).set_index("imdb_id").loc[poster_map.ids]
genres = list(catalog.genre_counts())
view = parse_map_params(st.query_params.to_dict(), genres)
messages = [md_escape(message) for message in view.messages]
layout, color = view.layout, view.color
xy = poster_map.xy(layout)
selected: np.ndarray | None = None
selection_shape: dict | None = None
if view.box:
    box = view.corners()
    selected = projection.in_box(xy, box)
    selection_shape = {"type": "rect", "x0": box[0], "x1": box[1], "y0": box[2], "y1": box[3]}
elif view.poly:
    polygon = view.polygon()
    selected = projection.in_polygon(xy, polygon)
    selection_shape = {"type": "path", "path": "M " + " L ".join(f"{x},{y}" for x, y in polygon) + " Z"}
picked = view.movie
if picked is not None and picked not in movies.index:
    messages.append("The movie in the URL is not on the map.")
    picked = None
dropped = None
if view.poster:
    from core.serving.dropped_posters import PosterLinkError
    from ui.model import linked_poster

    # Kept on the server for its links, as the chip galleries' poster is: a reload or a shared link finds it.
    try:
        dropped = linked_poster(view.poster)
    except PosterLinkError as error:
        messages.append(md_escape(str(error)))
for message in messages:
    st.warning(message, icon=":material/link_off:")


def _show(new_view: MapView) -> None:
    """Make the URL say exactly what is shown; every change but a page link starts the selection at page 1."""
    st.query_params.from_dict(replace(new_view, page=1).to_params())


def _on_select() -> None:
    """A box, a lasso or a click on the map, written into the URL (the view is drawn from there)."""
    selection = st.session_state["poster_map"].selection
    if selection.get("box"):
        area = selection["box"][0]
        _show(replace(view, box=projection.format_numbers([*area["x"][:2], *area["y"][:2]]), poly=None))
    elif selection.get("lasso"):
        area = selection["lasso"][0]
        corners = [value for pair in zip(area["x"], area["y"], strict=True) for value in pair]
        _show(replace(view, poly=projection.format_numbers(corners), box=None))
    elif selection.get("points"):
        point = selection["points"][0]
        if point.get("customdata"):
            _show(replace(view, movie=str(point["customdata"][0])))


def _on_color() -> None:
    _show(replace(view, color=st.session_state["map_color"]))


def _on_layout() -> None:
    """Another layout: a selection's corners mean nothing there, so it goes."""
    _show(replace(view, layout=st.session_state["map_layout"] or layout, box=None, poly=None))


st.session_state["map_layout"] = layout
st.session_state["map_color"] = color
with st.container(horizontal=True):
    st.segmented_control(
        "Layout", list(projection.LAYOUTS), key="map_layout", on_change=_on_layout, format_func=projection.LAYOUTS.get
    )
    st.selectbox("Colour by", ["year", *genres], key="map_color", on_change=_on_color, format_func=md_escape)
hover = [
    f"{title} ({year})<br>{', '.join(names)}"
    for title, year, names in zip(movies["title"], movies["year"], movies["genres"], strict=True)
]
figure = go.Figure()
ids = np.array(poster_map.ids)
if color == "year":
    figure.add_trace(
        go.Scattergl(
            x=xy[:, 0],
            y=xy[:, 1],
            mode="markers",
            customdata=ids[:, None],
            text=hover,
            hovertemplate="%{text}<extra></extra>",
            name="posters",
            marker={"size": 5, "color": movies["year"], "colorscale": "Viridis", "colorbar": {"title": "year"}},
        )
    )
else:
    has = np.array([color in names for names in movies["genres"]])
    for mask, name, tint in ((~has, f"not {color}", "rgba(150,150,150,0.35)"), (has, color, "#f5c518")):
        figure.add_trace(
            go.Scattergl(
                x=xy[mask, 0],
                y=xy[mask, 1],
                mode="markers",
                customdata=ids[mask][:, None],
                text=[text for text, keep in zip(hover, mask, strict=True) if keep],
                hovertemplate="%{text}<extra></extra>",
                name=name,
                marker={"size": 5, "color": tint},
            )
        )
spot = None
if dropped is not None and layout == "pca":
    spot = poster_map.place(dropped.embedding, layout)[0]
elif dropped is not None:
    # Placed among its most similar catalog posters: the index is ready, since the map's job embedded them.
    from ui.model import similarity_index

    catalog_index = similarity_index(catalog, settings, start=False)
    if isinstance(catalog_index, SimilarityIndex):
        spot = poster_map.place(dropped.embedding, layout, catalog_index)[0]
    else:
        st.warning("Your poster cannot be placed until the posters' embeddings are back; try PCA.")
if spot is not None:
    figure.add_trace(
        go.Scattergl(
            x=[spot[0]],
            y=[spot[1]],
            mode="markers",
            name=f"your poster ({dropped.poster.filename})",
            marker={"size": 18, "symbol": "star", "color": "#e45756", "line": {"width": 1, "color": "white"}},
            hovertemplate="your poster<extra></extra>",
        )
    )
if selection_shape:
    figure.add_shape(**selection_shape, line={"color": "#e45756", "dash": "dot"})
explained = poster_map.explained
if layout == "pca":
    axes = (f"axis 1 ({explained[0]:.0%} of the variance)", f"axis 2 ({explained[1]:.0%} of the variance)")
    how = f"PCA (the two axes keep {explained.sum():.0%} of the variance)"
else:
    axes = ("UMAP 1", "UMAP 2")
    how = "UMAP, which keeps each poster near those most like it (distances between groups mean little)"
figure.update_layout(
    height=640,
    xaxis_title=axes[0],
    yaxis_title=axes[1],
    legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"},
    margin={"t": 30},
)
st.plotly_chart(
    figure,
    key="poster_map",
    on_select=_on_select,
    selection_mode=("points", "box", "lasso"),
    width="stretch",
)
st.caption(
    f"{len(ids):,} posters, placed by {how} from their 1,280-d similarity vectors. Nearby posters look alike "
    "to the backbone. Click a poster for its card; pick the box or lasso in the chart's toolbar and draw one to "
    "see those posters."
)

if picked:
    movie = catalog.movie(picked)
    with st.container(border=True, key="map-card", horizontal=True):
        show_poster(movie["poster_path"], movie["poster_size"], movie["poster_mtime_ns"], width=120)
        with st.container():
            st.page_link(MOVIE_PAGE, label=md_escape(movie["title"]), query_params={"movie": picked})
            st.caption(md_escape(f"{movie['year']} · {', '.join(movie['genres'])}"))

if selected is not None:
    chosen = movies[selected].sort_values(["year", "title"])
    pages = page_count(len(chosen))
    past: list[str] = []
    page = last_page_if_past(view.page, pages, past)
    for message in past:
        st.warning(md_escape(message), icon=":material/link_off:")
    st.subheader(f"{len(chosen):,} selected posters")
    if chosen.empty:
        st.caption("The selection holds no poster.")

    def card(row: tuple[str, dict]) -> None:
        imdb_id, movie = row
        poster = str(catalog.data_root / movie["poster"])
        movie_card_top(imdb_id, movie["title"], poster, movie["poster_size"], movie["poster_mtime_ns"])

    rows = [(imdb_id, movie) for imdb_id, movie in page_of(chosen, page).iterrows()]
    poster_grid(rows, card, lambda row: f"selected-{row[0]}", "selection")
    pager(MAP_PAGE, page, pages, lambda number: replace(view, page=number).to_params(), "bottom")
