"""A press of Start answers at once: the page says the run is being started before anything else is drawn
again, and the run then shows as running, in Chromium with a real training process."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from core.app import runs
from core.config import Settings
from tests.browser.helpers import (
    AppServer,
    assert_no_exception,
    open_view,
    running_app_server,
    texts_shown,
    wait_for_text,
    watch_for_texts,
)
from tests.conftest import FixtureData
from tests.test_faults import wait_for
from ui.runs import STARTING_MESSAGE


@pytest.fixture
def server_without_runs(browser_fixture_data: FixtureData, tmp_path: Path) -> Iterator[tuple[AppServer, Settings]]:
    """The app with an empty runs folder of this test's own; any run it started is ended afterwards."""
    settings = dataclasses.replace(browser_fixture_data.settings, runs_dir=tmp_path / "runs")
    try:
        with running_app_server(settings, tmp_path / "server.log", browser_fixture_data.expected) as server:
            yield server, settings
    finally:
        for run in runs.list_runs(settings):
            if run.is_active:
                runs.kill_run(settings, run.run_id)
        wait_for(lambda: runs.active_run(settings) is None, "the started run to end")


def test_start_says_at_once_that_the_run_is_starting_then_shows_it_running(
    page: Page, server_without_runs: tuple[AppServer, Settings]
) -> None:
    server, settings = server_without_runs
    open_view(page, server.url_for("/training"), expect_text="No model yet")
    starting = STARTING_MESSAGE.split(":")[0]
    watch_for_texts(page, [starting, "Running:"])
    page.get_by_role("button", name="Start the fast default run").click()
    wait_for_text(page, "Running:")
    (run,) = runs.list_runs(settings)
    assert page.url.endswith(f"/training?run={run.run_id}")
    assert texts_shown(page) == [starting, "Running:"]
    assert_no_exception(page, server)
