"""Training one run on several workers (`core.training.worker_loop`): two `python -m core.train` processes on
127.0.0.1, CPU only, with `TF_CONFIG` naming both, as two machines would run them."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.config import PROJECT_ROOT, Settings
from core.training import run_folder as rf
from tests.conftest import FixtureData

pytestmark = pytest.mark.slow

# The head's dropout is off so that a step is the same arithmetic however its posters are split among the
# workers (the backbone already runs in inference mode while its top blocks learn).
FINE_TUNE = ["--mode", "fine-tune", "--epochs", "2", "--head-epochs", "2", "--unfreeze-blocks", "1", "--dropout", "0"]
FINE_TUNE += ["--image-size", "64x48", "--min-movies-per-genre", "5", "--seed", "11", "--quiet"]
PER_WORKER_BATCH = 8
TIMEOUT_S = 600


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for probe in sockets:
        probe.bind(("127.0.0.1", 0))
    ports = [probe.getsockname()[1] for probe in sockets]
    for probe in sockets:
        probe.close()
    return ports


def start_workers(settings: Settings, options: list[str], scratch: Path) -> list[subprocess.Popen]:
    """Both workers of a two-worker cluster on this machine; each one's temporary files go to scratch/worker-N."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    processes = []
    for index in range(2):
        temporary = scratch / f"worker-{index}"
        temporary.mkdir(parents=True)
        environment = {
            **os.environ,
            **settings.as_environment(),
            "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
            "TMPDIR": str(temporary),
            "CUDA_VISIBLE_DEVICES": "",
        }
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "core.train", *options, "--batch-size", str(PER_WORKER_BATCH)],
                cwd=PROJECT_ROOT,
                env=environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    return processes


def finish(processes: list[subprocess.Popen]) -> list[str]:
    outputs = []
    for process in processes:
        try:
            output, _ = process.communicate(timeout=TIMEOUT_S)
        finally:
            process.kill()
        assert process.returncode == 0, output[-3000:]
        outputs.append(output)
    return outputs


def run_folders(settings: Settings) -> list[Path]:
    if not settings.runs_dir.is_dir():
        return []
    return sorted(path for path in settings.runs_dir.iterdir() if path.is_dir())


def settings_beside(fixture_data: FixtureData, work: Path, runs: str) -> Settings:
    """The generated dataset with a cache shared by the runs of one test and a runs folder of `runs`' own."""
    return dataclasses.replace(
        fixture_data.settings, cache_dir=work / "cache", runs_dir=work / runs, state_dir=work / "state"
    )


def test_two_workers_train_one_run_as_one_process_with_the_same_global_batch_does(
    fixture_data: FixtureData, tmp_path: Path
) -> None:
    together = settings_beside(fixture_data, tmp_path, "two-workers")
    finish(start_workers(together, FINE_TUNE, tmp_path / "scratch"))
    [run_dir] = run_folders(together)  # the chief's: the other worker wrote no run into the runs folder
    assert json.loads((run_dir / rf.STATUS_FILE).read_text())["state"] == "finished"
    assert (run_dir / rf.MODEL_FILE).is_file()
    device = json.loads((run_dir / rf.PROVENANCE_FILE).read_text())["device"]
    assert device["strategy"] == "MultiWorkerMirroredStrategy" and device["workers"] == device["replicas"] == 2
    assert not any((tmp_path / "scratch" / "worker-1").iterdir())  # the other worker's own files are gone
    history = json.loads((run_dir / rf.HISTORY_FILE).read_text())
    assert [record["phase"] for record in history] == ["training"] * 2 + ["fine-tuning"] * 2

    alone = settings_beside(fixture_data, tmp_path, "one-process")
    command = [sys.executable, "-m", "core.train", *FINE_TUNE, "--batch-size", str(2 * PER_WORKER_BATCH)]
    done = subprocess.run(
        command, cwd=PROJECT_ROOT, env={**os.environ, **alone.as_environment()}, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [single_dir] = run_folders(alone)
    two, one = (json.loads((folder / rf.METRICS_FILE).read_text()) for folder in (run_dir, single_dir))
    assert two["validation"]["summary"]["map"] == pytest.approx(one["validation"]["summary"]["map"], abs=0.01)
    # The head's first epoch sees the same batches in the same order: the same loss, to float precision.
    first = [json.loads((folder / rf.HISTORY_FILE).read_text())[0] for folder in (run_dir, single_dir)]
    assert first[0]["loss"] == pytest.approx(first[1]["loss"], rel=1e-4)
    assert first[0]["val_loss"] == pytest.approx(first[1]["val_loss"], rel=1e-4)


def test_a_stop_asked_of_the_chief_stops_both_workers_after_the_same_batch(
    fixture_data: FixtureData, tmp_path: Path
) -> None:
    settings = settings_beside(fixture_data, tmp_path, "runs")
    options = ["--mode", "scratch", "--epochs", "1000", "--patience", "0", "--image-size", "64x48"]
    options += ["--min-movies-per-genre", "5", "--quiet"]
    processes = start_workers(settings, options, tmp_path / "scratch")
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while not (folders := run_folders(settings)) or not rf.read_history(folders[0]):
            assert all(process.poll() is None for process in processes), "a worker ended before the first epoch"
            assert time.monotonic() < deadline, "no epoch ended in time"
            time.sleep(0.5)
        (folders[0] / rf.STOP_FILE).write_text("asked in a test")  # what the app's Stop button writes
        finish(processes)  # both end: neither waits forever on the other's share of a step
    finally:
        for process in processes:
            process.kill()
    status = json.loads((folders[0] / rf.STATUS_FILE).read_text())
    assert status["state"] == "stopped"
    assert len(rf.read_history(folders[0])) < 1000


def test_the_fast_mode_refuses_several_workers_and_says_which_modes_take_them(
    fixture_data: FixtureData, tmp_path: Path
) -> None:
    settings = settings_beside(fixture_data, tmp_path, "runs")
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    environment = {
        **os.environ,
        **settings.as_environment(),
        "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}}),
    }
    done = subprocess.run(
        [sys.executable, "-m", "core.train", "--mode", "fast", "--quiet"],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "several workers train the fine-tune and scratch modes" in done.stderr
    [run_dir] = run_folders(settings)
    status = json.loads((run_dir / rf.STATUS_FILE).read_text())
    assert status["state"] == "failed" and "fast mode trains on one machine" in status["error"]
