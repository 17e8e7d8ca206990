"""A training process killed with SIGKILL, as a person then sees the Training page in Chromium: the run is
interrupted with its reason, and the run finished before it still shows its details."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from core import background
from core.app import model_choice, runs
from core.config import Settings
from core.training import run_folder as rf
from tests.browser.helpers import AppServer, Screenshots, alerts, assert_no_exception, open_view, wait_for_text
from tests.conftest import FixtureData
from tests.test_faults import ENDLESS_RUN, SHORT_RUN, finished, training_status, wait_for


@pytest.fixture
def killed_and_finished(browser_fixture_data: FixtureData, tmp_path: Path) -> Iterator[tuple[Settings, str, str]]:
    """A runs folder with a finished tiny run (the active model) and a run killed with SIGKILL mid-training;
    nothing has read the killed run since, so the server is the first to find its process gone."""
    settings = dataclasses.replace(browser_fixture_data.settings, runs_dir=tmp_path / "runs")
    earlier = runs.launch_run(settings, "fast", SHORT_RUN)
    wait_for(lambda: finished(settings, earlier), f"the run {earlier} to finish")
    model_choice.set_active_model(settings, earlier)

    killed = runs.launch_run(settings, "fast", ENDLESS_RUN)
    pid = json.loads((settings.runs_dir / killed / runs.LAUNCH_FILE).read_text())["pid"]
    child = background._children.pop(pid)
    try:
        wait_for(lambda: training_status(settings, killed, 2), "the run to train its second epoch")
    finally:
        os.killpg(pid, signal.SIGKILL)
        child.wait(timeout=30)
    assert rf.read_status(settings.runs_dir / killed)["state"] == "running"  # as SIGKILL left it
    yield settings, earlier, killed


def test_a_run_killed_with_sigkill_shows_as_interrupted_beside_the_finished_one(
    page: Page,
    start_app_server: Callable[..., AppServer],
    killed_and_finished: tuple[Settings, str, str],
    screenshot: Screenshots,
) -> None:
    settings, earlier, killed = killed_and_finished
    server = start_app_server(settings)

    open_view(page, server.url_for("/training", run=killed), expect_text=f"Run {killed}")
    wait_for_text(page, "This run interrupted")
    screenshot(page, "killed-run")
    [reason] = [text for text in alerts(page) if text.startswith("This run interrupted")]
    assert "its process ended without finishing (killed, out of memory, or the machine restarted)" in reason
    assert "Running:" not in page.get_by_test_id("stMain").inner_text()  # no live progress for a dead run
    assert_no_exception(page, server)

    open_view(page, server.url_for("/training", run=earlier), expect_text=f"Run {earlier}")
    main = page.get_by_test_id("stMain")
    expect(main).to_contain_text("fast mode · finished")
    expect(main).to_contain_text("Test figures beside the trivial baselines")
    expect(main).to_contain_text(f"Active model: run {earlier}")
    expect(main.locator(".st-key-runs-table table")).to_be_visible()
    screenshot(page, "earlier-run")
    assert not [text for text in alerts(page) if "interrupted" in text or "failed" in text]
    assert_no_exception(page, server)
    assert runs.read_run(settings, killed).state == "interrupted"
