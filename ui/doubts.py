"""The Dataset page's "labels that look wrong": out-of-fold disagreements, each with a one-click correction.

The scores come from a background job (`core.app.jobs`), cached per catalog and corrections state. A click on a
correction changes that state, so the list shown stays the one already computed (the newest for this
catalog), marked as made before the latest corrections, rather than vanishing for minutes of recompute.
"""

from __future__ import annotations

import streamlit as st

from core import corrections as cx
from core.app import jobs
from core.config import Settings
from core.data.catalog import Catalog
from core.evaluation import out_of_fold as oof
from ui.corrections import training_use
from ui.poster_grid import movie_card_top, poster_grid
from ui.text import md_escape

SHOWN = 24  # candidates per page
_MESSAGE_KEY = "doubt_message"

EXPLANATION = (
    "Each movie was scored by a model that never saw it: the usable movies are cut into 5 stratified folds, "
    "and the default fast head trained on four scores the fifth. A label the model strongly disagrees with "
    "comes first: a genre IMDb lists that gets a low score, or one IMDb does not list that gets a high one. "
    "A disagreement is a candidate for a look, not a proof: the model learned from these same labels and "
    "sees only the poster, and many genres (a Drama, a Romance) barely show on one."
)


def _say(kind: str, text: str) -> None:
    st.session_state[_MESSAGE_KEY] = (kind, text)


def _apply(catalog: Catalog, steps: list[tuple[str, str]], imdb_id: str, title: str) -> None:
    """Store the corrections (genre, action) in order; a refused one stops there and says why."""
    made = []
    for genre, action in steps:
        try:
            made.append(cx.correct(catalog, imdb_id, genre, action))
        except cx.CorrectionError as error:
            for correction in reversed(made):  # all or nothing: a half-made replacement is undone
                cx.undo(catalog, correction.id)
            _say("error", f"Not stored: {error}")
            return
    done = "; ".join(f"{'added' if c.action == cx.ADD else 'removed'} {c.genre} (#{c.id})" for c in made)
    _say("success", f"{title}: {done}. {training_use(catalog, *(c.genre for c in made))}")


def _undo(catalog: Catalog, ids: list[int], title: str) -> None:
    for correction_id in ids:
        try:
            cx.undo(catalog, correction_id)
        except cx.CorrectionError as error:
            _say("error", f"Not undone: {error}")
            return
    _say("success", f"{title}: undone, the genres are back as before.")


def _sentence(genre: str, labelled: bool, score: float) -> str:
    percent = f"{score:.0%}".replace("%", " %")
    if labelled:
        return f"IMDb says {genre}, the model gives it {percent}"
    return f"the model gives {genre} {percent}, IMDb does not list it"


def _controls(catalog: Catalog, row, movie: dict, corrections: list[cx.Correction]) -> None:
    """One click to correct the doubted label, or, once corrected, what was done and an Undo."""
    imdb_id, genre, title = row.imdb_id, row.genre, str(movie["title"])
    genres_now = cx.corrected_genres(movie["genres"], corrections)
    mine = [c for c in corrections if c.genre == genre or (c.genre == row.top_genre and c.action == cx.ADD)]
    doubted_gone = (genre not in genres_now) if row.labelled else (genre in genres_now)
    key = f"doubt-{imdb_id}-{genre}"
    if doubted_gone and mine:
        st.caption(":material/edit_note: " + md_escape("; ".join(c.describe() for c in mine)))
        st.button("Undo", key=f"{key}-undo", on_click=_undo, args=(catalog, [c.id for c in reversed(mine)], title))
    elif doubted_gone:
        st.caption("The labels no longer say this (changed since the scores were computed).")
    else:
        fix = _fix(genre, bool(row.labelled), row.top_genre, len(genres_now))
        if fix is not None:
            label, icon, changes = fix
            st.button(label, key=key, icon=icon, on_click=_apply, args=(catalog, changes, imdb_id, title))


def _fix(
    genre: str, labelled: bool, top_genre: str | None, genre_count: int
) -> tuple[str, str, list[tuple[str, str]]] | None:
    """The one correction a doubt offers (its button's label, icon and changes), or None when there is none."""
    if not labelled:
        return f"Add {genre}", ":material/add:", [(genre, cx.ADD)]
    if genre_count > 1:
        return f"Not {genre}", ":material/remove:", [(genre, cx.REMOVE)]
    if top_genre:
        # A movie keeps at least one genre: its only one is replaced by the model's top genre, not removed.
        return f"Replace with {top_genre}", ":material/swap_horiz:", [(top_genre, cx.ADD), (genre, cx.REMOVE)]
    return None


def _show_message() -> None:
    message = st.session_state.pop(_MESSAGE_KEY, None)
    if message:
        kind, text = message
        (st.error if kind == "error" else st.success)(md_escape(text))


def render_candidates(catalog: Catalog, result: oof.OutOfFold, genre: str | None = None) -> None:
    """The top candidates, each with its poster, the label in doubt and its correction."""
    ranked = oof.doubts(result)
    if genre:
        ranked = ranked[ranked["genre"] == genre]
    _show_message()
    by_movie: dict[str, list[cx.Correction]] = {}
    for correction in cx.active_corrections(catalog):
        by_movie.setdefault(correction.imdb_id, []).append(correction)
    shown = [(row, movie) for row in ranked.head(SHOWN).itertuples() if (movie := catalog.movie(row.imdb_id))]

    def card(item: tuple) -> None:
        row, movie = item
        movie_card_top(
            row.imdb_id, movie["title"], movie["poster_path"], movie["poster_size"], movie["poster_mtime_ns"]
        )
        st.caption(md_escape(_sentence(row.genre, bool(row.labelled), float(row.score))))
        _controls(catalog, row, movie, by_movie.get(row.imdb_id, []))

    poster_grid(shown, card, lambda item: f"doubt-card-{item[0].imdb_id}-{item[0].genre}", "doubts")


def _start(settings: Settings, key: str) -> None:
    try:
        jobs.start_job(settings, key, oof.JOB_TARGET)
    except (jobs.JobError, OSError) as error:
        _say("error", f"Not started: {error}")


def doubts_section(catalog: Catalog, settings: Settings, genre: str | None = None) -> None:
    """The whole section: the explanation, the job's progress or its start button, and the candidates."""
    st.caption(EXPLANATION)
    key = oof.state_key(catalog)
    result = oof.load(settings, key)
    status = jobs.job_status(settings, key)
    if result is None and status.is_active:
        _progress(settings, key)
    if result is None:
        previous = oof.latest(settings, catalog)
        label = "Recompute with the corrections in force" if previous else "Compute the out-of-fold scores"
        if status.state == "failed":
            st.error(f"The last computation failed: {md_escape(status.error or 'no reason recorded')}")
        if not status.is_active:  # a running job shows its progress above instead
            st.button(label, key="doubts_start", icon=":material/play_arrow:", on_click=_start, args=(settings, key))
            st.caption("It trains the fast head five times on the cached poster features: minutes on a laptop CPU.")
        if previous is None:
            _show_message()
            return
        changed = previous.corrections
        st.info(
            f"Shown: the scores computed with {changed} correction{'s' * (changed != 1)} in force, before your "
            "latest ones; recompute to rank with them.",
            icon=":material/history:",
        )
        result = previous
    st.caption(
        f"{len(result.ids):,} movies scored out of fold over {len(result.genres)} genres "
        f"in {result.seconds / 60:.1f} min."
    )
    render_candidates(catalog, result, genre)


def _progress(settings: Settings, key: str) -> None:
    @st.fragment(run_every=2)
    def panel() -> None:
        status = jobs.job_status(settings, key)
        if not status.is_active:
            st.rerun()  # finished: the whole page shows the result
        text = status.message or status.state
        st.progress(status.fraction, text=f"Out-of-fold scores: {text} ({status.done:,} of {status.total:,})")

    panel()
