"""Background jobs: they run in their own process, report progress through their folder, run once per key,
and end done, failed (with the reason) or stopped, whoever looks."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from core import background
from core.app import jobs
from core.app.jobs import JobContext, JobError, JobStopped
from core.config import Settings

GO_FILE = "go"  # the test's signal that a waiting job may go on


def count_posters(job: JobContext, total: int, result: str) -> None:
    """A job of `total` steps that waits at step 1 until the test allows it on, then writes `result`."""
    job.progress(1, total, "waiting")
    give_up = time.monotonic() + 120  # a test that failed before saying "go" leaves no process behind
    while not (job.folder / GO_FILE).exists():
        if job.should_stop() or time.monotonic() > give_up:
            raise JobStopped
        time.sleep(0.02)
    job.progress(total, total, "finished", seen=total)
    Path(result).write_text(f"{total} posters counted")


def broken(job: JobContext) -> None:
    raise ValueError("the poster file is damaged")


def wait_for(settings: Settings, key: str, condition, timeout: float = 30.0) -> jobs.JobStatus:
    deadline = time.monotonic() + timeout
    while True:
        status = jobs.job_status(settings, key)
        if condition(status):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"job {key} never got there; last seen {status}")
        time.sleep(0.05)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", runs_dir=tmp_path / "runs")


TARGET = "tests.test_jobs:count_posters"


def test_a_job_runs_once_per_key_reports_progress_and_ends_done(settings: Settings, tmp_path: Path) -> None:
    result = tmp_path / "result.txt"
    assert jobs.job_status(settings, "count").state == "absent"
    first = jobs.ensure_job(settings, "count", TARGET, {"total": 7, "result": str(result)})
    assert first.is_active
    running = wait_for(settings, "count", lambda s: s.done == 1)
    assert (running.state, running.total, running.message) == ("running", 7, "waiting")
    # A second tab asking for the same job gets the live one; no second process is started.
    again = jobs.start_job(settings, "count", TARGET, {"total": 7, "result": str(result)})
    assert again.started_at == first.started_at
    (jobs.job_folder(settings, "count") / GO_FILE).touch()
    done = wait_for(settings, "count", lambda s: not s.is_active)
    assert (done.state, done.done, done.total, done.extra) == ("done", 7, 7, {"seen": 7})
    assert result.read_text() == "7 posters counted"


def test_a_failed_job_says_why_and_is_retried_only_on_request(settings: Settings) -> None:
    jobs.start_job(settings, "broken", "tests.test_jobs:broken")
    failed = wait_for(settings, "broken", lambda s: not s.is_active)
    assert failed.state == "failed"
    assert "the poster file is damaged" in failed.error
    assert jobs.ensure_job(settings, "broken", "tests.test_jobs:broken").started_at == failed.started_at
    retried = jobs.start_job(settings, "broken", "tests.test_jobs:broken")
    assert retried.started_at != failed.started_at


def test_a_job_whose_process_dies_is_reported_failed(settings: Settings, tmp_path: Path) -> None:
    jobs.start_job(settings, "killed", TARGET, {"total": 3, "result": str(tmp_path / "never")})
    wait_for(settings, "killed", lambda s: s.done == 1)
    pid = background.read_json(jobs.job_folder(settings, "killed") / jobs.JOB_FILE, {})["pid"]
    os.kill(pid, signal.SIGKILL)
    failed = wait_for(settings, "killed", lambda s: not s.is_active)
    assert failed.state == "failed"
    assert "ended without finishing" in failed.error
    assert not (tmp_path / "never").exists()


def test_a_stop_request_ends_the_job_stopped_and_ensure_starts_it_again(settings: Settings, tmp_path: Path) -> None:
    arguments = {"total": 2, "result": str(tmp_path / "result.txt")}
    jobs.start_job(settings, "stoppable", TARGET, arguments)
    wait_for(settings, "stoppable", lambda s: s.done == 1)
    jobs.request_stop(settings, "stoppable")
    stopped = wait_for(settings, "stoppable", lambda s: not s.is_active)
    assert stopped.state == "stopped"
    restarted = jobs.ensure_job(settings, "stoppable", TARGET, arguments)
    assert restarted.is_active and restarted.started_at != stopped.started_at
    jobs.request_stop(settings, "stoppable")
    wait_for(settings, "stoppable", lambda s: not s.is_active)


@pytest.mark.parametrize("key", ["../escape", "", "a/b", "x" * 121])
def test_a_key_that_is_not_a_plain_name_is_refused(settings: Settings, key: str) -> None:
    with pytest.raises(JobError, match="is not a job key"):
        jobs.start_job(settings, key, TARGET)


# What a damaged or hand-edited job folder may hold: (job.json, status.json), as the bytes on disk.
DAMAGED_FILES = {
    "a count as words": (b'{"launched_at": 1}', b'{"state": "running", "done": "12 of 40", "total": 40}'),
    "an infinite count": (b'{"launched_at": 1}', b'{"state": "running", "done": 1e999, "total": 40}'),
    "a count that is not a number": (b'{"launched_at": 1}', b'{"state": "running", "done": NaN, "total": 40}'),
    "a launch time as words": (b'{"launched_at": "yesterday"}', None),
    "a state that is a number": (b'{"launched_at": 1}', b'{"state": 3}'),
    "a message that is a list": (b'{"launched_at": 1}', b'{"state": "done", "message": ["all"]}'),
    "a status that is not an object": (b'{"launched_at": 1}', b"[12, 40]"),
    "a launch that is not an object": (b'"launched"', None),
    "bytes that are not text": (b'{"launched_at": 1}', b'{"state": "\xff\xfe running"}'),
}


def damage(settings: Settings, key: str, launch: bytes, status: bytes | None) -> None:
    folder = jobs.job_folder(settings, key)
    folder.mkdir(parents=True)
    (folder / jobs.JOB_FILE).write_bytes(launch)
    if status is not None:
        (folder / jobs.STATUS_FILE).write_bytes(status)


@pytest.mark.parametrize("files", DAMAGED_FILES.values(), ids=DAMAGED_FILES.keys())
def test_a_job_whose_files_are_damaged_reads_as_failed_for_an_unreadable_status(
    settings: Settings, files: tuple[bytes, bytes | None]
) -> None:
    damage(settings, "damaged", *files)

    status = jobs.job_status(settings, "damaged")

    assert (status.state, status.error) == ("failed", "unreadable status")
    assert not status.is_active


def test_the_map_page_shows_a_job_with_a_damaged_status_as_failed(
    fixture_data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.data.catalog_build import open_catalog
    from core.serving import projection
    from tests.apptest_helpers import open_page, texts, use_settings
    from tests.conftest import make_settings

    settings = make_settings(fixture_data.settings.data_dir, tmp_path)
    use_settings(monkeypatch, settings)
    damage(settings, projection.map_key(open_catalog(settings)), *DAMAGED_FILES["a count as words"])

    app = open_page("pages/map.py")

    assert not app.exception
    assert "The map could not be computed: unreadable status" in texts(app)
