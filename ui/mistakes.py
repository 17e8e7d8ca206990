"""A run's mistakes on its page: per-genre counts that link to their posters, a clickable "mistaken for"
matrix, and the gallery of one outcome (`/training?run=…&genre=B&errors=fp|fn|tp[&labelled=A][&part=…]`).

The counts are links to the gallery's URL in the same tab, so a click adds one browser-history entry and Back
returns to the run. The matrix is a Plotly heat map with an invisible marker on each cell: heat maps
cannot be selected in Streamlit, markers can, and a click on one writes the cell's gallery into the URL.
"""

from __future__ import annotations

import math
from dataclasses import replace
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.app.runs import RunView
from core.app.urls import MistakesView, last_page_if_past, page_count
from core.data.catalog import Catalog
from core.evaluation.mistakes import OUTCOME_NAMES, OUTCOMES, PartPredictions, PredictionCheck, outcomes
from core.training import genre_metrics
from ui.figures import every_label
from ui.nav import TRAINING_PAGE
from ui.poster_grid import movie_card_top, page_of, pager, poster_grid
from ui.text import html_block, html_text, md_escape, same_tab_link

FIGURES = (
    ("support", "support", "{:.0f}"),
    ("precision", "precision", "{:.3f}"),
    ("recall", "recall", "{:.3f}"),
    ("f1", "F1", "{:.3f}"),
    ("ap", "AP", "{:.3f}"),
    ("threshold", "threshold", "{:.2f}"),
)


def _figure(value: object, pattern: str) -> str:
    return pattern.format(value) if isinstance(value, int | float) and math.isfinite(value) else "—"


def per_genre_links(run: RunView, per_genre: pd.DataFrame, part: str = "random") -> None:
    """The per-genre figures, one row per genre, whose TP, FP and FN counts open those posters."""
    with st.container(key="per-genre-counts"):
        html_block(per_genre_html(run.run_id, per_genre, part))


def per_genre_html(run_id: str, per_genre: pd.DataFrame, part: str = "random") -> str:
    """The table as one HTML element: drawn as some 250 Streamlit elements (a column per cell, a page link per
    count) it took the browser seconds. A count is a plain link to this page's gallery URL in the same tab,
    so a click is one history entry and Back returns to the run, as with a page link. Every text is
    escaped: genres come from the dataset."""

    labels = ["genre", *(label for _, label, _ in FIGURES), "TP", "FP", "FN"]
    head = "".join(f"<th>{label}</th>" for label in labels)
    rows = []
    for row in per_genre.to_dict("records"):
        genre = str(row["genre"])
        cells = [f"<td>{html_text(genre)}</td>"]
        cells += [f'<td style="text-align:right">{_figure(row.get(key), pattern)}</td>' for key, _, pattern in FIGURES]
        for outcome in ("tp", "fp", "fn"):
            count = int(row.get(outcome) or 0)
            shown = str(count)
            if count:
                href = "?" + urlencode(MistakesView(genre=genre, errors=outcome, part=part).to_params(run_id))
                title = f"The {count} {OUTCOME_NAMES[outcome]} of {genre}"
                shown = same_tab_link(href, count, title)
            cells.append(f'<td style="text-align:right">{shown}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _open_cell(run_id: str, key: str, part: str) -> None:
    """The clicked cell's gallery into the URL (a callback: it runs once per new click, before the rerun)."""
    points = st.session_state[key].selection.points
    if points:
        labelled, predicted = points[0]["customdata"][:2]
        st.query_params.from_dict(
            MistakesView(genre=predicted, errors="fp", labelled=labelled, part=part).to_params(run_id)
        )


def confusion_chart(run: RunView, predictions: PartPredictions, current: MistakesView) -> None:
    """The "mistaken for" matrix: row a labelled genre A, column a predicted genre B; a click opens its posters."""
    table = genre_metrics.confusions(predictions.labels, predictions.predicted, predictions.genres)
    genres = table["genres"]
    counts = np.array(table["counts"])
    rates = np.array([[np.nan if rate is None else rate for rate in row] for row in table["rates"]])
    figure = go.Figure(
        go.Heatmap(
            z=rates,
            x=genres,
            y=genres,
            colorscale="Reds",
            zmin=0,
            # A model with no mistake at all still gets a scale: with zmax equal to zmin, Plotly spread its
            # colours over -0.5..0.5 and drew every empty cell mid-red.
            zmax=max(float(np.nanmax(rates, initial=0.0)), 0.01),
            colorbar={"title": "rate"},
            customdata=counts,
            hovertemplate="labelled %{y}, predicted %{x}: %{customdata} movies (%{z:.0%})<extra></extra>",
        )
    )
    cells = [(a, b) for a in range(len(genres)) for b in range(len(genres)) if a != b and counts[a, b] > 0]
    figure.add_scatter(
        x=[genres[b] for _, b in cells],
        y=[genres[a] for a, _ in cells],
        customdata=[[genres[a], genres[b], int(counts[a, b])] for a, b in cells],
        mode="markers",
        marker={"size": 18, "symbol": "square", "opacity": 0.01},
        hovertemplate="labelled %{customdata[0]}, predicted %{customdata[1]}: %{customdata[2]} movies — "
        "click for their posters<extra></extra>",
        showlegend=False,
    )
    figure.update_layout(
        title="Mistaken for: how often a genre was predicted for movies that lack it (click a cell)",
        xaxis={"title": "predicted genre", "tickangle": -45, **every_label(genres)},
        yaxis={"title": "labelled genre", **every_label(genres)},
        yaxis_autorange="reversed",
        height=26 * len(genres) + 200,
        clickmode="event+select",
    )
    # Keyed by the view, so a new view starts without the last click's selection.
    key = f"confusion-{run.run_id}-{current.genre}-{current.errors}-{current.labelled}-{current.part}"
    st.plotly_chart(
        figure,
        width="stretch",
        key=key,
        on_select=lambda: _open_cell(run.run_id, key, current.part),
        selection_mode="points",
    )


def _title(view: MistakesView, part_count: int) -> str:
    part = f" ({view.part} test part)" if part_count > 1 else " (test part)"
    genre, labelled = md_escape(view.genre), md_escape(view.labelled)
    if view.labelled:
        return f"{genre} predicted for movies labelled {labelled}, not {genre}{part}"
    return f"{genre}: {OUTCOME_NAMES[view.errors or 'fp']}{part}"


def render_mistakes(
    catalog: Catalog, run: RunView, predictions: PartPredictions, view: MistakesView, part_count: int
) -> None:
    """The gallery of one outcome, most confident first, each poster with its score and the threshold."""
    assert view.genre and view.errors
    found = outcomes(predictions, view.genre, view.errors, view.labelled)
    st.subheader(_title(view, part_count))
    order = "lowest score first" if view.errors == "fn" else "highest score first"
    threshold = found[0].threshold if found else float(predictions.thresholds[predictions.column(view.genre)])
    st.markdown(
        f"**{len(found):,} posters**, {order}; the run predicts {md_escape(view.genre)} from a score of "
        f"{threshold:.0%} (its threshold, chosen on validation).".replace("%", " %")
    )
    st.page_link(
        TRAINING_PAGE,
        label="Back to all of the run's figures",
        query_params={"run": run.run_id},
        icon=":material/arrow_back:",
    )
    others = [o for o in OUTCOMES if o != view.errors]
    with st.container(horizontal=True, gap="small"):
        for outcome in others:
            st.page_link(
                TRAINING_PAGE,
                label=f"{md_escape(view.genre)}: {OUTCOME_NAMES[outcome]}",
                query_params=MistakesView(genre=view.genre, errors=outcome, part=view.part).to_params(run.run_id),
            )
    if not found:
        st.info("No poster of the test part is in this gallery.", icon=":material/check_circle:")
        return
    pages = page_count(len(found))
    past: list[str] = []
    view = replace(view, page=last_page_if_past(view.page, pages, past))
    for message in past:
        st.warning(message)

    def card(item) -> None:
        movie = catalog.movie(item.imdb_id) or {}
        title = movie.get("title") or item.imdb_id
        movie_card_top(
            item.imdb_id, title, movie.get("poster_path"), movie.get("poster_size"), movie.get("poster_mtime_ns")
        )
        st.caption(f"score {item.score:.0%} · threshold {item.threshold:.0%}".replace("%", " %"))
        st.caption("labelled: " + (", ".join(map(md_escape, item.labels)) or "no genre of the run"))

    poster_grid(page_of(found, view.page), card, lambda item: f"mistake-{item.imdb_id}", "mistakes")
    pager(TRAINING_PAGE, view.page, pages, lambda page: replace(view, page=page).to_params(run.run_id), "bottom")


def render_verdict(check: PredictionCheck, corrected: bool) -> None:
    """A movie's predicted genres (score at or above the run's threshold) marked against its labels."""
    st.markdown("**The model's decisions against the labels**")
    lines = [f"✓ {md_escape(genre)} · {score:.0%} (predicted and labelled)" for genre, score in check.right]
    lines += [f"✗ {md_escape(genre)} · {score:.0%} (predicted, not labelled)" for genre, score in check.wrong]
    lines += [f"○ {md_escape(genre)} · {score:.0%} (labelled, missed)" for genre, score in check.missed]
    for line in lines or ["The model predicts no genre for this poster and misses none of its labels."]:
        st.markdown(line.replace("%", " %"))
    if check.not_modelled:
        st.caption("Labels the model has no output for: " + ", ".join(map(md_escape, check.not_modelled)))
    st.caption("Compared with your corrected genres." if corrected else "Compared with the genres the dataset gives.")
