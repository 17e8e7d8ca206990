"""Predict: drop posters (or pick a movie of the dataset), get their top-3 genres as chips that open the
genre's gallery sorted by similarity to that poster, each genre's evidence map over the poster (why this
genre), and the posters of the dataset that look most alike.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.app.run_reports import summary_value
from core.app.runs import active_run, list_runs, read_run
from core.config import MAX_UPLOAD_BYTES, get_settings
from core.data.ids import valid_movie_id
from core.serving.predict import predict_images
from core.serving.uploads import UploadError, validate_upload, validate_uploads
from ui.chips import chip_style, genre_chips
from ui.data import get_catalog, usable_titles
from ui.downloads import csv_download
from ui.explain import render_evidence
from ui.model import (
    DroppedPoster,
    active_model,
    forgotten_message,
    index_or_progress,
    keep_on_server,
    poster_likeness,
    remember,
    score,
    session_posters,
)
from ui.nav import MAP_PAGE, MOVIE_PAGE, TRAINING_PAGE, require_entry_point
from ui.poster_grid import alike_cards
from ui.runs import default_run_estimate, mark_start_pressed, start_notice, start_run
from ui.score_chart import WHY_THEY_DIFFER, score_chart
from ui.text import md_escape

require_entry_point()
st.title("Predict")
starting = start_notice()
chip_style()
settings = get_settings()
catalog = get_catalog()

loaded = active_model(settings)
if loaded is None:
    running = active_run(settings)
    if running:
        st.info(f"A model is being trained (run {running.run_id}); it becomes usable once you make it active.")
        st.page_link(TRAINING_PAGE, label="Watch it on the Training page", query_params={"run": running.run_id})
    else:
        st.info(
            "There is no active model yet. Train one first on the Training page (its form says how long the fast default run takes here)."
        )
        if st.button(
            "Start the fast default run", type="primary", icon=":material/rocket_launch:", on_click=mark_start_pressed
        ):
            start_run(settings, "fast", [], starting, default_run_estimate(settings, catalog, list_runs(settings)))
    st.stop()
run_id, model = loaded
run = read_run(settings, run_id)
test_map, test_hit = summary_value(run, "test", "map"), summary_value(run, "test", "hit_at_3")
chance = (run.metrics.get("test", {}).get("baselines", {}) or {}).get("chance_map")
figures = (
    f"test mAP {test_map:.3f} (chance {chance:.3f}), hit@3 {test_hit:.2f}" if test_map and test_hit and chance else ""
)
st.caption(f"Model: run {run_id} ({md_escape(run.config.get('mode'))} mode, {len(model.genres)} genres) · {figures}")
st.page_link(TRAINING_PAGE, label="About this model", query_params={"run": run_id}, icon=":material/info:")

# The genre head scores any image; the similarity index tells whether it is a poster at all (core.serving.novelty).
UNLIKE_POSTERS = "This image looks unlike the movie posters the model learned from ({reasons}): its scores mean little."
LOOKS_LIKE_A_POSTER = {True: "no", False: "yes", None: "not known yet"}  # by `Likeness.unlike_posters`

# --- Input: uploaded posters, or a movie of the dataset ----------------------------------------------------
LAST_DROP = "last_drop"  # content hashes of the posters last dropped, shown again after Back from a chip


def _forget_last_drop() -> None:
    """Files removed from the uploader are not shown again (they stay in the session for the chips' links)."""
    if not st.session_state.get("poster_upload"):
        st.session_state.pop(LAST_DROP, None)


uploads = st.file_uploader(
    "Drop one or more posters (JPEG, PNG or WebP)",
    type=["jpg", "jpeg", "png", "webp"],
    accept_multiple_files=True,
    key="poster_upload",
    max_upload_size=MAX_UPLOAD_BYTES // 2**20,  # the server takes more, for run zips (core.config)
    help=f"Up to {MAX_UPLOAD_BYTES // 2**20} MB each; the file's content decides its format, not its name.",
    on_change=_forget_last_drop,
)
titles = usable_titles(catalog, catalog.fingerprint)
url_movie = valid_movie_id(st.query_params.get("movie"))
if st.query_params.get("movie") and url_movie not in titles:
    st.warning("The movie in the URL is not a usable movie of the catalog.")
    url_movie = None
st.session_state["predict_movie"] = url_movie
picked = st.selectbox(
    "…or predict a movie of the dataset (type to search by title)",
    list(titles),
    format_func=lambda imdb_id: titles[imdb_id],
    key="predict_movie",
    placeholder="Search a title",
    on_change=lambda: st.query_params.from_dict(
        {"movie": st.session_state["predict_movie"]} if st.session_state["predict_movie"] else {}
    ),
)


def show_scores(scores, key: str, similar_params: dict[str, str], true_genres: list[str] | None = None) -> None:
    """Top-3 chips (links to the galleries sorted by similarity), the predicted set and all the scores."""
    top = model.vocabulary.top_k(scores, 3)
    st.markdown("**Top 3 genres**: links, each opens that genre's gallery with the most similar posters first")
    genre_chips([g for g, _ in top], key=key, scores=[s for _, s in top], extra_params=similar_params)
    predicted = model.vocabulary.decode(scores, model.thresholds)
    st.markdown(
        "**All genres the model predicts** (score ≥ that genre's threshold): "
        + (", ".join(md_escape(g) for g in predicted) if predicted else "none")
    )
    if true_genres is not None:
        st.markdown("**True genres** (IMDb): " + ", ".join(md_escape(g) for g in true_genres))
    st.caption(WHY_THEY_DIFFER)
    chart = score_chart(model.genres, scores, model.thresholds, true_genres)
    st.plotly_chart(chart, width="stretch", key=f"scores-{key}")


def more_like_this(query=None, like: str | None = None) -> None:
    """The dataset's posters most like a dropped poster (`query`) or a catalog movie (`like`), once the
    similarity index is ready; until then, how far its preparation is."""
    st.subheader("More like this")
    index = index_or_progress(catalog, "More like this", settings)
    if index is None or (like is not None and like not in index):
        return
    exclude = [like] if like else []
    neighbours = index.nearest(index.vector(like) if like else query, k=12, exclude=exclude)
    alike_cards(catalog, neighbours, "more-like-this")


# --- Uploaded posters ---------------------------------------------------------------------------------------------
dropped: list[DroppedPoster] = []
if uploads:
    posters, errors = validate_uploads((upload.name, upload.getvalue()) for upload in uploads)
    for error in errors:
        st.error(md_escape(f"{error.filename}: {error.reason}"), icon=":material/broken_image:")
    dropped, forgotten = remember(posters, settings, loaded) if posters else ([], [])
    keep_on_server(posters, settings)  # so that the chips' links outlive this tab
    if forgotten:
        st.info(md_escape(forgotten_message(forgotten)), icon=":material/memory:")
    st.session_state[LAST_DROP] = [item.poster.content_hash for item in dropped]
elif not picked:
    # Back from a chip's gallery: the uploader is drawn anew and empty, but the session still has the posters.
    dropped = [session_posters()[key] for key in st.session_state.get(LAST_DROP, []) if key in session_posters()]
if dropped:
    score(dropped, run_id, model)
    likeness_of = {item.poster.content_hash: poster_likeness(catalog, item, settings) for item in dropped}
    if len(dropped) > 1:
        st.subheader(f"{len(dropped)} posters")
        rows = []
        for item in dropped:
            top = model.vocabulary.top_k(item.scores, 3)
            likeness = likeness_of[item.poster.content_hash]
            rows.append(
                {
                    "file": item.poster.filename,
                    "looks like a poster": LOOKS_LIKE_A_POSTER[None if likeness is None else likeness.unlike_posters],
                    **{f"genre {i + 1}": g for i, (g, _) in enumerate(top)},
                    **{f"score {i + 1}": round(s, 3) for i, (_, s) in enumerate(top)},
                }
            )
        table = pd.DataFrame(rows)
        st.dataframe(table, hide_index=True, width="stretch")
        csv_download("Download as CSV", table, "predictions.csv")
    for item in dropped:
        st.divider()
        left, right = st.columns([1, 1])
        with left:
            top = model.vocabulary.top_k(item.scores, 3)
            render_evidence(model, item.poster.pixels, item.poster.content_hash, top, key=item.poster.content_hash)
            st.caption(md_escape(item.poster.filename))
            st.page_link(
                MAP_PAGE,
                label="On the map of all posters",
                query_params={"poster": item.poster.content_hash},
                icon=":material/scatter_plot:",
            )
            for note in item.poster.notes:
                st.caption(note)
        with right:
            likeness = likeness_of[item.poster.content_hash]
            if likeness is not None and likeness.unlike_posters:
                st.warning(UNLIKE_POSTERS.format(reasons="; ".join(likeness.reasons)), icon=":material/help:")
            show_scores(
                item.scores,
                key=item.poster.content_hash,
                similar_params={"sort": "similar", "poster": item.poster.content_hash},
            )
    if len(dropped) == 1:
        more_like_this(dropped[0].embedding)
elif picked and not uploads:
    movie = catalog.movie(picked)
    try:
        with open(movie["poster_path"], "rb") as handle:
            poster = validate_upload(handle.read(), f"{picked}.jpg")
    except (UploadError, OSError) as error:
        st.error(f"The poster of this movie cannot be read: {error}")
        st.stop()
    scores = predict_images(model, [poster.pixels])[0]
    st.divider()
    left, right = st.columns([1, 1])
    with left:
        render_evidence(
            model, poster.pixels, poster.content_hash, model.vocabulary.top_k(scores, 3), key=picked, url_param="why"
        )
        st.page_link(MOVIE_PAGE, label=md_escape(movie["title"]), query_params={"movie": picked})
    with right:
        show_scores(scores, key=picked, similar_params={"sort": "similar", "like": picked}, true_genres=movie["genres"])
    more_like_this(like=picked)
elif not uploads:
    st.caption("Drop a poster above, or pick a movie, to see what the model makes of it.")
