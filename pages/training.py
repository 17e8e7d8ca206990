"""Training: start a run in the background, watch it live, stop it, compare runs and choose the active model.

A run is its own process (`python -m core.train`); this page only reads run folders, so a reload, a second
tab or a restarted server all see the same runs.
"""

from __future__ import annotations

import shlex

import streamlit as st

from core import background
from core.app import finished_runs, model_choice, run_reports, runs
from core.app.urls import valid_run_id
from core.config import MAX_IMPORT_BYTES, get_settings
from core.corrections import active_corrections
from core.model.backbones import BACKBONES
from core.training.config import MODES, ConfigError, make_config
from ui.data import get_catalog
from ui.figures import curves_chart
from ui.nav import require_entry_point
from ui.runs import (
    default_run_estimate,
    estimate_for,
    mark_start_pressed,
    page_is_behind,
    render_baselines,
    render_next_model,
    start_notice,
    start_run,
    time_left,
)
from ui.runs_table import render_runs_table
from ui.sections import lazy_section
from ui.text import md_escape

require_entry_point()
st.title("Training")
starting = start_notice()
settings = get_settings()
catalog = get_catalog()
all_runs = runs.list_runs(settings)
chosen_model = model_choice.active_model(settings)
active_model = chosen_model.run_id if chosen_model else None
running = next((run for run in all_runs if run.is_active), None)
next_model = model_choice.finished_since_choice(all_runs, chosen_model)

# --- The active model ------------------------------------------------------------------------------------------
if chosen_model:
    model_run = runs.read_run(settings, chosen_model.run_id)
    # An imported run's config is not this app's to trust: its words are shown, never rendered.
    described = f"run **{chosen_model.run_id}** ({md_escape(model_run.config.get('mode'))} mode), used by Predict."
    if chosen_model.adopted and all_runs[0].run_id == active_model:
        st.success(f"Your first model is ready and is now the active model: {described}", icon=":material/star:")
    else:
        st.success(f"Active model: {described}")
    trained_on = model_run.provenance.get("catalog_fingerprint")
    if trained_on and trained_on != catalog.fingerprint:
        st.warning(
            "The active model was trained on another copy of the dataset (its catalog fingerprint differs "
            "from the current data's): its test figures do not describe this data.",
            icon=":material/warning:",
        )
if next_model is not None:
    render_next_model(settings, next_model, active_model)
elif not active_model and not running:
    expected = default_run_estimate(settings, catalog, all_runs)
    took = (
        f"about {expected.seconds / 60:.0f} min here, as measured now" if expected else "the form below says how long"
    )
    st.info(f"No model yet. Train one: the fast default run takes {took}.")
    if st.button(
        "Start the fast default run", type="primary", icon=":material/rocket_launch:", on_click=mark_start_pressed
    ):
        start_run(settings, "fast", [], starting, expected)


# --- Live progress -------------------------------------------------------------------------------------------
@st.fragment(run_every=2 if running else None)
def progress_panel() -> None:
    """Re-read the running run's status.json every two seconds; the rest of the page does not rerun.

    Only that small file is polled (its history only when an epoch ended), never every run folder: an idle
    tab costs next to nothing. When the run's state changes, or its mode becomes known, the whole page runs once,
    for the runs table (`page_is_behind`). A
    run started elsewhere shows on the next page run (a tab with no run polls nothing).
    """
    if running is None:
        return
    seen_epoch, history = st.session_state.get(f"history-{running.run_id}", (None, running.history))
    current = runs.read_progress(settings, running.run_id, history_until=seen_epoch)
    behind = page_is_behind(running, current)
    if behind and not current.is_active:
        st.rerun()  # ended, failed or stopped: the runs table and Start change, and there is no panel to draw
    if current.history or seen_epoch != current.status.get("epoch"):
        history = current.history
        st.session_state[f"history-{running.run_id}"] = (current.status.get("epoch"), history)
    current.history = history
    status = current.status
    st.subheader(f"Running: {current.run_id}")
    epoch, epochs = status.get("epoch"), status.get("epochs")
    batch, batches = status.get("batch"), status.get("batches")
    phase = status.get("phase") or current.state
    if epochs:
        st.progress(min(1.0, (epoch or 0) / epochs), text=f"{md_escape(phase)}: epoch {epoch or 0} of {epochs}")
    else:
        st.progress(0.0, text=f"{md_escape(phase)}…")
    left = time_left(settings, catalog, all_runs, current)
    if batches:
        st.progress(min(1.0, (batch or 0) / batches), text=left.step)
    elapsed = run_reports.duration_seconds(current) or 0.0
    columns = st.columns(3)
    columns[0].metric("Elapsed", f"{elapsed / 60:.1f} min")
    columns[1].metric("Left (estimate)", f"{left.seconds / 60:.1f} min")
    columns[2].metric("Phase", str(phase))
    curves = run_reports.curves([current])
    if not curves.empty:
        st.plotly_chart(curves_chart(curves), width="stretch")
    stop_asked = background.stop_requested(current.path)
    if stop_asked:
        st.info("Stopping after the current batch; the best weights so far are kept.")
        if st.button("Force stop (SIGTERM)", key="force_stop"):
            runs.kill_run(settings, current.run_id)
    elif st.button("Stop this run", icon=":material/stop_circle:", key="stop_run"):
        runs.request_stop(settings, current.run_id)
        st.rerun()  # the stop request shows at once (a click may arrive in a full-page run)
    if behind:
        # Started, or its mode now known: the runs table catches up once this panel has been drawn, so a run
        # that moves on quickly is still seen running.
        st.rerun()


progress_panel()

# What each mode does and costs, in a learner's words (core/training/config.py has the details).
MODE_EXPLAINED = {
    "fast": "**fast** (the default): the pretrained backbone reads every poster once (its features are cached), "
    "then three small heads learn the genres from those features in seconds per epoch, and are averaged. "
    "The best start; the estimate below says how long here.",
    "fine-tune": "**fine-tune**: the fast head first, then the backbone's top blocks are unfrozen and trained on "
    "the images at a low learning rate, so the backbone adapts to posters. Every epoch reads every poster "
    "through the backbone, so it takes far longer than fast (the estimate below says how long here); it may "
    "gain a little over fast, or overfit.",
    "scratch": "**scratch**: the classic tutorial's small CNN trained from pixels, with no pretrained "
    "knowledge. The baseline the pretrained modes must beat; expect it to lose.",
}

# --- Start a run ------------------------------------------------------------------------------------------------
# A form and a measured estimate: sent only while open (closed by default once there are runs to show).
start_section = lazy_section("Start a run", "section_start", expanded=not all_runs, icon=":material/play_circle:")
if start_section:
    with start_section:
        mode = st.segmented_control("Mode", MODES, default="fast", key="train_mode") or "fast"
        st.caption(MODE_EXPLAINED[mode])
        defaults = make_config(mode)
        with st.form("start_run"):
            columns = st.columns(3)
            epochs = columns[0].number_input("Epochs", 1, 1000, defaults.epochs)
            image_size = columns[1].text_input(
                "Image size (height x width)", f"{defaults.image_height}x{defaults.image_width}"
            )
            learning_rate = columns[2].number_input("Learning rate", 1e-6, 1.0, defaults.learning_rate, format="%.0e")
            columns = st.columns(3)
            min_movies = columns[0].number_input("Minimum movies per genre", 1, 10_000, defaults.min_movies_per_genre)
            seed = columns[1].number_input("Seed", 0, 2**31 - 1, defaults.seed)
            in_force = len(active_corrections(catalog))
            use_corrections = st.checkbox(
                f"Train on your {in_force} label correction{'s' * (in_force != 1)}",
                value=in_force > 0,
                disabled=in_force == 0,
                help="Training and validation learn from the corrected genres; the test part keeps the labels the "
                "split was drawn with, and its metrics are also shown with later corrections. None yet: mark wrong "
                "genres in a gallery or on a movie's page.",
            )
            # The twin is the yardstick for newer movies, and in the fast mode some two fifths of a run's time.
            # Offered, on by default, so that a user in a hurry can leave it out knowingly, never silently.
            temporal_twin = mode == "fast" and st.checkbox(
                "Temporal test: a twin of the run trained on earlier years",
                value=True,
                help="How the model fares on newer movies than it saw, the figure to believe for new posters: the "
                "run trained again on the movies before the test's years. Left out, the run ends sooner and has "
                "no temporal figures.",
            )
            backbone = st.radio(
                "Pretrained backbone",
                list(BACKBONES),
                index=list(BACKBONES).index(defaults.backbone),
                horizontal=True,
                disabled=mode == "scratch",
                help="; ".join(
                    f"{entry.name}: {entry.block_count} blocks, trained at {entry.native_size} px"
                    for entry in BACKBONES.values()
                )
                + ". A larger backbone costs more time per poster (the estimate says how much here); the scratch mode "
                "has no backbone.",
            )
            # Not while a run works: measuring would slow it and read its load as this machine's speed.
            estimate = (
                None
                if running
                else estimate_for(settings, catalog, all_runs, mode, image_size, int(epochs), backbone, temporal_twin)
            )
            columns[2].metric("Estimated time here", f"{estimate.seconds / 60:.1f} min" if estimate else "—")
            if estimate:
                st.caption(f"Estimate {estimate.basis}.")
                if estimate.plan is not None and estimate.plan.twin:
                    st.caption(f"The temporal twin is about {estimate.plan.twin_seconds / 60:.1f} min of it.")
            elif running:
                st.caption("The estimate is measured once the running run has ended: measuring now would slow it.")
            submitted = st.form_submit_button(
                "Start", type="primary", disabled=running is not None, on_click=mark_start_pressed
            )
        if running is not None:
            st.caption("One run at a time on this machine: wait for the running one, or stop it.")
        if submitted:
            try:
                make_config(mode, epochs=int(epochs), image_size=image_size, learning_rate=float(learning_rate))
            except ConfigError as error:
                if starting is not None:
                    starting.empty()
                st.error(f"Not started: {error}")
            else:
                options = ["--epochs", str(int(epochs)), "--image-size", image_size.strip(), "--learning-rate"]
                options += [
                    repr(float(learning_rate)),
                    "--min-movies-per-genre",
                    str(int(min_movies)),
                    "--seed",
                    str(int(seed)),
                ]
                if in_force and not use_corrections:
                    options.append("--no-corrections")
                if mode == "fast" and not temporal_twin:
                    options.append("--no-temporal-twin")
                if mode != "scratch" and backbone != defaults.backbone:
                    options += ["--backbone", backbone]
                start_run(settings, mode, options, starting, estimate)


# --- The runs ------------------------------------------------------------------------------------------------------
st.header("Runs")
# Before the table: a machine with no run yet is where a run trained elsewhere is most needed.
if importing := lazy_section(
    "Import a run (a zip exported from another machine)", "section_import", icon=":material/upload:"
):
    with importing:
        upload = st.file_uploader(
            "Run zip",
            type=["zip"],
            key="run_import",
            max_upload_size=MAX_IMPORT_BYTES // 2**20,  # a run with its model is past the posters' limit
            help="The zip that Download run folder gives, from this or another machine.",
        )
        if upload is not None and st.button("Import"):
            try:
                imported = finished_runs.import_run(settings, upload.getvalue(), upload.name)
            except runs.RunError as error:
                st.error(str(error))
            else:
                st.success(f"Imported as run {imported}.")
                st.rerun()

if not all_runs:
    st.caption("No run yet.")
    st.stop()
table = run_reports.runs_table(all_runs, active_model)
st.caption("Validation figures rank the runs; test figures are shown, never used to choose.")
if tensorboard := lazy_section("Compare the runs in TensorBoard", "section_tensorboard", icon=":material/monitoring:"):
    with tensorboard:
        st.caption(
            "Every run also logs to TensorBoard (curves per epoch, per-genre AP, settings in its HParams tab); "
            "compare the runs there with:"
        )
        st.code(f"tensorboard --logdir {shlex.quote(str(settings.runs_dir))}", language="bash")
url_run = valid_run_id(st.query_params.get("run"))
url_compare_given = [r for r in st.query_params.get("compare", "").split(",") if r]
url_compare = list(dict.fromkeys(r for r in url_compare_given if valid_run_id(r)))  # a run named twice: once
if st.query_params.get("run") and not url_run:
    st.warning("The run in the URL is not a valid run id; open a run from the table.")
if not all(valid_run_id(r) for r in url_compare_given):
    st.warning("The URL's compare list holds values that are not run ids; they were left out.")
render_runs_table(table, url_compare or ([url_run] if url_run else []))

known = {run.run_id: run for run in all_runs}
if url_compare:
    from ui.runs import render_compare

    missing = [run_id for run_id in url_compare if run_id not in known]
    if missing:
        st.warning("Unknown runs in the URL: " + ", ".join(missing))
    render_compare([known[run_id] for run_id in url_compare if run_id in known], active_model)
elif url_run:
    if url_run not in known:
        st.warning(f"There is no run {url_run}.")
    else:
        from ui.runs import render_run_detail

        render_run_detail(settings, catalog, known[url_run], active_model)
else:
    st.caption('Open a run by its id for its details; on its page, "add" compares other runs with it.')
    render_baselines(all_runs)
