"""A run folder from elsewhere whose mode is a Markdown image and whose start time is a Markdown link: in a
real browser the views that show them make no request for the image and no link, and show the characters."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, Request

from tests.browser.helpers import AppServer, Screenshots, assert_no_exception, main_text, open_view
from tests.model_fixture import HOSTILE_MODE, HOSTILE_STARTED_AT, TinyModel, hostile_run_folder

BEACON_HOST = "127.0.0.1:9"  # the address both hostile values point at
MODEL_TIMEOUT_MS = 120_000  # a page that predicts loads TensorFlow and the model on the server's first visit


@pytest.fixture(scope="module")
def hostile_server(
    start_app_server: Callable[..., AppServer], tiny_model: TinyModel, tmp_path_factory: pytest.TempPathFactory
) -> tuple[AppServer, TinyModel]:
    model = hostile_run_folder(tiny_model, Path(tmp_path_factory.mktemp("hostile-run")) / "runs")
    return start_app_server(model.settings, model.expected), model


def test_a_hostile_run_folder_fetches_nothing_and_links_nowhere(
    page: Page, hostile_server: tuple[AppServer, TinyModel], screenshot: Screenshots
) -> None:
    server, model = hostile_server
    requested: list[str] = []

    def record(request: Request) -> None:
        if BEACON_HOST in request.url:
            requested.append(request.url)

    page.on("request", record)
    run_view = server.url_for("/training", run=model.run_id)
    views = [  # each view, a text it shows once drawn, and the hostile words as a person must read them
        ("run", run_view, "mode · finished", f"{HOSTILE_MODE} mode · finished · started {HOSTILE_STARTED_AT}"),
        ("training", server.url_for("/training"), "Active model", f"run {model.run_id} ({HOSTILE_MODE} mode)"),
        ("predict", server.url_for("/predict"), "Drop one or more posters", f"({HOSTILE_MODE} mode,"),
    ]
    for name, url, drawn, literal in views:
        open_view(page, url, expect_text=drawn, timeout=MODEL_TIMEOUT_MS)
        screenshot(page, name)
        assert_no_exception(page, server)
        assert requested == [], f"{name}: the browser asked for {requested}"
        made = page.locator(f'a[href*="{BEACON_HOST}"], img[src*="{BEACON_HOST}"]')
        assert made.count() == 0, [made.nth(i).evaluate("e => e.parentElement.outerHTML") for i in range(made.count())]
        assert literal in main_text(page)
