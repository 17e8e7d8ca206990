"""Starting a run for real, as separate `python -m core.train` processes: one run at a time per runs folder
(an OS lock that a killed run cannot leave behind), and a stop in a run's first seconds ends it cleanly.

The processes are stopped long before they train, so these tests pay for TensorFlow's start-up at most.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import background
from core.app import runs
from core.config import PROJECT_ROOT, Settings
from core.data.catalog import Catalog
from core.training import run_folder as rf
from core.training import run_lock
from tests.apptest_helpers import texts, use_settings
from tests.conftest import FixtureData
from tests.model_fixture import open_app

# A tiny run on the generated dataset, should a stop come late and the run train.
TINY = ("--image-size", "64x48", "--epochs", "1", "--min-movies-per-genre", "5")
START_TIMEOUT_S = 60  # a fresh Python reaching its first status.json, on a busy machine
END_TIMEOUT_S = 180  # a stopped run ending (it may be in the middle of importing TensorFlow)


@pytest.fixture
def settings(fixture_data: FixtureData, fixture_catalog: Catalog, tmp_path: Path) -> Settings:
    """The generated dataset and its catalog (built once per session), with an empty runs folder."""
    return dataclasses.replace(fixture_data.settings, runs_dir=tmp_path / "runs")


def start_command(settings: Settings, *arguments: str) -> subprocess.Popen:
    """`python -m core.train` into the settings' runs folder, its output kept for the assertions."""
    command = [sys.executable, "-m", "core.train", "--runs-dir", str(settings.runs_dir)]
    command += [
        "--data-dir",
        str(settings.data_dir),
        "--cache-dir",
        str(settings.cache_dir),
        "--quiet",
        *TINY,
        *arguments,
    ]
    return subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@contextlib.contextmanager
def command_run(settings: Settings, *arguments: str) -> Iterator[subprocess.Popen]:
    """`start_command`, killed and reaped on the way out whatever happened, so no test leaves a run behind."""
    process = start_command(settings, *arguments)
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def run_folders(settings: Settings) -> list[Path]:
    if not settings.runs_dir.is_dir():
        return []
    return sorted(path for path in settings.runs_dir.iterdir() if path.is_dir())


def wait_for_status(settings: Settings, process: subprocess.Popen | None = None) -> Path:
    """The one run folder, once its status.json says `running` (the process is then in its first seconds)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        folders = run_folders(settings)
        if folders and rf.read_status(folders[0]).get("state") == "running":
            return folders[0]
        assert process is None or process.poll() is None, process.communicate()
        time.sleep(0.02)
    raise AssertionError(f"no running status.json in {settings.runs_dir} after {START_TIMEOUT_S} s")


def assert_stopped_before_training(run_dir: Path) -> None:
    status = rf.read_status(run_dir)
    assert status["state"] == "stopped", status
    assert status["model_saved"] is False
    assert status["error"] == "stopped before the first epoch; no model saved"
    assert not (run_dir / rf.MODEL_FILE).exists() and not (run_dir / rf.METRICS_FILE).exists()


def assert_ended_cleanly_before_training(process: subprocess.Popen, run_dir: Path) -> None:
    assert process.returncode == 0, process.communicate()
    assert_stopped_before_training(run_dir)


@pytest.mark.slow
def test_a_second_run_names_the_active_one_exits_3_and_makes_no_folder(settings: Settings) -> None:
    with command_run(settings) as first:
        run_dir = wait_for_status(settings, first)
        os.kill(first.pid, signal.SIGSTOP)  # frozen while it holds the runs folder: it stays the active run
        second = start_command(settings)
        try:
            _, error = second.communicate(timeout=START_TIMEOUT_S)
        finally:
            second.kill()
        assert second.returncode == 3, error
        assert f"The run {run_dir.name} is still running" in error and "one run at a time" in error
        assert run_folders(settings) == [run_dir]

        # The app refuses the same way, naming the same run, and makes no folder either.
        with pytest.raises(runs.RunAlreadyActive) as refused:
            runs.launch_run(settings, "fast", [])
        assert refused.value.run_id == run_dir.name
        assert run_folders(settings) == [run_dir]

        os.kill(first.pid, signal.SIGCONT)
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=END_TIMEOUT_S)
    assert_ended_cleanly_before_training(first, run_dir)


def test_a_killed_run_never_blocks_the_next(settings: Settings) -> None:
    with command_run(settings) as first:  # SIGKILLed at the end: no handler runs, the run cleans up nothing
        wait_for_status(settings, first)
        with pytest.raises(run_lock.RunLockBusy):
            run_lock.acquire(settings.runs_dir)
    with run_lock.acquire(settings.runs_dir):  # the OS released the lock with the process
        pass


@pytest.mark.slow
def test_sigterm_in_a_runs_first_seconds_stops_it_cleanly(settings: Settings) -> None:
    with command_run(settings) as process:
        run_dir = wait_for_status(settings, process)  # written before TensorFlow is imported
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=END_TIMEOUT_S)
    assert_ended_cleanly_before_training(process, run_dir)


@pytest.mark.slow
def test_a_force_stop_in_a_launched_runs_first_seconds_stops_it_and_a_command_line_run_is_refused_meanwhile(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = runs.launch_run(settings, "fast", list(TINY))
    try:
        wait_for_status(settings)
        # The launcher handed its lock to the run's process: a command-line run is refused, naming it.
        second = start_command(settings)
        _, error = second.communicate(timeout=START_TIMEOUT_S)
        assert second.returncode == 3 and f"The run {run_id} is still running" in error
        runs.kill_run(settings, run_id)  # Force stop: two SIGTERMs, half a second apart
        deadline = time.monotonic() + END_TIMEOUT_S
        while runs.read_run(settings, run_id).is_active and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        pid = rf.read_status(settings.runs_dir / run_id).get("pid")
        if isinstance(pid, int) and background.process_alive(pid, None):
            os.killpg(os.getpgid(pid), signal.SIGKILL)
    run = runs.read_run(settings, run_id)
    assert run.state == "stopped", runs.log_tail(settings, run_id)
    assert_stopped_before_training(run.path)
    assert [path.name for path in run_folders(settings)] == [run_id]

    # The run's page says what it kept: nothing.
    use_settings(monkeypatch, settings)
    page = open_app("pages/training.py", run=run_id)
    assert not page.exception
    shown = texts(page)
    assert "Stopped on request before any model was saved" in shown and "kept and evaluated" not in shown


def test_a_start_right_after_a_run_finished_waits_for_its_process_to_let_go(settings: Settings) -> None:
    from tests.test_faults import end_process_group

    # A run that says "finished" while its process still holds the runs folder (TensorFlow takes a few
    # seconds to exit): the holder here lets go after two seconds.
    finished_run = settings.runs_dir / "20261207-000000-fast-0000"
    finished_run.mkdir(parents=True)
    (finished_run / rf.STATUS_FILE).write_text('{"state": "finished"}')
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(settings.runs_dir), finished_run.name, "2"],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(run_lock.RunLockBusy):
            run_lock.acquire(settings.runs_dir)
        run_id = runs.launch_run(settings, "fast", list(TINY))  # once the holder is gone, not "still running"
    finally:
        holder.kill()
        holder.wait()
    child = background._children.pop(json.loads((settings.runs_dir / run_id / runs.LAUNCH_FILE).read_text())["pid"])
    end_process_group(child.pid)
    child.wait(timeout=END_TIMEOUT_S)
    assert run_id != finished_run.name and run_folders(settings) == sorted([finished_run, settings.runs_dir / run_id])


HOLD_LOCK = """
import sys, time
from pathlib import Path
from core.training import run_lock
lock = run_lock.acquire(Path(sys.argv[1]))
lock.record(sys.argv[2])
print("held", flush=True)
time.sleep(float(sys.argv[3]))
"""
