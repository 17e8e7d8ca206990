"""Runs as the app sees them: real state from disk and process, stop, delete, export/import, active model."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from core import background
from core.app import finished_runs, model_choice, runs
from core.config import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(tmp_path / "data", tmp_path / "cache", tmp_path / "runs")


def _make_run(settings: Settings, run_id: str, status: dict, model: bool = False) -> Path:
    path = settings.runs_dir / run_id
    path.mkdir(parents=True)
    (path / "status.json").write_text(json.dumps(status))
    (path / "config.json").write_text(json.dumps({"mode": "fast", "epochs": 3}))
    if model:
        (path / "model.keras").write_bytes(b"model")
    return path


def test_a_live_process_is_running_and_a_dead_one_is_interrupted(settings: Settings) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        start = background.process_start_time(sleeper.pid)
        _make_run(settings, "alive", {"state": "running", "pid": sleeper.pid, "pid_start_time": start})
        assert runs.read_run(settings, "alive").state == "running"
        # The same pid with another start time is another program (pid reuse): not our run.
        _make_run(settings, "reused", {"state": "running", "pid": sleeper.pid, "pid_start_time": start + 1})
        assert runs.read_run(settings, "reused").state == "interrupted"
    finally:
        sleeper.kill()
        sleeper.wait()
    view = runs.read_run(settings, "alive")
    assert view.state == "interrupted" and "ended without finishing" in view.explanation
    # The correction is written once, so every tab and every later server sees the same state.
    assert json.loads((view.path / "status.json").read_text())["state"] == "interrupted"


def test_a_zombie_is_not_alive(settings: Settings) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.time() + 10
    while background.process_start_time(child.pid) is not None and time.time() < deadline:
        time.sleep(0.05)  # not reaped: it lingers as a zombie, which os.kill(pid, 0) would call alive
    os.kill(child.pid, 0)  # the zombie still answers to signal 0 …
    assert not background.process_alive(child.pid, None)  # … but is not running
    child.wait()


def test_a_run_that_died_before_its_first_status_is_failed_with_its_log(settings: Settings) -> None:
    path = settings.runs_dir / "early"
    path.mkdir(parents=True)
    (path / "launch.json").write_text(json.dumps({"pid": 999_999_999, "launched_at": time.time() - 60}))
    (path / "train.log").write_text("Traceback …\nModuleNotFoundError: No module named 'tensorflow'\n")
    view = runs.read_run(settings, "early")
    assert view.state == "failed" and "No module named 'tensorflow'" in view.explanation


def test_final_states_are_kept_and_runs_are_listed_newest_first(settings: Settings) -> None:
    _make_run(settings, "old", {"state": "finished", "started_at": "2026-01-01T00:00:00"})
    _make_run(settings, "new", {"state": "stopped", "started_at": "2026-02-01T00:00:00"})
    _make_run(settings, "bad", {"state": "failed", "error": "out of memory", "started_at": "2026-01-15T00:00:00"})
    (settings.runs_dir / ".hidden").mkdir()
    listed = runs.list_runs(settings)
    assert [run.run_id for run in listed] == ["new", "bad", "old"]
    assert [run.state for run in listed] == ["stopped", "failed", "finished"]
    assert runs.active_run(settings) is None


def test_run_ids_from_users_never_become_paths(settings: Settings) -> None:
    for bad in ("../etc", "a/b", "", "x" * 200, "run id"):
        with pytest.raises(runs.RunError, match="not a run id"):
            runs.read_run(settings, bad)
    with pytest.raises(runs.RunError, match="no run"):
        runs.read_run(settings, "missing")


def test_stop_request_and_delete_rules(settings: Settings) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        status = {"state": "running", "pid": sleeper.pid, "pid_start_time": background.process_start_time(sleeper.pid)}
        path = _make_run(settings, "busy", status)
        runs.request_stop(settings, "busy")
        assert (path / "STOP").exists()
        with pytest.raises(runs.RunError, match="still running"):
            finished_runs.delete_run(settings, "busy")
        with pytest.raises(runs.RunAlreadyActive):
            runs.launch_run(settings)  # one run at a time
    finally:
        sleeper.kill()
        sleeper.wait()
    _make_run(settings, "done", {"state": "finished"}, model=True)
    with pytest.raises(runs.RunError, match="not running"):
        runs.request_stop(settings, "done")
    model_choice.set_active_model(settings, "done")
    finished_runs.delete_run(settings, "done")
    assert not (settings.runs_dir / "done").exists() and model_choice.active_model_id(settings) is None


def test_active_model_persists_and_needs_a_model(settings: Settings) -> None:
    _make_run(settings, "good", {"state": "finished"}, model=True)
    _make_run(settings, "broken", {"state": "failed"})
    model_choice.set_active_model(settings, "good")
    assert model_choice.active_model_id(settings) == "good"
    with pytest.raises(runs.RunError, match="no usable model"):
        model_choice.set_active_model(settings, "broken")
    assert model_choice.active_model_id(settings) == "good"


def test_export_then_import_round_trip_and_bad_zips(settings: Settings, tmp_path: Path) -> None:
    _make_run(settings, "trained", {"state": "finished"}, model=True)
    data = finished_runs.export_run(settings, "trained")
    other = Settings(tmp_path / "d2", tmp_path / "c2", tmp_path / "r2")
    assert finished_runs.import_run(other, data) == "trained"
    assert (other.runs_dir / "trained" / "model.keras").read_bytes() == b"model"
    second = finished_runs.import_run(other, data)  # the same run again gets a new id, nothing is overwritten
    assert second.startswith("trained-imported-")

    def zipped(files: dict[str, bytes]) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as bundle:
            for name, content in files.items():
                bundle.writestr(name, content)
        return buffer.getvalue()

    with pytest.raises(runs.RunError, match="not a zip"):
        finished_runs.import_run(other, b"not a zip at all")
    with pytest.raises(runs.RunError, match="outside"):
        finished_runs.import_run(other, zipped({"../evil/config.json": b"{}"}))
    with pytest.raises(runs.RunError, match=r"no model\.keras"):
        finished_runs.import_run(other, zipped({"r/config.json": b"{}", "r/status.json": b'{"state": "finished"}'}))
    failed = zipped({"r/config.json": b"{}", "r/status.json": b'{"state": "failed"}', "r/model.keras": b"m"})
    with pytest.raises(runs.RunError, match="Only finished or stopped"):
        finished_runs.import_run(other, failed)


def _live_status(**fields: object) -> bytes:
    """A running run's status.json whose process is this one (alive for the whole test)."""
    status = {"state": "running", "pid": os.getpid(), "pid_start_time": background.process_start_time(os.getpid())}
    return json.dumps({**status, **fields}).encode()


# What a damaged or hand-edited run folder may hold: (launch.json, status.json), as the bytes on disk.
DAMAGED_RUN_FILES = {
    "an epoch as words": (None, _live_status(epoch="12 of 40", epochs=40)),
    "an infinite number of epochs": (None, _live_status(epoch=12).replace(b"}", b', "epochs": 1e999}')),
    "a launch time as words": (b'{"pid": 999999999, "launched_at": "yesterday"}', None),
    "a state that is a number": (None, b'{"state": 3}'),
    "a status that is not an object": (None, b'["running", 12, 40]'),
    "bytes that are not text": (None, b'{"state": "\xff\xfe running"}'),
}


@pytest.mark.parametrize("files", DAMAGED_RUN_FILES.values(), ids=DAMAGED_RUN_FILES.keys())
def test_a_run_whose_status_is_damaged_reads_as_failed_and_its_files_are_kept(
    settings: Settings, files: tuple[bytes | None, bytes | None]
) -> None:
    launch, status = files
    path = settings.runs_dir / "20200101-000000-fast-damaged"
    path.mkdir(parents=True)
    for name, content in (("launch.json", launch), ("status.json", status)):
        if content is not None:
            (path / name).write_bytes(content)

    [view] = runs.list_runs(settings)

    assert (view.state, view.explanation) == ("failed", "unreadable status")
    assert not view.is_active
    if status is not None:  # left as found, for whoever looks into it
        assert (path / "status.json").read_bytes() == status
