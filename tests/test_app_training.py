"""The Training page as AppTest runs it: a run started from the form trains for real (a tiny one, on the
generated dataset) while the progress panel follows it; stopping, failures and dead processes; the compare
view; choosing the active model. Then the tables and estimates underneath (`core.app.run_reports`,
`core.app.estimate`)."""

from __future__ import annotations

import dataclasses
import html
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core import background
from core.app import estimate, finished_runs, launch_estimate, machine_speed, model_choice, run_reports, runs
from core.app.runs import RunView
from core.background import process_start_time
from core.config import Settings
from core.model.backbones import BACKBONES, DEFAULT_BACKBONE
from core.training import run_folder as rf
from core.training.config import make_config
from core.training.trainer import train
from tests.apptest_helpers import html_blocks, html_tables, open_sections, shown_text, texts, use_settings
from tests.model_fixture import TINY_RUN, TinyModel, as_on_a_warm_server, open_app
from ui import runs as ui_runs

# What the panel's bars say: the phase alone before the epochs are known, then the epoch; then the step in
# the run's own units (posters while embedding, a head's epochs of where early stopping should end it).
# A phase, or one of the default fast run's three heads, or their refit; then where in it the run is.
_PHASE = rf"(?:temporal twin )?(?:(?:{'|'.join((*rf.STATES, *rf.PHASES))})(?: head \d of 3)?|refit of head \d of 3)"
_STEP = r"(?:temporal twin: )?(?:posters [\d,]+ of [\d,]+|head \d of 3, epoch \d+ of ~\d+|refit of head \d of 3, epoch \d+ of \d+)"
PROGRESS_TEXT = re.compile(rf"({_PHASE})(…|: epoch \d+ of [12])|{_STEP}")
RUN_TIMEOUT_S = 240  # a tiny run in its own process: TensorFlow's start-up, then seconds of training


@pytest.fixture(autouse=True)
def warm_server(monkeypatch: pytest.MonkeyPatch) -> None:
    as_on_a_warm_server(monkeypatch)


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, tiny_model: TinyModel, tmp_path: Path) -> Settings:
    """The fixture's data and caches (the tiny run's embeddings are reused) with an empty runs folder."""
    settings = dataclasses.replace(tiny_model.settings, runs_dir=tmp_path / "runs")
    settings.runs_dir.mkdir()
    use_settings(monkeypatch, settings)
    return settings


@pytest.fixture(scope="module")
def second_run(tiny_model: TinyModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another finished tiny run, with other epochs, seed and learning rate, to compare with the first."""
    run_dir = tmp_path_factory.mktemp("second") / "20200101-000000-fast-beef"
    config = make_config("fast", **{**TINY_RUN, "epochs": 2, "seed": 5, "learning_rate": 3e-3})
    result = train(config, tiny_model.settings, run_dir)
    assert result.state == "finished", result.error
    return run_dir


def copy_run(source: Path, settings: Settings, run_id: str | None = None) -> str:
    run_id = run_id or source.name
    shutil.copytree(source, settings.runs_dir / run_id)
    return run_id


def button(app: AppTest, label: str):
    found = [b for b in app.button if b.label == label]
    assert found, f"no button {label!r} among {[b.label for b in app.button]}"
    return found[0]


def submit(app: AppTest) -> None:
    """Press the form's Start button."""
    next(widget for widget in app.get("button") if widget.label == "Start").click()
    app.run()


def runs_shown(app: AppTest) -> dict[str, str]:
    """The runs table on the page: run id -> state."""
    table = runs_table_shown(app)
    return dict(zip(table["run"], table["state"], strict=True))


def runs_table_shown(app: AppTest) -> pd.DataFrame:
    """The page's table of runs (the first table with a state column), as its cells read."""
    return next(frame for frame in html_tables(app) if "state" in frame.columns)


def wait_for_run(
    app: AppTest, settings: Settings, run_id: str, seen: list[str], while_running: Callable[[], None] = lambda: None
) -> RunView:
    """Rerun the page (as its two-second fragment would) until the run has ended; note what the panel showed,
    and call `while_running` after each page run that drew the run's panel."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        run = runs.read_run(settings, run_id)
        app.run()
        assert not app.exception, app.exception
        if f"Running: {run_id}" in [header.value for header in app.subheader]:
            seen += [bar.text for bar in app.get("progress")]
            while_running()
        if not run.is_active:
            return runs.read_run(settings, run_id)
        time.sleep(0.5)
    log = runs.log_tail(settings, run_id)
    raise AssertionError(f"the run {run_id} did not end in {RUN_TIMEOUT_S} s:\n{log}")


# --- Starting, watching, stopping --------------------------------------------------------------------------


def form_estimate(app: AppTest) -> str:
    [figure] = [metric.value for metric in app.metric if metric.label == "Estimated time here"]
    return figure


def test_a_run_started_from_the_form_trains_while_the_panel_shows_its_progress(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_app("pages/training.py")
    assert not app.exception
    assert "No run yet." in [caption.value for caption in app.caption]
    form = {widget.label: widget for widget in [*app.number_input, *app.text_input]}
    form["Epochs"].set_value(2)
    form["Image size (height x width)"].set_value("64x48")
    form["Minimum movies per genre"].set_value(5)
    submit(app)
    assert not app.exception and not app.error
    [run_dir] = [path for path in settings.runs_dir.iterdir() if path.is_dir()]
    run_id = run_dir.name
    assert app.query_params["run"] in (run_id, [run_id])
    launch = json.loads((run_dir / runs.LAUNCH_FILE).read_text())
    command = launch["command"]
    assert command[:4] == ["-m", "core.train", "--mode", "fast"]
    for option, value in (("--epochs", "2"), ("--image-size", "64x48"), ("--min-movies-per-genre", "5")):
        assert command[command.index(option) + 1] == value
    started = launch_estimate.read(run_dir)  # the form's estimate of the submitted run, kept for every tab's panel
    assert started is not None and started.plan is not None
    assert started.plan.epochs == 2 and started.seconds == started.plan.total_seconds

    # Five minutes on, the page's measures have expired: while the run works, nothing measures this machine.
    measured: list[str] = []
    monkeypatch.setattr(machine_speed, "measure_posters_per_second", lambda *_, **__: measured.append("rate") or 2.0)
    monkeypatch.setattr(machine_speed, "measure_head_epoch_seconds", lambda *_, **__: measured.append("epoch") or 0.6)
    ui_runs._posters_per_second.clear()
    ui_runs._head_epoch_seconds.clear()
    during: list[tuple[int, str]] = []
    seen: list[str] = []

    def note_the_form() -> None:
        # The Start form's section is closed once there is a run to show: a user opens it to start another one.
        # Opening it reruns the page, and the run may have ended in between: then the form may measure again.
        opened = open_sections(app, "section_start")
        if f"Running: {run_id}" in [header.value for header in opened.subheader]:
            during.append((len(measured), form_estimate(opened)))

    run = wait_for_run(app, settings, run_id, seen, note_the_form)
    assert run.state == "finished", runs.log_tail(settings, run_id)
    assert seen, "the progress panel never showed the running run"
    assert during and all(step == (0, "—") for step in during), during
    assert all(PROGRESS_TEXT.fullmatch(text) for text in seen), seen
    assert run.history and [record["epoch"] for record in run.history] == [1, 2, 3, 4, 5, 6]  # 3 heads

    app.run()  # the panel saw the end: the page shows the finished run in the table and its detail
    assert runs_shown(app) == {run_id: "finished"}
    assert f"Run {run_id}" in [header.value for header in app.header]
    assert "Test figures beside the trivial baselines" in [header.value for header in app.subheader]
    assert not [header for header in app.subheader if header.value.startswith("Running:")]


def test_a_stopped_run_ends_stopped(settings: Settings) -> None:
    options = ["--epochs", "1000", "--patience", "0", "--image-size", "64x48", "--min-movies-per-genre", "5"]
    run_id = runs.launch_run(settings, "fast", options)
    try:
        app = open_app("pages/training.py", run=run_id)
        assert not app.exception
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while not rf.read_history(settings.runs_dir / run_id):  # one epoch done: there is a model to keep
            assert runs.read_run(settings, run_id).is_active, runs.log_tail(settings, run_id)
            assert time.monotonic() < deadline, runs.log_tail(settings, run_id)
            time.sleep(0.5)
        app.run()
        assert f"Running: {run_id}" in [header.value for header in app.subheader]
        button(app, "Stop this run")
        # What that button does (AppTest cannot rerun the fragment alone, as a click in a browser does).
        runs.request_stop(settings, run_id)
        assert (settings.runs_dir / run_id / background.STOP_FILE).exists()
        app.run()
        assert "Stopping after the current batch" in texts(app)
        button(app, "Force stop (SIGTERM)")
        run = wait_for_run(app, settings, run_id, [])
    finally:
        runs.kill_run(settings, run_id)
    assert run.state == "stopped" and run.metrics.get("stopped") is True
    assert len(run.history) < 1000
    app.run()
    assert runs_shown(app) == {run_id: "stopped"}
    assert "Stopped on request" in texts(app)


def test_a_bad_image_size_is_refused_and_nothing_starts(settings: Settings) -> None:
    app = open_app("pages/training.py")
    next(w for w in app.text_input if w.label.startswith("Image size")).set_value("abc")
    submit(app)
    assert not app.exception
    [error] = [error.body for error in app.error]
    assert error.startswith("Not started: image size must look like 320x224") and "'abc'" in error
    assert not [info for info in app.info if info.body.startswith("Starting the run")]  # the click's answer is gone
    assert not [path for path in settings.runs_dir.iterdir() if path.is_dir()]
    assert [metric.value for metric in app.metric if metric.label == "Estimated time here"] == ["—"]


# --- Runs that went wrong -------------------------------------------------------------------------------------


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def never_measured(*args: object, **kwargs: object) -> float:
    raise AssertionError("this machine was measured while a run works")


@pytest.mark.parametrize("started_with_estimate", [True, False], ids=["from-the-app", "from-the-command-line"])
def test_the_panel_of_a_run_embedding_its_posters_says_how_many_and_how_long_is_left(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, started_with_estimate: bool
) -> None:
    monkeypatch.setattr(machine_speed, "measure_posters_per_second", never_measured)
    monkeypatch.setattr(machine_speed, "measure_head_epoch_seconds", never_measured)
    ui_runs._posters_per_second.clear()
    ui_runs._head_epoch_seconds.clear()  # an earlier page of this process measured the real rate
    run_dir = settings.runs_dir / "20200101-000000-fast-embeds"
    run_dir.mkdir()
    pid = os.getpid()  # a live process, as the run's own would be
    status = {
        "state": "running",
        "pid": pid,
        "pid_start_time": process_start_time(pid),
        "started_at": rf.now(),
        "updated_at": rf.now(),
        "phase": "embedding",
        "batch": 1888,
        "batches": 5729,
    }
    (run_dir / rf.STATUS_FILE).write_text(json.dumps(status))
    (run_dir / rf.CONFIG_FILE).write_text(json.dumps(make_config("fast").to_json()))
    # The app measured 2 posters/s before the start; a command-line run is planned at the nominal rate.
    rate = 2.0 if started_with_estimate else estimate.UNMEASURED_POSTERS_PER_SECOND
    if started_with_estimate:
        plan = estimate.plan_fast_run(make_config("fast").to_json(), rate, 5729, 4000, None, 0.6)
        launch_estimate.save(run_dir, estimate.Estimate(plan.total_seconds, plan.basis, plan))
    app = open_app("pages/training.py", run=run_dir.name)
    assert not app.exception
    assert not [metric for metric in app.metric if metric.label == "Estimated time here"]  # closed: a run to show
    open_sections(app, "section_start")
    assert not app.exception
    assert "posters 1,888 of 5,729" in [bar.text for bar in app.get("progress")]
    [left] = [metric.value for metric in app.metric if metric.label == "Left (estimate)"]
    minutes = float(left.removesuffix(" min"))
    assert (5729 - 1888) / rate / 60 <= minutes < (5729 - 1888) / rate / 60 + 10
    assert form_estimate(app) == "—"
    assert "The estimate is measured once the running run has ended: measuring now would slow it." in [
        caption.value for caption in app.caption
    ]


def measures_this_machine_as(
    monkeypatch: pytest.MonkeyPatch, posters_per_second: float, head_epoch_seconds: float
) -> None:
    """The Start form's measurements of this machine give these figures (and none is remembered from before)."""
    monkeypatch.setattr(machine_speed, "measure_posters_per_second", lambda *args, **kwargs: posters_per_second)
    monkeypatch.setattr(machine_speed, "measure_head_epoch_seconds", lambda *args, **kwargs: head_epoch_seconds)
    ui_runs._posters_per_second.clear()
    ui_runs._head_epoch_seconds.clear()


def test_the_no_model_banner_and_the_form_give_the_same_measured_estimate(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    measures_this_machine_as(monkeypatch, posters_per_second=2.0, head_epoch_seconds=0.6)
    app = open_app("pages/training.py")
    assert not app.exception
    [form_figure] = [metric.value for metric in app.metric if metric.label == "Estimated time here"]
    minutes = round(float(form_figure.removesuffix(" min")))
    assert f"No model yet. Train one: the fast default run takes about {minutes} min here, as measured now." in [
        info.value for info in app.info
    ]
    assert "few minutes" not in texts(app)


def test_the_form_offers_the_temporal_twin_with_its_cost_and_a_run_started_without_it_leaves_it_out(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    measures_this_machine_as(monkeypatch, posters_per_second=2.0, head_epoch_seconds=0.6)
    started: list[list[str]] = []
    monkeypatch.setattr(ui_runs, "start_run", lambda settings, mode, options, *rest: started.append(list(options)))
    app = open_app("pages/training.py")
    [twin] = [box for box in app.checkbox if box.label.startswith("Temporal test")]
    assert twin.value
    with_twin = float(form_estimate(app).removesuffix(" min"))
    [cost] = [caption.value for caption in app.caption if caption.value.startswith("The temporal twin is about")]
    twin_minutes = float(cost.split("about ")[1].split(" min")[0])
    assert 0 < twin_minutes < with_twin

    twin.uncheck()
    submit(app)
    assert not app.exception
    assert started and "--no-temporal-twin" in started[-1]
    without = float(form_estimate(app).removesuffix(" min"))
    assert without == pytest.approx(with_twin - twin_minutes, abs=0.15)
    assert not [caption for caption in app.caption if caption.value.startswith("The temporal twin is about")]


def test_a_running_run_whose_process_is_gone_shows_interrupted(settings: Settings) -> None:
    run_dir = settings.runs_dir / "20200101-000000-fast-dead"
    run_dir.mkdir()
    status = {"state": "running", "pid": dead_pid(), "pid_start_time": 1, "started_at": "2020-01-01T00:00:00+0000"}
    (run_dir / rf.STATUS_FILE).write_text(json.dumps(status))
    (run_dir / rf.CONFIG_FILE).write_text(json.dumps({"mode": "fast", "image_size": "64x48"}))
    (run_dir / rf.LOG_FILE).write_text("epoch 1 of 60\nepoch 2 of 60\n")
    app = open_app("pages/training.py", run=run_dir.name)
    assert not app.exception
    assert runs_shown(app) == {run_dir.name: "interrupted"}
    [error] = [shown_text(error.body) for error in app.error]  # escaped: the reason comes from the run folder
    assert error.startswith("This run interrupted: its process ended without finishing")
    [tail] = [code.value for code in app.code if code.language == "text"]  # the log's end, not the TensorBoard line
    assert tail.splitlines() == ["epoch 1 of 60", "epoch 2 of 60"]
    assert not [header for header in app.subheader if header.value.startswith("Running:")]


def test_a_failed_run_shows_its_error_and_the_end_of_its_log(settings: Settings) -> None:
    run_dir = settings.runs_dir / "20200101-000000-fast-fail"
    run_dir.mkdir()
    status = {
        "state": "failed",
        "error": "RuntimeError: the head would not build",
        "started_at": "2020-01-01T00:00:00+0000",
    }
    (run_dir / rf.STATUS_FILE).write_text(json.dumps(status))
    (run_dir / rf.CONFIG_FILE).write_text(json.dumps({"mode": "fast", "image_size": "64x48"}))
    log = [f"line {n}" for n in range(40)] + [
        "Traceback (most recent call last):",
        "RuntimeError: the head would not build",
    ]
    (run_dir / rf.LOG_FILE).write_text("\n".join(log) + "\n")
    app = open_app("pages/training.py", run=run_dir.name)
    assert not app.exception
    assert runs_shown(app) == {run_dir.name: "failed"}
    assert [shown_text(error.body) for error in app.error] == [
        "This run failed: RuntimeError: the head would not build"
    ]
    [tail] = [code.value for code in app.code if code.language == "text"]  # the log's end, not the TensorBoard line
    assert tail.splitlines() == log[-25:]
    assert button(app, "Make it the active model").disabled


# --- Several runs, and the active model -----------------------------------------------------------------------


def table_links(app: AppTest) -> dict[tuple[str, str], str]:
    """The links of the page's first runs table: (row's run, link text) -> the query it opens."""
    value = next(block for block in html_blocks(app) if "<th>state</th>" in block)
    found = {}
    for row in re.findall(r"<tr>(.*?)</tr>", value):
        run = re.search(r">(\d{8}-\d{6}-[^<]+)<", row)
        for href, text in re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', row):
            found[(run.group(1) if run else "", text)] = html.unescape(href)
    return found


def test_the_runs_tables_links_open_a_run_add_one_to_compare_and_take_one_out(
    settings: Settings, tiny_model: TinyModel, second_run: Path
) -> None:
    first = copy_run(tiny_model.run_dir, settings)
    second = copy_run(second_run, settings)
    app = open_app("pages/training.py")
    assert table_links(app) == {(first, first): f"?run={first}", (second, second): f"?run={second}"}

    app = open_app("pages/training.py", run=first)  # the link followed: a new page run with its query
    links = table_links(app)
    assert links[(second, "add")] == f"?compare={first}%2C{second}"
    assert (first, "add") not in links and (first, "remove") not in links  # the open run is there already

    app = open_app("pages/training.py", compare=f"{first},{second}")
    assert f"Compare {first}, {second}" in [header.value for header in app.header]
    links = table_links(app)
    assert links[(second, "remove")] == f"?run={first}" and links[(first, "remove")] == f"?run={second}"
    assert not app.dataframe  # no canvas grid left on the page: a new tab draws only light elements


def test_the_compare_view_shows_settings_differences_and_per_genre_deltas(
    settings: Settings, tiny_model: TinyModel, second_run: Path
) -> None:
    first = copy_run(tiny_model.run_dir, settings)
    second = copy_run(second_run, settings)
    model_choice.set_active_model(settings, first)
    app = open_app("pages/training.py", compare=f"{first},{second}")
    assert not app.exception and not app.warning
    assert f"Compare {first}, {second}" in [header.value for header in app.header]
    frames = html_tables(app)
    runs_tables = [frame.set_index("run")["active"].to_dict() for frame in frames if "active" in frame]
    assert runs_tables == [{first: run_reports.ACTIVE_MARK, second: ""}] * 2  # the runs table and the figures
    settings_frame = next(frame for frame in frames if list(frame.columns) == ["setting", first, second])
    differing = {row["setting"] for _, row in settings_frame.iterrows() if row[first] != row[second]}
    assert differing == {"epochs", "seed", "learning_rate"}
    assert settings_frame.attrs["highlighted"] == differing
    per_genre = next(frame for frame in html_tables(app) if "genre" in frame.columns and f"ΔAP {second}" in frame)
    views = {run_id: runs.read_run(settings, run_id) for run_id in (first, second)}
    table = per_genre.set_index("genre")
    ap = {
        run_id: {entry["genre"]: entry["ap"] for entry in view.metrics["test"]["per_genre"]}
        for run_id, view in views.items()
    }
    for genre, row in table.iterrows():
        assert float(row[f"ΔAP {second}"]) == pytest.approx(ap[second][genre] - ap[first][genre], abs=5e-4)
    assert set(table.index) == set(ap[first])
    assert "Settings (differences highlighted)" in [header.value for header in app.subheader]
    figures = next(frame for frame in frames if "active" in frame and "temporal test mAP" in frame)
    assert figures["temporal test mAP"].notna().all() and figures["test mAP"].notna().all()


def test_a_compare_url_with_a_repeated_unknown_or_malformed_run_gets_messages(
    settings: Settings, tiny_model: TinyModel
) -> None:
    run_id = copy_run(tiny_model.run_dir, settings)
    app = open_app("pages/training.py", compare=f"{run_id},{run_id},tt0000001,../../etc/passwd")
    assert not app.exception
    assert f"Compare {run_id}" in [header.value for header in app.header]  # the repeated run once
    warnings = [warning.body for warning in app.warning]
    assert "Unknown runs in the URL: tt0000001" in warnings
    assert "The URL's compare list holds values that are not run ids; they were left out." in warnings
    assert "root:" not in texts(app)


def test_making_a_run_the_active_model_lasts_beyond_the_session(settings: Settings, tiny_model: TinyModel) -> None:
    run_id = copy_run(tiny_model.run_dir, settings)
    app = open_app("pages/training.py", run=run_id)
    assert not app.exception
    assert not [s for s in app.success if "Active model" in s.body]
    # The run's page shows the random split's test beside the temporal test.
    assert "Posters like the training ones, and posters of newer movies" in [h.value for h in app.subheader]
    button(app, "Make it the active model").click().run()
    assert not app.exception
    assert model_choice.active_model_id(settings) == run_id
    fresh = open_app("pages/training.py")
    assert f"Active model: run **{run_id}** (fast mode), used by Predict." in [s.body for s in fresh.success]
    table = next(frame for frame in html_tables(fresh) if "active" in frame.columns)
    assert table.set_index("run").loc[run_id, "active"] == run_reports.ACTIVE_MARK


def test_a_finished_runs_page_offers_its_folder_its_model_with_a_model_card_and_the_tensorboard_command(
    settings: Settings, tiny_model: TinyModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit.delta_generator import DeltaGenerator

    from core.serving import export

    downloads: dict[str, tuple] = {}
    real_download_button = DeltaGenerator.download_button

    def recording_download_button(self, label, data, *args, **kwargs):
        downloads[label] = (data, kwargs)
        return real_download_button(self, label, data, *args, **kwargs)

    monkeypatch.setattr(DeltaGenerator, "download_button", recording_download_button)
    run_id = copy_run(tiny_model.run_dir, settings)
    app = open_app("pages/training.py", run=run_id)
    assert not app.exception

    assert set(downloads) == {"Download run folder"}  # the model's section is closed
    assert not app.code  # so is the command's: its highlighted block costs a new tab half a second
    open_sections(app, "section_tensorboard", "section_model_download")
    assert set(downloads) == {"Download run folder", "Download the model with its model card"}
    assert f"tensorboard --logdir {settings.runs_dir}" in [block.value for block in app.code]
    formats = app.selectbox(key=f"model-format-{run_id}")
    assert formats.options == [ui_runs.MODEL_FORMATS[fmt] for fmt in export.FORMATS]
    data, kwargs = downloads["Download the model with its model card"]
    assert kwargs["file_name"] == f"{run_id}-keras.zip"
    with zipfile.ZipFile(io.BytesIO(data())) as bundle:
        assert sorted(bundle.namelist()) == [
            f"{run_id}-keras/{name}" for name in ("MODEL_CARD.md", "genres.json", "model.keras", "thresholds.json")
        ]


def test_a_runs_figures_say_which_way_is_better_never_read_none_and_explain_a_hamming_loss_worse_than_nothing(
    settings: Settings, tiny_model: TinyModel
) -> None:
    run_id = copy_run(tiny_model.run_dir, settings)
    metrics_file = settings.runs_dir / run_id / "metrics.json"
    metrics = json.loads(metrics_file.read_text())
    metrics["test"]["summary"]["hamming_loss"] = 0.141  # as the real default run: worse than predicting nothing
    metrics["test"]["baselines"]["nothing"]["hamming_loss"] = 0.119
    metrics_file.write_text(json.dumps(metrics))
    app = open_app("pages/training.py", run=run_id)
    assert not app.exception
    table = next(frame for frame in html_tables(app) if "model" in frame.columns)
    assert {"micro-F1 ↑", "macro-F1 ↑", "mAP ↑", "hit@3 ↑", "P@3 ↑", "Hamming loss ↓"} <= set(table.columns)
    nothing = table.set_index("model").loc["predict nothing"]
    assert nothing["mAP ↑"] == "—" and nothing["Hamming loss ↓"] == "0.119"
    assert "None" not in table.to_string()
    notes = " ".join(caption.value for caption in app.caption)
    assert "This model's Hamming loss (0.141) is worse than predicting nothing (0.119)" in notes
    assert "↑ higher is better, ↓ lower is better" in notes
    assert not app.get("plotly_chart")  # every chart of a run's page is drawn once its section is opened
    open_sections(app, "section_curves")
    figure = json.loads(next(chart.proto.spec for chart in app.get("plotly_chart") if "Per epoch" in chart.proto.spec))
    names = {trace["name"] for trace in figure["data"]}
    assert {"training loss", "validation loss", "validation mAP", "validation hit@3"} <= names
    assert not any("val_" in name for name in names)
    loss_axes = {trace["yaxis"] for trace in figure["data"] if trace["name"].endswith("loss")}
    score_axes = {trace["yaxis"] for trace in figure["data"] if not trace["name"].endswith("loss")}
    assert len(loss_axes) == len(score_axes) == 1 and loss_axes != score_axes  # losses apart from scores
    assert len({trace["line"]["color"] for trace in figure["data"]}) == len(names)


def test_the_start_form_explains_each_mode(settings: Settings) -> None:
    app = open_app("pages/training.py")
    assert any("**fast** (the default)" in caption.value for caption in app.caption)
    app.segmented_control(key="train_mode").set_value("scratch").run()
    assert any("**scratch**: the classic tutorial's small CNN" in caption.value for caption in app.caption)


def test_the_start_form_offers_every_registered_backbone(settings: Settings) -> None:
    app = open_app("pages/training.py")
    choice = next(radio for radio in app.radio if radio.label == "Pretrained backbone")
    assert list(choice.options) == list(BACKBONES) and choice.value == DEFAULT_BACKBONE
    for entry in BACKBONES.values():
        assert f"{entry.name}: {entry.block_count} blocks" in choice.help


# --- The first model, and the runs that finish after it ----------------------------------------------------------

TINY_OPTIONS = ["--epochs", "2", "--image-size", "64x48", "--min-movies-per-genre", "5", "--seed", "11"]
TINY_OPTIONS += ["--temporal-test-from", "2004", "--quiet"]


def train_command(settings: Settings, run_id: str, *options: str) -> int:
    """A tiny run as the app launches it (`python -m core.train --run-dir …`), in this process: TensorFlow is
    loaded and the posters' features are cached already, so it takes seconds."""
    from core import train as command

    return command.main(["--mode", "fast", "--run-dir", str(settings.runs_dir / run_id), *TINY_OPTIONS, *options])


def banner_button(app: AppTest, run_id: str):
    return app.button(key=f"next-model-{run_id}")


def test_the_first_run_that_finishes_becomes_the_active_model_and_the_page_says_so(settings: Settings) -> None:
    run_id = "20240101-000000-fast-0001"
    assert train_command(settings, run_id) == 0
    assert model_choice.active_model_id(settings) == run_id  # with no tab open: Predict uses it from now on
    app = open_app("pages/training.py")
    assert not app.exception
    assert [s.body for s in app.success] == [
        f"Your first model is ready and is now the active model: run **{run_id}** (fast mode), used by Predict."
    ]
    assert not [info for info in app.info if info.body.startswith("No model yet")]
    assert not [b for b in app.button if b.label == "Start the fast default run"]
    table = next(frame for frame in html_tables(app) if "active" in frame.columns)
    assert table.set_index("run").loc[run_id, "active"] == run_reports.ACTIVE_MARK


def test_a_later_run_does_not_replace_the_active_model_but_ends_with_a_banner_that_makes_it_active(
    settings: Settings, tiny_model: TinyModel
) -> None:
    first = copy_run(tiny_model.run_dir, settings)
    model_choice.set_active_model(settings, first)
    later = "20990101-000000-fast-0002"
    assert train_command(settings, later) == 0
    assert model_choice.active_model_id(settings) == first
    app = open_app("pages/training.py")
    assert not app.exception
    assert [s.body for s in app.success] == [f"Active model: run **{first}** (fast mode), used by Predict."]
    assert f"Run **{later}** finished (fast mode) with a model; Predict uses run {first}." in texts(app)
    banner_button(app, later).click().run()
    assert not app.exception
    assert model_choice.active_model_id(settings) == later
    assert [s.body for s in app.success] == [f"Active model: run **{later}** (fast mode), used by Predict."]
    assert "finished (fast mode) with a model" not in texts(app)


def stop_after_first_epoch(run_dir: Path) -> threading.Thread:
    """Leave a STOP file in the run folder once an epoch has ended, as the Stop button does."""

    def watch() -> None:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while not rf.read_history(run_dir) and time.monotonic() < deadline:
            time.sleep(0.05)
        (run_dir / rf.STOP_FILE).touch()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher


def test_a_stopped_failed_or_imported_run_does_not_become_the_active_model_and_the_next_finished_one_does(
    settings: Settings, tiny_model: TinyModel
) -> None:
    failed = "20240101-000000-fast-0003"
    assert train_command(settings, failed, "--learning-rate", "fast") == 2
    stopped = "20240101-000000-fast-0004"
    watcher = stop_after_first_epoch(settings.runs_dir / stopped)
    assert train_command(settings, stopped, "--epochs", "1000", "--patience", "0", "--no-temporal-twin") == 0
    watcher.join()
    assert runs.read_run(settings, stopped).state == "stopped" and runs.read_run(settings, stopped).has_model
    imported = finished_runs.import_run(settings, finished_runs.export_run(tiny_model.settings, tiny_model.run_id))
    assert {run.run_id: run.state for run in runs.list_runs(settings)} == {
        failed: "failed", stopped: "stopped", imported: "finished"
    }  # fmt: skip
    assert model_choice.active_model_id(settings) is None
    app = open_app("pages/training.py")
    assert not app.exception and not app.success
    assert banner_button(app, imported)  # offered, not chosen behind the user's back
    assert f"Run **{imported}** finished (fast mode) with a model; no model is active yet." in texts(app)

    finished = "20240101-000000-fast-0005"
    assert train_command(settings, finished) == 0
    assert model_choice.active_model_id(settings) == finished
    assert model_choice.active_model(settings).adopted


def test_a_just_launched_run_shows_no_none_while_its_process_starts(settings: Settings) -> None:
    run_dir = settings.runs_dir / "20240101-000000-fast-0006"
    run_dir.mkdir()
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])  # stands for the run's
    try:
        started = background.process_start_time(process.pid)
        launch = {"pid": process.pid, "pid_start_time": started, "launched_at": time.time(), "command": []}
        (run_dir / runs.LAUNCH_FILE).write_text(json.dumps(launch))
        app = open_app("pages/training.py", run=run_dir.name)
        assert not app.exception
        table = runs_table_shown(app)
        assert not {"None", "nan", ""} & set(
            table.drop(columns=["compare", "active"], errors="ignore").to_numpy().ravel()
        )  # a value not yet written is a dash
        assert table.set_index("run").loc[run_dir.name, "started"] == "starting…"
        assert f"Running: {run_dir.name}" in [header.value for header in app.subheader]
        assert "queued · starting…" in [caption.value for caption in app.caption]

        # Its process has written its status (TensorFlow is still loading): running, its settings not yet known.
        status = {
            "state": "running",
            "pid": process.pid,
            "pid_start_time": started,
            "started_at": "2024-01-01T10:00:00+0000",
        }
        (run_dir / rf.STATUS_FILE).write_text(json.dumps(status))
        app.run()
        assert not app.exception
        table = runs_table_shown(app)
        assert runs_shown(app) == {run_dir.name: "running"}
        assert not {"None", "nan", ""} & set(
            table.drop(columns=["compare", "active"], errors="ignore").to_numpy().ravel()
        )
        assert "running · started 2024-01-01T10:00:00+0000" in [
            shown_text(c.value) for c in app.caption if "running" in c.value
        ]
    finally:
        process.kill()
        process.wait()


def test_the_page_runs_again_when_the_run_it_drew_changes_state_or_writes_its_settings(tmp_path: Path) -> None:
    queued = RunView("r", tmp_path, "queued")
    assert not ui_runs.page_is_behind(queued, RunView("r", tmp_path, "queued"))
    assert ui_runs.page_is_behind(queued, RunView("r", tmp_path, "running"))
    drawn_running = RunView("r", tmp_path, "running")
    assert not ui_runs.page_is_behind(drawn_running, RunView("r", tmp_path, "running"))
    (tmp_path / rf.CONFIG_FILE).write_text(json.dumps({"mode": "fast"}))  # the mode is known from now on
    assert ui_runs.page_is_behind(drawn_running, RunView("r", tmp_path, "running"))
    drawn_with_mode = RunView("r", tmp_path, "running", config={"mode": "fast"})
    assert not ui_runs.page_is_behind(drawn_with_mode, RunView("r", tmp_path, "running"))
    assert ui_runs.page_is_behind(drawn_with_mode, RunView("r", tmp_path, "finished"))


# --- run_reports and estimate -----------------------------------------------------------------------------------


def view(
    run_id: str,
    state: str = "finished",
    config: dict | None = None,
    history: list | None = None,
    metrics: dict | None = None,
    status: dict | None = None,
) -> RunView:
    return RunView(
        run_id=run_id,
        path=Path("/nowhere") / run_id,
        state=state,
        status=status
        or {"state": state, "started_at": "2024-01-01T10:00:00+0000", "finished_at": "2024-01-01T10:02:00+0000"},
        config=config or {"mode": "fast", "image_size": "64x48", "epochs": 3},
        metrics=metrics or {},
        history=history or [],
    )


def per_genre(**ap_f1: tuple[float, float]) -> list[dict]:
    return [{"genre": genre, "ap": ap, "f1": f1} for genre, (ap, f1) in ap_f1.items()]


def test_runs_table_rows_states_and_figures() -> None:
    finished = view(
        "b",
        metrics={
            "epochs_run": 3,
            "validation": {"summary": {"map": 0.6, "hit_at_3": 0.8, "micro_f1": 0.5}},
            "test": {"summary": {"map": 0.55, "micro_f1": 0.45}},
        },
    )
    running = view("a", state="running", status={"state": "running"})
    table = run_reports.runs_table([finished, running], active_model="b")
    assert table["run"].tolist() == ["b", "a"]
    assert table["state"].tolist() == ["finished", "running"]
    assert table["active"].tolist() == [run_reports.ACTIVE_MARK, ""]
    row = table.set_index("run").loc["b"]
    assert (row["val mAP"], row["test mAP"], row["epochs"], row["duration (s)"]) == (0.6, 0.55, 3, 120.0)
    assert pd.isna(row["test hit@3"]) and pd.isna(table.set_index("run").loc["a", "val mAP"])
    assert list(table.columns[:8]) == [
        "run",
        "active",
        "state",
        "mode",
        "started",
        "duration (s)",
        "epochs",
        "image size",
    ]


def test_the_yardsticks_table_puts_both_test_parts_side_by_side_with_their_baselines() -> None:
    def part(map_: float, hit: float, chance: float, top3_hit: float) -> dict:
        return {
            "summary": {"map": map_, "hit_at_3": hit, "p_at_3": 0.4, "micro_f1": 0.3},
            "baselines": {"chance_map": chance, "top3_frequent": {"hit_at_3": top3_hit, "p_at_3": 0.3}},
        }

    run = view(
        "b",
        metrics={
            "test": part(0.34, 0.91, 0.11, 0.7),
            "temporal_test": part(0.27, 0.84, 0.12, 0.68),
            "temporal": {"test_from": 2004},
        },
    )
    table = run_reports.yardsticks_table(run).set_index("figure")
    new = "temporal test (movies from 2004 on)"
    assert table.loc["mAP", "test (random split)"] == 0.34 and table.loc["mAP", new] == 0.27
    assert table.loc["mAP", f"{new}: baseline"] == 0.12 and table.loc["hit@3", f"{new}: baseline"] == 0.68
    assert run_reports.yardsticks_table(view("c", metrics={"test": part(0.3, 0.9, 0.1, 0.7)})).empty


def test_settings_table_flags_exactly_the_settings_that_differ() -> None:
    a = view("a", config={"mode": "fast", "epochs": 3, "seed": 1, "image_size": "64x48"})
    b = view("b", config={"mode": "fast", "epochs": 5, "seed": 1, "image_size": "64x48", "dropout": 0.2})
    table = run_reports.settings_table([a, b])
    assert table["differs"].to_dict() == {
        "dropout": True, "epochs": True, "image_size": False, "mode": False, "seed": False,
    }  # fmt: skip
    assert table.loc["dropout"].tolist()[:2] == ["—", "0.2"]
    assert not run_reports.settings_table([a])["differs"].any()


def test_per_genre_comparison_gives_each_later_runs_difference_from_the_first() -> None:
    a = view("a", metrics={"test": {"per_genre": per_genre(Action=(0.5, 0.4), Drama=(0.7, 0.6))}})
    b = view("b", metrics={"test": {"per_genre": per_genre(Action=(0.6, 0.3), Drama=(0.7, 0.9), Horror=(0.2, 0.1))}})
    c = view("c", metrics={"test": {"per_genre": per_genre(Action=(0.1, 0.1), Drama=(0.2, 0.2))}})
    table = run_reports.per_genre_comparison([a, b, c]).set_index("genre")
    assert table.loc["Action", "ΔAP b"] == pytest.approx(0.1)
    assert table.loc["Action", "ΔF1 b"] == pytest.approx(-0.1)
    assert table.loc["Drama", "ΔF1 b"] == pytest.approx(0.3)
    assert table.loc["Drama", "ΔAP c"] == pytest.approx(-0.5)
    assert pd.isna(table.loc["Horror", "ΔAP b"])  # the first run has no Horror to compare with
    assert run_reports.per_genre_comparison([view("x"), view("y")]).empty


def test_eta_is_the_median_epoch_time_times_the_epochs_left() -> None:
    history = [{"epoch": 1, "seconds": 10.0}, {"epoch": 2, "seconds": 30.0}, {"epoch": 3, "seconds": 12.0}]
    running = view("r", state="running", status={"state": "running", "epoch": 4, "epochs": 10}, history=history)
    assert run_reports.eta_seconds(running) == 12.0 * 7  # epochs 4 to 10 are still to run
    assert run_reports.eta_seconds(view("r", state="running", status={"epoch": 1, "epochs": 10})) is None
    assert run_reports.eta_seconds(view("r", state="running", status={}, history=history)) is None


def timed(run_id: str, mode: str, size: str, state: str = "finished", per_epoch: float = 2.0) -> RunView:
    return view(
        run_id,
        state=state,
        config={"mode": mode, "image_size": size},
        history=[{"epoch": n, "seconds": per_epoch} for n in (1, 2, 3)],
        metrics={"timing": {"total_s": 100.0, "training_s": 6.0}},
    )


def test_estimate_from_runs_uses_the_latest_finished_run_of_the_same_mode_and_size() -> None:
    newest_first = [
        timed("failed", "fast", "64x48", state="failed", per_epoch=50.0),
        timed("other-size", "fast", "320x224", per_epoch=40.0),
        timed("other-mode", "scratch", "64x48", per_epoch=30.0),
        timed("latest", "fast", "64x48", per_epoch=2.0),
        timed("older", "fast", "64x48", per_epoch=9.0),
    ]
    found = estimate.estimate_from_runs(newest_first, "fast", "64x48", epochs=10)
    assert found is not None and "latest" in found.basis
    assert found.seconds == pytest.approx(30.0 + 2.0 * 10)  # fast: cached embeddings, set-up capped at 30 s
    scratch = estimate.estimate_from_runs(newest_first, "scratch", "64x48", epochs=10)
    assert scratch is not None and scratch.seconds == pytest.approx(94.0 + 30.0 * 10)
    assert estimate.estimate_from_runs(newest_first, "fine-tune", "64x48", epochs=10) is None


def test_a_fast_run_of_several_refitted_heads_and_a_twin_is_estimated_for_all_its_epochs() -> None:
    run = timed("ensemble", "fast", "64x48", per_epoch=2.0)
    run.config.update({"head_ensemble": 3, "refit": True, "temporal_twin": True})
    found = estimate.estimate_from_runs([run], "fast", "64x48", epochs=10)
    # 3 heads, each refitted, and the temporal twin doing the same: 12 passes over the epochs.
    assert found is not None and found.seconds == pytest.approx(30.0 + 2.0 * 10 * 12)
    one = estimate.estimate_from_throughput(50.0, "fast", 1000, 10, uncached=1000)
    both_views = estimate.estimate_from_throughput(50.0, "fast", 1000, 10, uncached=1000, views=2, passes=12)
    assert both_views.seconds - one.seconds == pytest.approx(1000 / 50.0 + 10 * 11)


def test_estimate_from_throughput_scales_with_posters_and_epochs() -> None:
    def seconds(mode: str, posters: int, epochs: int, uncached: int = 0, rate: float = 50.0) -> float:
        return estimate.estimate_from_throughput(rate, mode, posters, epochs, uncached).seconds

    for mode in ("fine-tune", "scratch"):
        assert seconds(mode, 2000, 4) > seconds(mode, 1000, 4) > seconds(mode, 1000, 1)
        assert seconds(mode, 2000, 4) - seconds(mode, 1000, 4) == pytest.approx(
            2 * (seconds(mode, 1000, 4) - seconds(mode, 500, 4))
        )
        assert seconds(mode, 1000, 4, rate=100.0) < seconds(mode, 1000, 4, rate=50.0)
    assert seconds("fast", 1000, 10, uncached=1000) - seconds("fast", 1000, 10) == pytest.approx(1000 / 50.0)
    assert seconds("fast", 1000, 20) > seconds("fast", 1000, 10)
    assert "50 posters/s" in estimate.estimate_from_throughput(50.0, "fast", 10, 1, 0).basis
