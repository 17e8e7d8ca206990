"""The Dataset page's figures and tables, computed once per catalog (its fingerprint) and per chart option.

Building a Plotly Express figure takes a tenth of a second to half a second on a small machine, and the
aggregates behind them as much again, while the catalog they come from changes only with the raw files.
So they are built here once per fingerprint (and per option: the log scale, the chosen genres) and a
rerun (a toggle, a click, a new tab) only sends them again. Figures are shared between sessions
(`st.cache_resource`, no copy per run) and never changed after they are built. No chart has more than a few
thousand marks: the posters' sizes are binned here rather than sent one point per poster.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from core import eda
from core.catalog import Catalog
from ui.data import movies_table

SIZE_BINS = 30  # per axis of the width × height map
ASPECT_BINS = 40


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


@st.cache_resource(show_spinner=False, max_entries=8)
def imbalance_chart(imbalance: pd.DataFrame, log_scale: bool) -> go.Figure:
    bars = px.bar(
        imbalance,
        x="movies",
        y="genre",
        orientation="h",
        text=imbalance["share_pct"].map(lambda share: f"{share:.1f} %"),
        custom_data=["genre"],
        log_x=log_scale,
    )
    bars.update_layout(yaxis={"categoryorder": "total ascending"}, height=24 * len(imbalance) + 80, margin={"t": 10})
    return bars.update_traces(hovertemplate="%{y}: %{x} usable movies (%{text})<extra></extra>")


@st.cache_resource(show_spinner=False, max_entries=4)
def labels_per_movie_chart(_catalog: Catalog, fingerprint: str) -> go.Figure:
    per_movie = eda.labels_per_movie(_usable(_catalog, fingerprint))
    return px.bar(per_movie, x="genres_per_movie", y="movies", text="movies")


@st.cache_resource(show_spinner=False, max_entries=4)
def co_occurrence_chart(_catalog: Catalog, fingerprint: str, order: tuple[str, ...]) -> go.Figure:
    matrix = eda.co_occurrence(_usable(_catalog, fingerprint), list(order))
    heat = px.imshow(matrix, color_continuous_scale="Blues", aspect="auto", labels={"color": "movies"})
    return heat.update_layout(height=520, margin={"t": 10})


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
            z=np.where(counts.T > 0, counts.T, np.nan),
            colorscale="Blues",
            colorbar={"title": "posters"},
            hovertemplate="width ≈ %{x:.0f}, height ≈ %{y:.0f}: %{z} posters<extra></extra>",
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
    columns = ["poster", "poster_size", "poster_mtime_ns", "title", "year"]
    return members.sample(n=min(count, len(members)), random_state=0)[columns]
