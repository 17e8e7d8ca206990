"""Faults from outside the app, with the real commands on the generated dataset: a training process killed
with SIGKILL, the Streamlit server restarted while a run trains, a catalog file deleted or damaged while the
app was stopped, and a dataset folder with more faults than the generated one has."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from PIL import Image

from core import background
from core.app import model_choice, runs
from core.config import Settings
from core.data.catalog_build import open_catalog
from core.ingest import main as ingest_command
from core.training import run_folder as rf
from tests.apptest_helpers import open_page, use_settings
from tests.conftest import FixtureData, make_settings
from tests.raw_fixture import build_raw_dataset

# Tiny runs on the generated dataset: 64x48 pixels, about 0.1 s per epoch of the fast mode's head.
TINY = ["--image-size", "64x48", "--min-movies-per-genre", "5", "--seed", "5"]
SHORT_RUN = [*TINY, "--epochs", "2"]
ENDLESS_RUN = [*TINY, "--epochs", "1000", "--patience", "0"]  # minutes: only ever ends by being stopped or killed
RUN_TIMEOUT = 240  # seconds for a tiny run, TensorFlow's start included, on a busy 2-core machine


def wait_for(condition: Callable[[], object], what: str, timeout: float = RUN_TIMEOUT) -> object:
    """Poll `condition` until it returns something true; fail after `timeout` seconds saying `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def step_until(pid: int, condition: Callable[[], object], what: str, timeout: float = RUN_TIMEOUT) -> object:
    """Let the paused process group `pid` run in slices of 0.1 s, checking `condition` while it is paused.

    A tiny run trains dozens of epochs a second, so a run left free could finish between two looks; in
    slices it cannot, and it is left paused (SIGSTOP) once `condition` holds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        os.killpg(pid, signal.SIGCONT)
        time.sleep(0.1)
        os.killpg(pid, signal.SIGSTOP)
        value = condition()
        if value:
            return value
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def training_status(settings: Settings, run_id: str, min_epoch: int) -> dict | None:
    """The run's status.json once it says running, in training, at epoch `min_epoch` or later."""
    status = rf.read_status(settings.runs_dir / run_id)
    if status.get("state") not in (None, "queued", "running"):
        raise AssertionError(f"the run ended early: {status}\n{runs.log_tail(settings, run_id)}")
    if status.get("state") == "running" and (status.get("epoch") or 0) >= min_epoch:
        return status
    return None


def ended(settings: Settings, run_id: str, state: str) -> runs.RunView | None:
    """The run once it has ended in `state`; an AssertionError, with its log, if it ended otherwise."""
    view = runs.read_run(settings, run_id)
    if view.state in rf.FINAL_STATES and view.state != state:
        raise AssertionError(
            f"the run ended {view.state}: {view.status.get('error')}\n{runs.log_tail(settings, run_id)}"
        )
    return view if view.state == state else None


def finished(settings: Settings, run_id: str) -> runs.RunView | None:
    return ended(settings, run_id, "finished")


def end_process_group(pid: int) -> None:
    """Make sure a run this test started is gone (it may be stopped with SIGSTOP, or already dead)."""
    for signal_number in (signal.SIGCONT, signal.SIGKILL):
        try:
            os.killpg(pid, signal_number)
        except ProcessLookupError:
            return


def new_server() -> None:
    """What a restarted Streamlit server starts with: empty caches and no children of its own."""
    st.cache_data.clear()
    st.cache_resource.clear()
    background._children.clear()


@pytest.fixture(scope="module")
def settings(fixture_data: FixtureData, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The generated dataset with this module's own catalog, caches and runs."""
    return make_settings(fixture_data.settings.data_dir, tmp_path_factory.mktemp("faults"))


@pytest.fixture(scope="module")
def earlier_run(settings: Settings) -> str:
    """A tiny run trained to the end by `python -m core.train` as the app launches it, made the active model."""
    run_id = runs.launch_run(settings, "fast", SHORT_RUN)
    wait_for(lambda: finished(settings, run_id), f"the run {run_id} to finish")
    model_choice.set_active_model(settings, run_id)
    return run_id


@pytest.fixture
def launched() -> Iterator[list[subprocess.Popen]]:
    """The runs a test launches; each one's process group is ended, and the process reaped, at the end."""
    children: list[subprocess.Popen] = []
    yield children
    for child in children:
        end_process_group(child.pid)
        child.wait(timeout=30)


def launch(settings: Settings, options: list[str], children: list[subprocess.Popen]) -> tuple[str, subprocess.Popen]:
    """Launch a run as the app does; the test keeps its process, whatever a simulated restart forgets."""
    run_id = runs.launch_run(settings, "fast", options)
    pid = json.loads((settings.runs_dir / run_id / runs.LAUNCH_FILE).read_text())["pid"]
    children.append(background._children[pid])
    return run_id, background._children[pid]


def model_scores(run_dir: Path, poster: Path) -> np.ndarray:
    from core.serving.predict import load_run_model, predict_images
    from core.serving.uploads import validate_upload

    loaded = load_run_model(run_dir)
    return predict_images(loaded, [validate_upload(poster.read_bytes(), poster.name).pixels])[0]


# --- a training process killed with SIGKILL --------------------------------------------------------------


@pytest.mark.slow
def test_a_run_killed_with_sigkill_is_interrupted_and_earlier_models_stay_usable(
    settings: Settings, earlier_run: str, launched: list[subprocess.Popen]
) -> None:
    from core.serving.predict import load_run_model  # TensorFlow only for the tests that load a model

    earlier_dir = settings.runs_dir / earlier_run
    poster = next(settings.data_dir.glob("Movie_Poster_Dataset/2002/tt01000*.jpg"))
    scores_before = model_scores(earlier_dir, poster)
    active_file = (settings.runs_dir / model_choice.ACTIVE_MODEL_FILE).read_bytes()
    model_file = (earlier_dir / rf.MODEL_FILE).read_bytes()

    run_id, child = launch(settings, ENDLESS_RUN, launched)
    status = wait_for(lambda: training_status(settings, run_id, 2), "the run to train its second epoch")
    assert status["pid"] == child.pid
    assert os.getsid(child.pid) == child.pid != os.getsid(0), "the run must lead its own session"
    os.killpg(child.pid, signal.SIGKILL)  # no handler runs: status.json still says running
    child.wait(timeout=30)
    assert rf.read_status(settings.runs_dir / run_id)["state"] == "running"

    killed = runs.read_run(settings, run_id)
    assert killed.state == "interrupted" and not killed.is_active
    assert "ended without finishing" in killed.explanation
    assert rf.read_status(killed.path)["state"] == "interrupted"  # corrected on disk for every reader
    assert runs.active_run(settings) is None  # a new run may start: nothing is stuck "running"
    assert killed.history and not killed.has_model  # it got through an epoch, but never saved a model
    with pytest.raises(runs.RunError, match="no usable model"):
        model_choice.set_active_model(settings, run_id)

    # Every earlier run still loads; the active one is untouched and predicts the same as before.
    earlier = [run for run in runs.list_runs(settings) if run.run_id != run_id]
    assert earlier and all(run.state == "finished" for run in earlier)
    for run in earlier:
        assert load_run_model(run.path).genres
    assert model_choice.active_model_id(settings) == earlier_run
    assert (settings.runs_dir / model_choice.ACTIVE_MODEL_FILE).read_bytes() == active_file
    assert (earlier_dir / rf.MODEL_FILE).read_bytes() == model_file
    np.testing.assert_allclose(model_scores(earlier_dir, poster), scores_before, atol=1e-6)


@pytest.mark.slow
def test_force_stop_ends_a_training_run_within_seconds(
    settings: Settings, earlier_run: str, launched: list[subprocess.Popen]
) -> None:
    """The Training page's "Force stop": two SIGTERMs, the second of which the trainer obeys at once."""
    run_id, child = launch(settings, ENDLESS_RUN, launched)
    wait_for(lambda: training_status(settings, run_id, 2), "the run to train its second epoch")
    runs.kill_run(settings, run_id)
    child.wait(timeout=60)  # ended, not left running its endless epochs
    view = runs.read_run(settings, run_id)
    assert view.state in ("stopped", "interrupted") and not view.is_active, view.state
    assert runs.active_run(settings) is None  # the next run may start
    if view.state == "interrupted":
        assert "interrupted by the user" in view.status["error"]
        assert "Interrupted (a second" in runs.log_tail(settings, run_id)
    runs.kill_run(settings, run_id)  # a run that has ended: nothing to do, no error


# --- the server restarted while a run trains ------------------------------------------------------------


def _progress_texts(app) -> list[str]:
    return [element.proto.text for element in app.get("progress")]


def _running_epoch(app, run_id: str) -> int:
    """The epoch the Training page's progress panel shows for the running `run_id`."""
    assert not app.exception, app.exception[0].value
    assert f"Running: {run_id}" in [element.value for element in app.subheader]
    # The bar's own text; the estimate beside it counts the head's epochs in its own words.
    texts = [text for text in _progress_texts(app) if text.startswith("training: epoch ")]
    assert len(texts) == 1, _progress_texts(app)
    epoch, epochs = (int(number) for number in texts[0].removeprefix("training: epoch ").split(" of "))
    assert epochs == 1000 and 1 <= epoch <= epochs
    return epoch


@pytest.mark.slow
def test_a_run_goes_on_through_a_server_restart_and_the_new_server_shows_it(
    settings: Settings, earlier_run: str, launched: list[subprocess.Popen], monkeypatch: pytest.MonkeyPatch
) -> None:
    use_settings(monkeypatch, settings)
    new_server()
    run_id, child = launch(settings, ENDLESS_RUN, launched)
    assert os.getsid(child.pid) == child.pid != os.getsid(0), "the run must not be in the server's session"

    # The run is paused (SIGSTOP) whenever a page draws, so that it cannot end between two looks at it; it
    # is still a live process, which is all the page checks.
    step_until(child.pid, lambda: training_status(settings, run_id, 1), "the run to start training")
    first_epoch = _running_epoch(open_page("pages/training.py"), run_id)

    new_server()  # the old server and everything it held in memory are gone
    status = step_until(child.pid, lambda: training_status(settings, run_id, first_epoch + 2), "the run to train on")
    second_epoch = _running_epoch(open_page("pages/training.py"), run_id)
    assert second_epoch >= status["epoch"] > first_epoch

    # The new server's Stop button asks the run to stop; it ends `stopped`, with its best weights saved.
    runs.request_stop(settings, run_id)
    os.killpg(child.pid, signal.SIGCONT)
    view = wait_for(lambda: ended(settings, run_id, "stopped"), "the run to stop")
    assert view.has_model and len(view.history) >= second_epoch
    new_server()
    app = open_page("pages/training.py", run=run_id)
    assert not app.exception, app.exception[0].value
    assert not [text for text in _progress_texts(app) if "epoch" in text]  # no progress panel any more
    assert f"Run {run_id}" in [element.value for element in app.header]
    assert any("fast mode · stopped" in element.value for element in app.caption)


# --- the catalog deleted or damaged while the app was stopped -----------------------------------------


def _damage_a_page(path: Path) -> None:
    """Overwrite one 4 KiB page in the middle of the file, as a disk error or a torn copy would."""
    data = bytearray(path.read_bytes())
    middle = (len(data) // 4096 // 2) * 4096
    data[middle : middle + 4096] = b"\xff" * 4096
    path.write_bytes(bytes(data))


BREAKAGES: dict[str, Callable[[Path], None]] = {
    "deleted": lambda path: path.unlink(),
    "emptied": lambda path: path.write_bytes(b""),
    "overwritten": lambda path: path.write_bytes(os.urandom(path.stat().st_size)),
    "cut short": lambda path: path.write_bytes(path.read_bytes()[:4096]),
    "a damaged page": _damage_a_page,
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_a_broken_catalog_is_rebuilt_at_the_next_start_with_the_right_figures(
    fixture_data: FixtureData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, breakage: str
) -> None:
    settings = make_settings(fixture_data.settings.data_dir, tmp_path)
    open_catalog(settings)
    BREAKAGES[breakage](settings.catalog_path)
    use_settings(monkeypatch, settings)
    new_server()

    app = open_page("pages/dataset.py")
    assert not app.exception, app.exception[0].value
    rebuilt = [info.body for info in app.info if "from the raw data" in info.body]
    if breakage == "deleted":
        assert len(rebuilt) == 1 and "no catalog file" in rebuilt[0], rebuilt
    else:
        assert len(rebuilt) == 1 and ("unreadable" in rebuilt[0] or "damaged" in rebuilt[0]), rebuilt
    expected = fixture_data.expected
    shown = {metric.label: int(metric.value.replace(",", "")) for metric in app.metric}
    assert (shown["Records"], shown["Unique movies"], shown["Posters"], shown["Usable movies"]) == (
        expected.records,
        expected.unique_movies,
        expected.posters,
        expected.usable_movies,
    )
    assert shown["Findings"] == sum(expected.findings.values())
    # The rebuilt file is whole, and the next start uses it as it is.
    assert open_catalog(settings).rebuilt_because is None
    app = open_page("pages/genre.py", genre="Drama")
    assert not app.exception and not app.info


# --- a dataset folder with more faults ------------------------------------------------------------------

GROUNDTRUTH = "Movie_Poster_Metadata/groundtruth"


def _record(imdb_id: str, title: str, genre: str) -> str:
    return f'{{\n  "Title" : "{title}",\n  "imdbID" : "{imdb_id}",\n  "Genre" : "{genre}",\n  "Type" : "movie"\n}}\n'


def _add_faults(root: Path) -> None:
    """Posters and metadata files beyond the generated faults, in a year of their own (2007 to 2009)."""
    posters = root / "Movie_Poster_Dataset" / "2007"
    posters.mkdir()
    image = Image.new("RGB", (60, 90), (200, 40, 30))
    image.save(posters / "tt0600001.jpg", "JPEG")
    (posters / "tt0600001.jpg").write_bytes((posters / "tt0600001.jpg").read_bytes()[:300])  # truncated
    image.save(posters / "tt0600002.jpg", "PNG")  # a PNG named .jpg
    image.save(posters / "tt0600003.jpg", "JPEG")
    text = (
        _record("tt0600001", "Cut in Half", "Action")  # lines 1-6
        + _record("tt0600002", "Portable Network", "Action")  # lines 7-12
        + '{\n  "Title" : "Missing Comma"\n  "imdbID" : "tt0600004"\n}\n'  # lines 13-16: unparseable
        + _record("tt0600003", "Whole and Sound", "Action")  # lines 17-22
    )
    metadata = root / GROUNDTRUTH
    (metadata / "2007.txt").write_text(text, encoding="utf-8")
    (metadata / "2008.txt").write_bytes(b"")  # an EMPTY metadata file
    # Shift-JIS: neither UTF-8 nor UTF-16 nor Windows-1252 (its lead byte 0x81 is undefined there).
    (metadata / "2009.txt").write_bytes(_record("tt0600005", "「映画」", "Drama").encode("shift_jis"))


def test_a_dataset_with_more_faults_is_read_and_every_fault_is_reported_where_it_stands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "movie-posters"
    expected = build_raw_dataset(root)
    _add_faults(root)
    report_path, findings_path = tmp_path / "report.json", tmp_path / "findings.csv"
    arguments = ["--data-dir", str(root), "--cache-dir", str(tmp_path / "cache")]
    code = ingest_command([*arguments, "--report-json", str(report_path), "--findings-csv", str(findings_path)])
    assert code == 0, capsys.readouterr().err
    with findings_path.open(newline="", encoding="utf-8") as handle:
        findings = list(csv.DictReader(handle))

    def where(kind: str, file: str) -> list[dict[str, str]]:
        return [row for row in findings if row["kind"] == kind and row["file"] == file]

    [truncated] = where("unreadable poster", "Movie_Poster_Dataset/2007/tt0600001.jpg")
    assert truncated["imdb_id"] == "tt0600001"
    [png] = where("poster not a JPEG", "Movie_Poster_Dataset/2007/tt0600002.jpg")
    assert "PNG" in png["reason"]
    [empty] = where("unreadable metadata file", f"{GROUNDTRUTH}/2008.txt")
    assert "empty" in empty["reason"]
    [unknown] = where("unreadable metadata file", f"{GROUNDTRUTH}/2009.txt")
    assert "cannot be decoded" in unknown["reason"] and "Windows-1252" in unknown["reason"]
    [broken] = where("unparseable record", f"{GROUNDTRUTH}/2007.txt")
    assert float(broken["line"]) == 13 and "Missing Comma" in broken["reason"]

    report = json.loads(report_path.read_text())
    added = {"unreadable poster": 1, "poster not a JPEG": 1, "unreadable metadata file": 2, "unparseable record": 1}
    assert report["findings"] == {kind: count + added.get(kind, 0) for kind, count in expected.findings.items()}
    assert report["usable_movies"] == expected.usable_movies + 2  # the PNG and the sound JPEG
    assert report["records"] == expected.records + 3 and report["posters"] == expected.posters + 3
    # Every metadata file has its row, with the reason for the ones that could not be read.
    catalog = open_catalog(make_settings(root, tmp_path))
    files = catalog.metadata_files().set_index("file")
    assert sorted(files.index) == sorted(f"{GROUNDTRUTH}/{path.name}" for path in (root / GROUNDTRUTH).iterdir())
    assert files.loc[f"{GROUNDTRUTH}/2007.txt", "records"] == 3
    for name in ("2008.txt", "2009.txt"):
        assert files.loc[f"{GROUNDTRUTH}/{name}", "records"] == 0 and files.loc[f"{GROUNDTRUTH}/{name}", "error"]
    assert catalog.movie("tt0600003")["usable"] and not catalog.movie("tt0600001")["usable"]
