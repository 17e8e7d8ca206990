"""Label corrections in the app: "not this genre" on gallery cards, add / remove / undo on a movie's page, and
the Dataset page's account of every correction.

Writes happen in button callbacks, before the page reruns, so the page that follows already shows the new
state; what a callback has to say (done, or why it was refused) waits in the session for that rerun.
"""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from core import corrections as cx
from core.data.catalog import Catalog
from core.training.config import make_config
from ui.downloads import csv_download
from ui.sections import lazy_section
from ui.text import md_escape

_MESSAGE_KEY = "correction_message"


def _say(kind: str, text: str) -> None:
    st.session_state[_MESSAGE_KEY] = (kind, text)


def _correct(catalog: Catalog, imdb_id: str, genre: str, action: str, title: str) -> None:
    try:
        correction = cx.correct(catalog, imdb_id, genre, action)
    except cx.CorrectionError as error:
        _say("error", f"Not stored: {error}")
    else:
        verb = "removed from" if action == cx.REMOVE else "added to"
        _say("success", f"{genre} {verb} {title} (correction #{correction.id}). {training_use(catalog, genre)}")


def training_use(catalog: Catalog, *genres: str) -> str:
    """Whether the next default run learns the corrected genres at all: one with too few movies is left out
    of training, and a user who just corrected it should not be told it will be learnt."""
    minimum = make_config("fast").min_movies_per_genre
    counts = {genre: cx.movies_with_genre(catalog, genre) for genre in dict.fromkeys(genres)}
    left_out = {genre: count for genre, count in counts.items() if count < minimum}
    if not left_out:
        return "The next training run uses it."
    counted = "; ".join(f"{genre} has {count}" for genre, count in left_out.items())
    which = f"{next(iter(left_out.values()))} movies have it" if len(left_out) == 1 else f"{counted} movies"
    itself = "itself is" if len(left_out) == 1 else "are"
    return (
        f"{' and '.join(left_out)} {itself} left out of training, though: {which}, fewer than the {minimum} "
        "a run needs by default (Minimum movies per genre, on the Training page)."
    )


def _add_chosen(catalog: Catalog, imdb_id: str, title: str, key: str) -> None:
    genre = st.session_state.get(key)
    if not genre:
        _say("error", "Not stored: choose the genre to add first.")
        return
    _correct(catalog, imdb_id, genre, cx.ADD, title)


def _undo(catalog: Catalog, correction_id: int) -> None:
    try:
        undone = cx.undo(catalog, correction_id)
    except cx.CorrectionError as error:
        _say("error", f"Not undone: {error}")
    else:
        _say("success", f"Correction #{undone.id} undone: {undone.genre} is back as the dataset has it.")


def show_message() -> None:
    """What the last correction click did, shown once, where the click was made."""
    message = st.session_state.pop(_MESSAGE_KEY, None)
    if message is None:
        return
    kind, text = message
    if kind == "error":
        st.error(md_escape(text), icon=":material/block:")
    else:
        st.success(md_escape(text), icon=":material/edit_note:")


def active_by_movie(catalog: Catalog) -> dict[str, list[cx.Correction]]:
    """Active corrections per movie (one query for a whole gallery page)."""
    found: dict[str, list[cx.Correction]] = {}
    for correction in cx.active_corrections(catalog):
        found.setdefault(correction.imdb_id, []).append(correction)
    return found


def gallery_card_control(
    catalog: Catalog, imdb_id: str, title: str, genre: str, corrections: list[cx.Correction]
) -> None:
    """On a genre gallery's card: "Not <genre>?", or, once marked, what was marked and an Undo."""
    marked = next((c for c in corrections if c.genre == genre and c.action == cx.REMOVE), None)
    if marked is None:
        st.button(
            f"Not {md_escape(genre)}?",
            key=f"not_{imdb_id}",
            icon=":material/flag:",
            type="tertiary",
            help=f"Mark {md_escape(genre)} as a wrong genre for this movie: the next training run learns without it.",
            on_click=_correct,
            args=(catalog, imdb_id, genre, cx.REMOVE, title),
        )
    else:
        st.caption(f":material/flag: marked not {md_escape(genre)}")
        st.button("Undo", key=f"undo_{marked.id}", type="tertiary", on_click=_undo, args=(catalog, marked.id))


def movie_controls(catalog: Catalog, movie: dict, genres_now: list[str], corrections: list[cx.Correction]) -> None:
    """On a movie's page: remove a genre, add a missing one, and undo what was done."""
    imdb_id, title = str(movie["imdb_id"]), str(movie["title"])
    with st.expander("Correct the genres", icon=":material/edit_note:", expanded=bool(corrections)):
        show_message()
        st.caption(
            "Corrections change no file of the dataset: they are kept beside it, can be undone, and training "
            "runs learn from them."
        )
        if len(genres_now) > 1:
            with st.container(horizontal=True):
                for genre in genres_now:
                    st.button(
                        f"Not {md_escape(genre)}",
                        key=f"remove_{genre}",
                        icon=":material/remove:",
                        on_click=_correct,
                        args=(catalog, imdb_id, genre, cx.REMOVE, title),
                    )
        else:
            st.caption("A movie needs one genre: add the right one before removing the last.")
        missing = [genre for genre in cx.known_genres(catalog) if genre not in genres_now]
        with st.container(horizontal=True, vertical_alignment="bottom"):
            st.selectbox("Add a missing genre", missing, index=None, key="add_genre", placeholder="Choose a genre")
            st.button(
                "Add",
                key="add_genre_button",
                icon=":material/add:",
                on_click=_add_chosen,
                args=(catalog, imdb_id, title, "add_genre"),
            )
        for correction in corrections:
            with st.container(horizontal=True, vertical_alignment="center"):
                st.markdown(f"#{correction.id}: {md_escape(correction.describe())}")
                st.button("Undo", key=f"undo_{correction.id}", on_click=_undo, args=(catalog, correction.id))


def corrections_report(catalog: Catalog) -> None:
    """The Dataset page's section: how many corrections, of which genres, every one in a table (and CSV)."""
    table = cx.corrections_table(catalog)
    show_message()
    if table.empty:
        st.caption(
            'No label corrections yet. Mark a wrong genre on a gallery card ("Not Drama?"), or add and remove '
            "genres on a movie's page; they show here and the next training run learns from them."
        )
        return
    active = table[table["state"] == "active"]
    columns = st.columns(4)
    columns[0].metric("Corrections in force", len(active))
    columns[1].metric("Movies corrected", active["imdb_id"].nunique())
    columns[2].metric("Genres touched", active["genre"].nunique())
    columns[3].metric("Undone", int((table["state"] == "undone").sum()))
    # Charted and listed once opened: a chart and a canvas grid cost a new tab a second or more (ui/sections.py).
    if listed := lazy_section(f"Every correction, charted and listed ({len(table)})", key="section_corrections"):
        with listed:
            if not active.empty:
                summary = cx.genre_summary(table)
                chart = summary.melt(
                    id_vars="genre", value_vars=list(cx.ACTIONS), var_name="correction", value_name="movies"
                )
                chart["correction"] = chart["correction"].map({cx.ADD: "added", cx.REMOVE: "removed"})
                figure = px.bar(
                    chart,
                    x="movies",
                    y="genre",
                    color="correction",
                    orientation="h",
                    title="Corrections in force per genre",
                    category_orders={"genre": list(summary["genre"])},
                )
                figure.update_layout(
                    height=max(220, 110 + 36 * len(summary)),
                    yaxis_title=None,
                    xaxis_title="movies",
                    legend={
                        "orientation": "h",
                        "y": 1.02,
                        "yanchor": "bottom",
                        "x": 1,
                        "xanchor": "right",
                        "title": None,
                    },
                )
                figure.update_xaxes(dtick=1 if int(summary["total"].max()) <= 10 else None)
                st.plotly_chart(figure, width="stretch")
            st.dataframe(
                table[["id", "imdb_id", "title", "year", "genre", "action", "made_at", "state", "undone_at"]],
                hide_index=True,
                width="stretch",
                column_config={
                    "id": st.column_config.NumberColumn("#", format="%d"),
                    "year": st.column_config.NumberColumn(format="%d"),
                },
            )
    with st.container(horizontal=True, vertical_alignment="bottom"):
        csv_download(
            f"Download the {len(table)} correction{'s' * (len(table) != 1)} (CSV)", table, "label-corrections.csv"
        )
        if not active.empty:
            labels = {
                int(row.id): f"#{row.id} {row.title}: {'added' if row.action == cx.ADD else 'removed'} {row.genre}"
                for row in active.itertuples()
            }
            chosen = st.selectbox(
                "Undo a correction", list(labels), format_func=labels.get, index=None, key="undo_choice"
            )
            st.button(
                "Undo",
                key="undo_chosen",
                disabled=chosen is None,
                on_click=lambda: _undo(catalog, int(st.session_state["undo_choice"])),
            )
