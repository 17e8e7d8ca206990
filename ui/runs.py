"""The Training page's pieces that draw one run or several: detail, comparison, baselines, start button."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

import pandas as pd
import plotly.express as px
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from core.app import (
    estimate,
    finished_runs,
    launch_estimate,
    machine_speed,
    model_choice,
    remaining_time,
    run_reports,
    runs,
)
from core.app.runs import RunView
from core.app.urls import MistakesView, parse_mistakes_params
from core.config import Settings
from core.data.catalog import Catalog
from core.evaluation.mistakes import OUTCOMES, MistakesError, PartPredictions, load_test_predictions, saved_test_parts
from core.model.backbones import DEFAULT_BACKBONE
from core.training.config import MODES, ConfigError, make_config, parse_image_size
from core.training.run_folder import CONFIG_FILE
from ui.figures import CURVE_LABELS, curves_chart, hamming_note, readable_figures, shown_figure, with_direction
from ui.mistakes import confusion_chart, per_genre_links, render_mistakes
from ui.nav import TRAINING_PAGE
from ui.runs_table import render_runs_table
from ui.sections import lazy_section
from ui.text import literal_table, md_escape

# The formats of `core.serving.export` (imported on click only: it loads TensorFlow), in the user's words.
MODEL_FORMATS = {"keras": "Keras (.keras)", "savedmodel": "TensorFlow SavedModel", "tflite": "TFLite (.tflite)"}
PART_REPORTS = {"random": "test", "temporal": "temporal_test"}  # a test part -> its metrics.json entry


CONFUSION_SECTION = "Mistaken for: the genre predicted for movies that lack it (a cell opens their posters)"
_STARTING = "start-run-pressed"  # set by a Start button's callback, read at the top of the next script run
STARTING_MESSAGE = "Starting the run: its process loads TensorFlow, then reads the data…"


def mark_start_pressed() -> None:
    """A Start button's `on_click`: callbacks run before the page script, so the page can answer at its top."""
    st.session_state[_STARTING] = True


def start_notice() -> DeltaGenerator | None:
    """The answer to a Start click, drawn first thing in the script run the click caused.

    The page above the button (its run table, its time estimate) takes a moment to draw again; the notice
    says at once that the click was taken. Returns its holder, which `start_run` or the caller empties when
    the run is not started after all (the reason then shows where the button is).
    """
    if not st.session_state.pop(_STARTING, False):
        return None
    notice = st.empty()
    notice.info(STARTING_MESSAGE, icon=":material/hourglass_top:")
    return notice


def start_run(
    settings: Settings,
    mode: str,
    options: Sequence[str],
    notice: DeltaGenerator | None = None,
    expected: estimate.Estimate | None = None,
) -> None:
    """Launch a run and show it; a second start while one runs gets the reason, never a second process.

    `expected` is the estimate measured before the start; it is kept in the run's folder, since measuring once
    the run works would slow the run and read its load as this machine's speed (`core.app.launch_estimate`).
    """

    def keep_estimate(run_dir: Path) -> None:
        if expected is not None:
            with suppress(OSError):  # the run goes on; its panel plans from the run's own progress instead
                launch_estimate.save(run_dir, expected)

    try:
        run_id = runs.launch_run(settings, mode, options, keep_estimate)
    except runs.RunAlreadyActive as error:
        if notice is not None:
            notice.empty()
        st.warning(str(error), icon=":material/hourglass_top:")
        return
    except (runs.RunError, OSError) as error:
        if notice is not None:
            notice.empty()
        st.error(f"The run could not be started: {error}")
        return
    st.toast(f"Run {run_id} started.", icon=":material/rocket_launch:")
    # The run's view is on the Training page, whichever page started it.
    st.switch_page(TRAINING_PAGE, query_params={"run": run_id})


def page_is_behind(shown: RunView, current: RunView) -> bool:
    """Whether the page drew `shown` (the active run) in a state its status has left, or before its settings
    were written: the runs table and the Start button are then out of date, and the whole page runs again."""
    if current.state != shown.state:
        return True
    return not shown.config and (current.path / CONFIG_FILE).is_file()


def render_next_model(settings: Settings, run: RunView, active_model: str | None) -> None:
    """A banner for a run that finished with a model that Predict does not use yet, and the button to use it."""
    in_use = f"Predict uses run {active_model}" if active_model else "no model is active yet"
    with st.container(border=True):
        st.info(
            f"Run **{run.run_id}** finished ({md_escape(run.config.get('mode'))} mode) with a model; {in_use}.",
            icon=":material/new_releases:",
        )
        if st.button("Make it the active model", icon=":material/star:", key=f"next-model-{run.run_id}"):
            _make_active_model(settings, run.run_id)


def _make_active_model(settings: Settings, run_id: str) -> None:
    """Predict uses `run_id` from now on and the page redraws; a run that cannot be used says why instead."""
    try:
        model_choice.set_active_model(settings, run_id)
    except runs.RunError as error:
        st.error(str(error))
    else:
        st.rerun()


def run_caption(run: RunView) -> str:
    """Mode, state and start of a run, leaving out what a run that is starting has not written yet."""
    mode = run.config.get("mode")
    started = run.status.get("started_at")
    parts = [f"{mode} mode" if mode else None, run.state]
    parts.append(f"started {started}" if started else ("starting…" if run.is_active else None))
    return " · ".join(part for part in parts if part)


# A few minutes: the load of a shared machine changes, and the measure takes a few seconds.
MEASURE_TTL_SECONDS = 300
STATUSES_KEPT = 600  # the statuses a panel keeps of a run: 20 minutes at one every two seconds


@st.cache_data(show_spinner="Measuring this machine's speed…", max_entries=8, ttl=MEASURE_TTL_SECONDS)
def _posters_per_second(
    image_size: tuple[int, int], sample: tuple[str, ...], weights_dir: str, backbone: str, compiled_dir: str
) -> float:
    return machine_speed.measure_posters_per_second(image_size, sample, Path(weights_dir), backbone, Path(compiled_dir))


@st.cache_data(show_spinner="Measuring this machine's speed…", max_entries=8, ttl=MEASURE_TTL_SECONDS)
def _head_epoch_seconds(shape: tuple[int, int, int, int, int, float]) -> float:
    return machine_speed.measure_head_epoch_seconds(*shape)


def _measured_rate(settings: Settings, catalog: Catalog, size: tuple[int, int], backbone: str) -> float:
    sample = tuple(catalog.usable_movies()["poster_path"].head(machine_speed.SAMPLE_POSTERS))
    return _posters_per_second(size, sample, str(settings.weights_dir), backbone, str(settings.compiled_models_dir))


def fast_run_plan(settings: Settings, catalog: Catalog, all_runs: Sequence[RunView], config: dict) -> estimate.RunPlan:
    """The plan the form, the banners and the progress panel share (`core.app.estimate`), from the backbone's
    speed and a head epoch's, both measured here under the load of the last few minutes."""
    size = parse_image_size(str(config["image_size"]))
    backbone = str(config.get("backbone", DEFAULT_BACKBONE))
    rate = _measured_rate(settings, catalog, size, backbone)
    epoch_seconds = _head_epoch_seconds(machine_speed.head_shape(catalog, config))
    return estimate.plan_for(settings, catalog, config, all_runs, rate, epoch_seconds)


def estimate_for(
    settings: Settings,
    catalog: Catalog,
    all_runs: Sequence[RunView],
    mode: str,
    image_size: str,
    epochs: int,
    backbone: str = DEFAULT_BACKBONE,
    temporal_twin: bool = True,
) -> estimate.Estimate | None:
    """The run's expected duration. A fast run: the shared plan (posters still to embed at the rate measured
    here now, then its heads, refit and, unless left out, the temporal twin). The other modes: an earlier run
    of the same kind, else a probe of the backbone (the scratch mode has none; its small CNN is costed as a
    share of the default backbone)."""
    try:
        size = parse_image_size(image_size)
    except ConfigError:
        return None
    size_text = f"{size[0]}x{size[1]}"
    if mode == "fast":
        config = {**make_config("fast").to_json(), "image_size": size_text, "epochs": epochs, "backbone": backbone}
        config["temporal_twin"] = temporal_twin
        plan = fast_run_plan(settings, catalog, all_runs, config)
        return estimate.Estimate(plan.total_seconds, plan.basis, plan)
    if mode == "scratch":
        backbone = DEFAULT_BACKBONE
    from_runs = estimate.estimate_from_runs(all_runs, mode, size_text, epochs, backbone)
    if from_runs is not None:
        return from_runs
    usable = catalog.summary()["usable_movies"]
    rate = _measured_rate(settings, catalog, size, backbone)
    defaults = make_config(mode)
    return estimate.estimate_from_throughput(
        rate,
        mode,
        int(usable),
        epochs,
        uncached=int(usable),
        views=2 if defaults.flip_tta else 1,
        passes=estimate.head_passes(defaults.to_json()),
        backbone=backbone,
    )


def default_run_estimate(settings: Settings, catalog: Catalog, all_runs: Sequence[RunView]) -> estimate.Estimate | None:
    """What the fast default run would take here now: the banners' figure, the form's for its defaults."""
    fast = make_config("fast")
    size = f"{fast.image_height}x{fast.image_width}"
    return estimate_for(settings, catalog, all_runs, "fast", size, fast.epochs, fast.backbone)


def time_left(
    settings: Settings, catalog: Catalog, all_runs: Sequence[RunView], run: RunView
) -> remaining_time.TimeLeft:
    """A running run's time left and step, refined from every status this session has seen of it.

    Nothing is measured here: the run is working, so this machine's speed now is the run's load. The plan
    comes from the estimate measured at the run's start (`core.app.launch_estimate`); a run started without
    one (from the command line) is planned at a nominal rate that its own progress replaces within seconds.
    """
    seen = st.session_state.setdefault(f"statuses-{run.run_id}", [])
    if not seen or seen[-1].get("updated_at") != run.status.get("updated_at"):
        seen.append(dict(run.status))
        del seen[:-STATUSES_KEPT]
    mode = str(run.config.get("mode", "fast"))
    config = {**make_config(mode if mode in MODES else "fast").to_json(), **run.config}  # config.json may lag
    if mode == "fast":
        # Planned once per run and tab: what the run still had to embed is what it reports from then on.
        plan = st.session_state.get(f"plan-{run.run_id}")
        if plan is None:
            plan = started.plan if (started := launch_estimate.read(run.path)) else None
        if plan is None:
            earlier = [other for other in all_runs if other.run_id != run.run_id]
            plan = estimate.plan_for(settings, catalog, config, earlier, estimate.UNMEASURED_POSTERS_PER_SECOND)
        st.session_state[f"plan-{run.run_id}"] = plan
        return remaining_time.time_left(plan, seen, run.history, int(config.get("patience", 20)))
    eta = run_reports.eta_seconds(run)
    epoch, epochs = run.status.get("epoch"), run.status.get("epochs")
    step = f"epoch {epoch} of {epochs}" if epoch else str(run.status.get("phase") or run.state)
    if eta is None:  # no epoch has ended yet: the figure measured at the start, else an earlier run's
        earlier = [other for other in all_runs if other.run_id != run.run_id]
        size, epochs_asked = str(config.get("image_size")), int(config.get("epochs", 1))
        backbone = str(config.get("backbone", DEFAULT_BACKBONE))
        found = launch_estimate.read(run.path) or estimate.estimate_from_runs(
            earlier, mode, size, epochs_asked, backbone
        )
        elapsed = run_reports.duration_seconds(run) or 0.0
        eta = max(found.seconds - elapsed, 0.0) if found else 0.0
    return remaining_time.TimeLeft(eta, step)


def render_baselines(all_runs: Sequence[RunView]) -> None:
    """The newest finished run's test figures beside the trivial baselines."""
    finished = next((run for run in all_runs if run.metrics.get("test")), None)
    if finished is None:
        return
    st.subheader(f"Run {finished.run_id} against the trivial baselines (test part)")
    literal_table(readable_figures(run_reports.baselines_table(finished)))


def _confirm_delete(settings: Settings, run_id: str) -> None:
    @st.dialog(f"Delete run {run_id}?")
    def confirm() -> None:
        st.write("Its folder, model and metrics are removed for good.")
        if st.button("Delete", type="primary"):
            try:
                finished_runs.delete_run(settings, run_id)
            except runs.RunError as error:
                st.error(str(error))
                return
            st.query_params.clear()
            st.rerun()

    confirm()


def _actions(settings: Settings, run: RunView, active_model: str | None) -> None:
    columns = st.columns(3)
    usable = run.state in ("finished", "stopped") and run.has_model
    if run.run_id == active_model:
        columns[0].success("This is the active model.")
    elif columns[0].button("Make it the active model", disabled=not usable, icon=":material/star:"):
        _make_active_model(settings, run.run_id)
    if not run.is_active:
        columns[1].download_button(
            "Download run folder",
            data=lambda: finished_runs.export_run(settings, run.run_id),
            file_name=f"{run.run_id}.zip",
            mime="application/zip",
            icon=":material/folder_zip:",
            help="Every file of the run, to import it on another machine (Import a run, below).",
        )
        if columns[2].button("Delete…", icon=":material/delete:"):
            _confirm_delete(settings, run.run_id)
    if usable and not run.is_active and (download := lazy_section("Download the model", "section_model_download")):
        with download:
            _model_download(settings, run)


def _export_model(settings: Settings, run_id: str, fmt: str) -> bytes:
    from core.serving.export import export_zip

    return export_zip(runs.run_path(settings, run_id), fmt, settings)


def _model_download(settings: Settings, run: RunView) -> None:
    """The trained model to take away: one file of backbone and head, genres, thresholds and MODEL_CARD.md."""
    columns = st.columns([1, 2], vertical_alignment="bottom")
    fmt = columns[0].selectbox(
        "Model format", list(MODEL_FORMATS), format_func=MODEL_FORMATS.get, key=f"model-format-{run.run_id}"
    )
    # A callable: the export (seconds for Keras, a minute or more for TFLite) runs only when clicked.
    columns[1].download_button(
        "Download the model with its model card",
        data=lambda: _export_model(settings, run.run_id, fmt),
        file_name=f"{run.run_id}-{fmt}.zip",
        mime="application/zip",
        icon=":material/deployed_code:",
        help="Raw RGB poster pixels in, one score per genre out; loads without this app (see MODEL_CARD.md).",
    )


def render_run_detail(settings: Settings, catalog: Catalog, run: RunView, active_model: str | None) -> None:
    """One run: what happened, its figures beside the baselines, per genre, and its curves."""
    st.header(f"Run {run.run_id}")
    # The run folder may come from another machine (Import a run): its words are shown, never rendered.
    st.caption(md_escape(run_caption(run)))
    if run.state in ("failed", "interrupted"):
        reason = run.status.get("error") or run.explanation or "no reason was recorded"
        st.error(md_escape(f"This run {run.state}: {reason}"), icon=":material/error:")
        tail = runs.log_tail(settings, run.run_id)
        if tail:
            st.code(tail, language="text")
    elif run.state == "stopped":
        st.info(md_escape(stopped_summary(run)))
    _actions(settings, run, active_model)
    if run.metrics.get("test"):
        parts = saved_test_parts(run.path) or ["random"]
        wanted = st.query_params.get("part", "random")
        part = wanted if wanted in parts else "random"
        per_genre = run_reports.per_genre_table(run, PART_REPORTS[part])
        predictions = _mistakes_view(catalog, run, list(per_genre["genre"]), parts)
        st.subheader("Test figures beside the trivial baselines")
        baselines = run_reports.baselines_table(run)
        literal_table(readable_figures(baselines))
        st.caption(
            "↑ higher is better, ↓ lower is better; — where a figure does not apply (predicting nothing ranks nothing)."
        )
        note = hamming_note(baselines)
        if note:
            st.caption(note)
        _corrections_used(run)
        _yardsticks(run)
        st.subheader(f"Per genre ({'temporal ' if part == 'temporal' else ''}test part)")
        if len(parts) > 1:
            _part_switch(run, parts, part)
        st.caption("A TP, FP or FN count opens its posters: found, false alarms, missed.")
        per_genre_links(run, per_genre, part)
        # The charts are drawn once their section is opened: each costs a new tab about a second of drawing.
        if outcomes_section := lazy_section("Per-genre outcomes as a chart", "section_outcomes"):
            with outcomes_section:
                _outcomes_chart(per_genre)
        if pr_section := lazy_section("Precision-recall curve per genre", "section_pr"):
            with pr_section:
                _pr_curve(run, list(per_genre["genre"]))
        if predictions is not None and (confusion := lazy_section(CONFUSION_SECTION, "section_confusion")):
            with confusion:
                confusion_chart(run, predictions[0], predictions[1])
    curves = run_reports.curves([run])
    if not curves.empty and (curves_section := lazy_section("Training curves", "section_curves")):
        with curves_section:
            # Keyed: while the run trains the progress panel draws the same chart, and equal ids stop the page.
            st.plotly_chart(curves_chart(curves), width="stretch", key=f"curves-{run.run_id}")
    genres = run.genres.get("left_out") or {}
    if genres:
        st.caption("Genres left out: " + "; ".join(f"{genre} ({reason})" for genre, reason in genres.items()))


def _outcomes_chart(per_genre: pd.DataFrame) -> None:
    counts = per_genre.melt(id_vars="genre", value_vars=["tp", "fp", "fn"], var_name="outcome", value_name="movies")
    counts["outcome"] = counts["outcome"].map({"tp": "found (TP)", "fp": "false alarm (FP)", "fn": "missed (FN)"})
    chart = px.bar(
        counts,
        x="genre",
        y="movies",
        color="outcome",
        barmode="group",
        title="Per-genre outcomes at the chosen thresholds",
    )
    st.plotly_chart(chart, width="stretch")


def _yardsticks(run: RunView) -> None:
    """The random split's test figures beside the temporal test's: which one to believe for new posters."""
    table = run_reports.yardsticks_table(run)
    temporal = run.metrics.get("temporal") or {}
    if table.empty:
        if temporal.get("skipped"):
            st.caption(md_escape(f"No temporal test: {temporal['skipped']}"))
        return
    st.subheader("Posters like the training ones, and posters of newer movies")
    shown = table.assign(figure=table["figure"].map(with_direction))
    for column in shown.columns[1:]:
        shown[column] = shown[column].map(shown_figure)
    literal_table(shown)
    st.caption(
        f"The temporal test comes from a twin of this run with the same settings, trained on movies before "
        f"{md_escape(temporal.get('train_before'))} and tuned on "
        f"{md_escape(temporal.get('validation_years', ['?'])[0])}–"
        f"{md_escape(temporal.get('validation_years', ['?', '?'])[-1])}: for posters of new movies, believe it rather than "
        "the random split's test. Baseline: the three most frequent training genres (chance for mAP)."
    )


def stopped_summary(run: RunView) -> str:
    """What a stopped run kept, from its folder: a stop before the first epoch ended kept no model."""
    if not run.has_model:
        reason = run.status.get("error") or "it stopped before its first epoch ended"
        return f"Stopped on request before any model was saved ({reason}): there is nothing to evaluate or use."
    epochs = len(run.history)
    best = run.metrics.get("best_epoch")
    kept = f"the best weights (epoch {best})" if best else "the best weights up to then"
    evaluated = "kept and evaluated" if run.metrics.get("test") else "kept"
    return f"Stopped on request after {epochs} epoch{'s' if epochs != 1 else ''}; {kept} were {evaluated}."


def _corrections_used(run: RunView) -> None:
    """How many label corrections the run learned from, and its test figures with the ones it held back."""
    record = run.corrections
    if not record.get("available"):
        return
    if not record.get("enabled"):
        st.caption(f"Label corrections: {record['available']} were in force; this run did not use them.")
        return
    per_part = record.get("per_part", {})
    st.caption(
        f"Label corrections: {record.get('used', 0)} of {record['available']} used (train {per_part.get('train', 0)}, "
        f"validation {per_part.get('val', 0)}, test {per_part.get('test', 0)} made before the split was drawn)."
    )
    held = record.get("test_movies_held_back") or []
    if held and run.metrics.get("test_with_corrections"):
        with st.expander(f"Test figures with the corrections of {len(held)} test movie(s) made after the split"):
            st.caption(
                "The figures above keep the test labels as the split drew them, so that runs compare. These use "
                "the corrections too. Test movies with held-back corrections: " + ", ".join(map(md_escape, held))
            )
            literal_table(readable_figures(run_reports.baselines_table(run, "test_with_corrections")))


def _pr_curve(run: RunView, genres: list[str]) -> None:
    """A precision-recall curve per genre, with the run's chosen threshold marked."""
    left, _ = st.columns(2)
    with left:
        genre = st.selectbox("Precision-recall curve of", genres, key=f"pr-genre-{run.run_id}")
        curve = run_reports.pr_curve(run, genre)
        if curve.empty:
            st.caption("No per-movie scores saved for this run (or no test movie has this genre).")
            return
        chosen = next(
            (row["threshold"] for row in run_reports.per_genre_table(run).to_dict("records") if row["genre"] == genre),
            None,
        )
        chart = px.line(curve, x="recall", y="precision", hover_data=["threshold"], range_x=[0, 1], range_y=[0, 1.02])
        if chosen is not None:
            point = curve.iloc[(curve["threshold"] - chosen).abs().argmin()]
            chart.add_scatter(
                x=[point["recall"]],
                y=[point["precision"]],
                mode="markers",
                name="chosen threshold",
                marker={"size": 12, "color": "#f5c518"},
            )
        st.plotly_chart(chart, width="stretch", key=f"pr-{run.run_id}")


def _part_switch(run: RunView, parts: list[str], part: str) -> None:
    """Which test part the counts, the matrix and their galleries are of (the URL's `part=`)."""
    labels = {"random": "random split's test part", "temporal": "temporal test part (newer movies)"}

    def switched() -> None:
        chosen = st.session_state[f"part-{run.run_id}"] or "random"
        st.query_params.from_dict(MistakesView(part=chosen).to_params(run.run_id))

    st.session_state[f"part-{run.run_id}"] = part
    st.segmented_control("Test part", parts, format_func=labels.get, key=f"part-{run.run_id}", on_change=switched)


def _mistakes_view(
    catalog: Catalog, run: RunView, genres: list[str], parts: list[str]
) -> tuple[PartPredictions, MistakesView] | None:
    """The gallery the URL asks for (drawn here, at the top of the run), and the predictions it came from."""
    view = parse_mistakes_params(st.query_params.to_dict(), genres, parts, OUTCOMES)
    for message in view.messages:
        st.warning(md_escape(message), icon=":material/link_off:")
    try:
        predictions = load_test_predictions(run.path, view.part)
    except MistakesError as error:
        if view.genre:
            st.warning(f"No mistake galleries for this run: {error}.")
        return None
    if view.genre and view.errors:
        with st.container(border=True, key="mistakes-gallery"):
            render_mistakes(catalog, run, predictions, view, len(parts))
    return predictions, view


def render_compare(chosen: Sequence[RunView], active_model: str | None = None) -> None:
    """Two or more runs: settings side by side, their figures, per-genre AP and F1 with differences, and their
    curves overlaid."""
    st.header("Compare " + ", ".join(run.run_id for run in chosen))
    settings_frame = run_reports.settings_table(chosen)
    differing = settings_frame["differs"]
    st.subheader("Settings (differences highlighted)")
    literal_table(settings_frame.drop(columns="differs").rename_axis("setting").reset_index(), highlighted=differing)
    st.subheader("Figures")
    render_runs_table(
        run_reports.runs_table(chosen, active_model), [run.run_id for run in chosen], key="compare-figures"
    )
    st.subheader("Per genre (test part): AP and F1, and the difference from the first run")
    comparison = run_reports.per_genre_comparison(chosen)
    for column in comparison.columns[1:]:  # three decimals, the differences signed
        pattern = "{:+.3f}" if column.startswith("Δ") else "{:.3f}"
        comparison[column] = comparison[column].map(lambda value, p=pattern: "—" if pd.isna(value) else p.format(value))
    literal_table(comparison)
    curves = run_reports.curves(chosen)
    # Drawn once opened: a chart costs a new tab about a second (ui/sections.py).
    if not curves.empty and (curves_section := lazy_section("Their curves, overlaid", "section_compare_curves")):
        with curves_section:
            metric = st.selectbox(
                "Curve",
                sorted(curves["metric"].unique()),
                index=0,
                key="compare_metric",
                format_func=lambda key: CURVE_LABELS.get(key, key),
            )
            chart = px.line(curves[curves["metric"] == metric], x="epoch", y="value", color="run", markers=True)
            st.plotly_chart(chart, width="stretch")
