"""The Dataset page's figures and tables, computed once per catalog (its fingerprint) and per chart option.

Building a Plotly Express figure takes a tenth of a second to half a second on a small machine, and the
aggregates behind them as much again, while the catalog they come from changes only with the raw files.
So they are built here once per fingerprint (and per option: the log scale, the chosen genres) and a
rerun (a toggle, a click, a new tab) only sends them again. Figures are shared between sessions
(`st.cache_resource`, no copy per run) and never changed after they are built. No chart has more than a few
thousand marks: the posters' sizes are binned here rather than sent one point per poster.
"""

from __future__ import annotations

import html
import math
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from core.data import eda
from core.data.catalog import Catalog
from ui.data import movies_table
from ui.figures import every_label
from ui.text import html_text

SIZE_BINS = 30  # per axis of the width × height map
ASPECT_BINS = 40
LABEL_CHARACTER_PX = 8  # room per character of an axis label, at Plotly's 12 px font
LOG_TICKS = [0, 1, 2, 3, 4]  # colour-bar marks of the poster-size map: 1, 10, 100, 1,000, 10,000 posters


def _usable(catalog: Catalog, fingerprint: str) -> pd.DataFrame:
    movies = movies_table(catalog, fingerprint)
    return movies[movies["usable"]]


@st.cache_data(show_spinner=False, max_entries=4)
def per_year(_catalog: Catalog, fingerprint: str) -> pd.DataFrame:
    return eda.records_and_posters_per_year(movies_table(_catalog, fingerprint))


@st.cache_resource(show_spinner=False, max_entries=4)
def per_year_chart(_catalog: Catalog, fingerprint: str) -> go.Figure:
    long = per_year(_catalog, fingerprint).melt(
        id_vars="year", value_vars=["with_poster", "without_poster"], var_name="poster", value_name="movies"
    )
    long["poster"] = long["poster"].map({"with_poster": "with a poster", "without_poster": "without a poster"})
    chart = px.bar(
        long,
        x="year",
        y="movies",
        color="poster",
        color_discrete_map={"with a poster": "#4c78a8", "without a poster": "#e45756"},
    )
    return chart.update_layout(legend_title_text="", margin={"t": 10}, xaxis={"dtick": 2})


def imbalance_bars(imbalance: pd.DataFrame, log_scale: bool) -> str:
    """The genres' bars as one HTML element, each bar a link to its genre's gallery in the same tab.

    A Plotly chart here cost a new tab about 1.5 s on one core (its library loaded, then drawn) on the page
    people open first; these bars are plain HTML, drawn with the page. A click is an ordinary link: one
    history entry, Back returns here, the URL can be shared. A genre's name comes from the dataset and is
    escaped; the bars' lengths are linear, or logarithmic so that the rare genres stay visible.
    """
    most = max(int(imbalance["movies"].max()), 1) if len(imbalance) else 1

    def length(movies: int) -> float:
        if log_scale:
            return 100 * math.log10(1 + movies) / math.log10(1 + most)
        return 100 * movies / most

    rows = []
    for genre, movies, share in imbalance[["genre", "movies", "share_pct"]].itertuples(index=False):
        name = html_text(genre)
        href = html.escape("genre?" + urlencode({"genre": genre}))
        title = f"{name}: {movies:,} usable movies ({share:.1f} %), click for their posters"
        rows.append(
            f'<a href="{href}" target="_self" title="{title}" style="{_BAR_ROW}">'
            f'<span style="{_BAR_NAME}">{name}</span>'
            f'<span style="{_BAR_TRACK}"><span style="{_BAR_FILL}width:{length(int(movies)):.2f}%"></span></span>'
            f'<span style="{_BAR_FIGURE}">{movies:,} · {share:.1f} %</span></a>'
        )
    return f'<div style="display:flex;flex-direction:column;gap:3px">{"".join(rows)}</div>'


# The one rule inline styles cannot hold: the bar under the pointer lights up, so it reads as a link.
BARS_HOVER_STYLE = "<style>.st-key-genre-bars a:hover span span { background: #f5c518 !important; }</style>"
_BAR_ROW = "display:flex;align-items:center;gap:10px;text-decoration:none;color:inherit;line-height:1.6"
_BAR_NAME = "flex:0 0 9rem;text-align:right;overflow:hidden;text-overflow:ellipsis;white-space:nowrap"
_BAR_TRACK = "flex:1 1 auto;height:1.05rem"
_BAR_FILL = "display:block;height:100%;background:#4c78a8;border-radius:2px;"
_BAR_FIGURE = "flex:0 0 8.5rem;font-variant-numeric:tabular-nums;opacity:0.85"


@st.cache_resource(show_spinner=False, max_entries=4)
def labels_per_movie_chart(_catalog: Catalog, fingerprint: str) -> go.Figure:
    per_movie = eda.labels_per_movie(_usable(_catalog, fingerprint))
    chart = px.bar(
        per_movie, x="genres_per_movie", y="movies", text="movies", labels={"genres_per_movie": "genres per movie"}
    )
    return chart.update_layout(xaxis={"tickmode": "linear", "dtick": 1}, margin={"t": 10})


def co_occurrence_shares(counts: pd.DataFrame) -> pd.DataFrame:
    """Row A, column B: the share of A's movies that are also B. The diagonal (always 1) is left empty, so
    the colours are spent on the pairs: raw counts are swamped by the big genres and by the diagonal."""
    totals = np.diag(counts.to_numpy()).astype(float)
    shares = counts.to_numpy() / np.where(totals > 0, totals, np.nan)[:, None]
    np.fill_diagonal(shares, np.nan)
    return pd.DataFrame(shares, index=counts.index, columns=counts.columns)


@st.cache_resource(show_spinner=False, max_entries=4)
def co_occurrence_chart(_catalog: Catalog, fingerprint: str, order: tuple[str, ...]) -> go.Figure:
    counts = eda.co_occurrence(_usable(_catalog, fingerprint), list(order))
    shares = co_occurrence_shares(counts)
    heat = go.Figure(
        go.Heatmap(
            z=shares.to_numpy(),
            x=list(order),
            y=list(order),
            customdata=counts.to_numpy(),
            colorscale="YlOrRd",
            zmin=0,
            colorbar={"title": "share", "tickformat": ".0%"},
            hovertemplate="%{z:.0%} of %{y} movies are also %{x} (%{customdata} movies)<extra></extra>",
        )
    )
    # Upright names need only a line's height per column, where slanted ones overlapped in a half-width
    # column; the bottom margin holds the longest name.
    label_room = LABEL_CHARACTER_PX * max((len(genre) for genre in order), default=0) + 50
    return heat.update_layout(
        height=28 * len(order) + 60 + label_room,
        margin={"t": 10, "b": label_room},
        xaxis={**every_label(order), "title": "…are also this genre", "tickangle": -90, "automargin": True},
        yaxis={**every_label(order), "title": "Of this genre's movies…", "autorange": "reversed"},
    )


@st.cache_data(show_spinner=False, max_entries=4)
def genres_over_years(_catalog: Catalog, fingerprint: str) -> pd.DataFrame:
    return eda.genres_over_years(_usable(_catalog, fingerprint))


@st.cache_resource(show_spinner=False, max_entries=16)
def genres_over_years_chart(_catalog: Catalog, fingerprint: str, genres: tuple[str, ...]) -> go.Figure:
    over_years = genres_over_years(_catalog, fingerprint)
    chart = px.line(over_years[over_years["genre"].isin(genres)], x="year", y="share_pct", color="genre", markers=True)
    return chart.update_layout(yaxis_title="share of the year's usable movies (%)")


@st.cache_data(show_spinner=False, max_entries=4)
def poster_sizes(_catalog: Catalog, fingerprint: str) -> pd.DataFrame:
    return eda.poster_sizes(movies_table(_catalog, fingerprint))


@st.cache_resource(show_spinner=False, max_entries=4)
def poster_size_charts(_catalog: Catalog, fingerprint: str) -> tuple[go.Figure, go.Figure]:
    """Width × height as a binned map, and the aspect ratio's histogram: counts per bin, not one mark per poster."""
    sizes = poster_sizes(_catalog, fingerprint)
    counts, widths, heights = np.histogram2d(sizes["poster_width"], sizes["poster_height"], bins=SIZE_BINS)
    size_map = go.Figure(
        go.Heatmap(
            x=(widths[:-1] + widths[1:]) / 2,
            y=(heights[:-1] + heights[1:]) / 2,
            # A log scale: most posters share a few sizes, and a linear one painted everything else one colour.
            z=np.where(counts.T > 0, np.log10(np.maximum(counts.T, 1)), np.nan),
            customdata=counts.T,
            colorscale="Viridis",
            colorbar={"title": "posters", "tickvals": LOG_TICKS, "ticktext": [f"{10**t:,.0f}" for t in LOG_TICKS]},
            hovertemplate="width ≈ %{x:.0f}, height ≈ %{y:.0f}: %{customdata:.0f} posters<extra></extra>",
        )
    ).update_layout(xaxis_title="poster width (px)", yaxis_title="poster height (px)", margin={"t": 10})
    shares, edges = np.histogram(sizes["aspect"], bins=ASPECT_BINS)
    aspect = go.Figure(
        go.Bar(
            x=(edges[:-1] + edges[1:]) / 2,
            y=shares,
            width=np.diff(edges),
            hovertemplate="height / width ≈ %{x:.2f}: %{y} posters<extra></extra>",
        )
    ).update_layout(xaxis_title="height / width", yaxis_title="posters", margin={"t": 10})
    return size_map, aspect


@st.cache_data(show_spinner=False, max_entries=64)
def sample_posters(_catalog: Catalog, fingerprint: str, genre: str, count: int = 8) -> pd.DataFrame:
    """A fixed sample of a genre's usable movies (the same on every visit)."""
    usable = _usable(_catalog, fingerprint)
    members = usable[usable["genres"].map(lambda names: genre in names)]
    columns = ["imdb_id", "poster", "poster_size", "poster_mtime_ns", "title", "year"]
    return members.sample(n=min(count, len(members)), random_state=0)[columns]
