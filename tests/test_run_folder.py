"""Run folders: atomic writes under crashes, the throttled status file, liveness, and folder claiming."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core import atomic
from core.app.urls import valid_run_id
from core.training import run_folder as rf


def _leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))


def test_a_writer_that_crashes_midway_leaves_the_old_file_whole(tmp_path):
    target = tmp_path / "metrics.json"
    atomic.write_json(target, {"map": 0.33})

    def half_then_crash(path: Path) -> None:
        path.write_text('{"map": 0.')
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        atomic.write_with(target, half_then_crash)
    assert json.loads(target.read_text()) == {"map": 0.33}
    assert _leftovers(tmp_path) == []


def test_a_failed_rename_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "status.json"
    atomic.write_json(target, {"state": "running"})

    def refuse(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError):
        atomic.write_json(target, {"state": "finished"})
    monkeypatch.undo()
    assert json.loads(target.read_text()) == {"state": "running"}
    assert _leftovers(tmp_path) == []


def test_a_process_killed_mid_write_never_leaves_a_partial_file(tmp_path):
    """The hard case: the process dies (no exception handler runs) after writing half the new content."""
    target = tmp_path / "model.keras"
    target.write_bytes(b"old model")
    script = textwrap.dedent(
        f"""
        import os
        from core import atomic
        def half(path):
            path.write_bytes(b"new mod")
            os._exit(9)
        atomic.write_with({str(target)!r}, half)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parent.parent, check=False)
    assert done.returncode == 9
    assert target.read_bytes() == b"old model"
    # Only a hidden temporary may remain, never under the target's name; the next write is unaffected.
    assert all(name.startswith(".model.keras.") for name in _leftovers(tmp_path))
    atomic.write_bytes(target, b"new model")
    assert target.read_bytes() == b"new model"


def test_atomic_files_are_readable_like_any_other(tmp_path):
    atomic.write_text(tmp_path / "a.txt", "x")
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644


def test_json_refuses_nan_rather_than_writing_invalid_json(tmp_path):
    with pytest.raises(ValueError):
        atomic.write_json(tmp_path / "bad.json", {"map": float("nan")})
    assert not (tmp_path / "bad.json").exists()


def test_status_writes_are_throttled_but_state_changes_are_immediate(tmp_path):
    status = rf.StatusWriter(tmp_path, interval=60)
    written = rf.read_status(tmp_path)
    assert written["state"] == "running" and written["phase"] == "preparing"
    assert written["pid"] == os.getpid() and written["pid_start_time"] == rf.process_start_time(os.getpid())
    status.update(batch=5, batches=10)
    assert rf.read_status(tmp_path)["batch"] is None  # within the interval: not written yet
    status.update(phase="training", epoch=1, epochs=3)
    assert rf.read_status(tmp_path)["batch"] == 5  # a new phase is written at once, with all fields so far
    status.finish("failed", error="no posters")
    final = rf.read_status(tmp_path)
    assert final["state"] == "failed" and final["error"] == "no posters" and final["finished_at"]
    with pytest.raises(ValueError):
        status.update(colour="red")


def test_a_running_status_whose_process_is_gone_reads_as_interrupted(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = {"state": "running", "pid": child.pid, "pid_start_time": 1}
    assert rf.effective_state(dead) == "interrupted"
    me = {"state": "running", "pid": os.getpid(), "pid_start_time": rf.process_start_time(os.getpid())}
    assert rf.effective_state(me) == "running"
    reused = {**me, "pid_start_time": me["pid_start_time"] - 1}  # same pid, another process
    assert rf.effective_state(reused) == "interrupted"
    assert rf.effective_state({"state": "finished", "pid": child.pid}) == "finished"


def test_new_run_folders_have_url_safe_unique_ids(tmp_path):
    folders = {rf.create_run_dir(tmp_path, "fine-tune") for _ in range(5)}
    assert len(folders) == 5
    assert all(valid_run_id(folder.name) and "-fine-tune-" in folder.name for folder in folders)


def test_a_run_folder_can_be_claimed_only_if_it_holds_no_run(tmp_path):
    assert rf.claim_run_dir(tmp_path / "new").is_dir()
    launched = tmp_path / "launched"
    launched.mkdir()
    (launched / "launch.json").write_text("{}")
    (launched / rf.LOG_FILE).write_text("")
    assert rf.claim_run_dir(launched) == launched
    queued = tmp_path / "queued"
    queued.mkdir()
    (queued / rf.STATUS_FILE).write_text('{"state": "queued"}')
    assert rf.claim_run_dir(queued) == queued
    finished = tmp_path / "finished"
    finished.mkdir()
    (finished / rf.STATUS_FILE).write_text('{"state": "finished"}')
    with pytest.raises(rf.RunFolderError, match="already holds a run"):
        rf.claim_run_dir(finished)


def test_the_log_is_not_written_twice_when_the_output_already_goes_to_it(tmp_path):
    """The app's launcher sends the process's output into train.log; the log then only prints."""
    script = textwrap.dedent(
        f"""
        from core.training.run_folder import RunLog
        log = RunLog({str(tmp_path)!r}, echo=False)
        log.write("epoch 1/2")
        log.close()
        """
    )
    with (tmp_path / rf.LOG_FILE).open("ab") as output:
        subprocess.run([sys.executable, "-c", script], stdout=output, cwd=Path(__file__).parent.parent, check=True)
    assert (tmp_path / rf.LOG_FILE).read_text().count("epoch 1/2") == 1
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    log = rf.RunLog(elsewhere, echo=False)
    log.write("line one\nline two")
    log.close()
    lines = (elsewhere / rf.LOG_FILE).read_text().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["line one", "line two"]
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d", line.split(" ", 1)[0]) for line in lines)
