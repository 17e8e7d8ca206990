"""Fixtures of the real-browser tests: Debian's Chromium, the app served by `streamlit run`, screenshots.

Every test in this folder is marked `browser`. What a test asks for:

- `app_server`: the app on the generated dataset, one server for the session (`.url`, `.url_for(path, **params)`,
  `.settings`, `.expected`); `fresh_app_server`: a new server of its own (first-request behaviour);
  `real_app_server`: the app on the real dataset (skipped when it is absent, required in CI);
  `start_app_server(settings, expected=None, env=None)`: a server on other folders (e.g. a runs folder a
  test prepared), stopped at the end of the session.
- `page`: pytest-playwright's page, in a fresh browser context per test, with generous timeouts;
  `dialogs`: the messages of every JavaScript dialog that opened in that context (each is dismissed).
- `screenshot(page, "step")`: a full-page PNG in `test-artifacts/browser/<test>/NN-step.png`; a failing test
  also gets one of every page still open, named `failure`.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from core.config import Settings
from core.data.catalog_build import open_catalog
from tests.browser.helpers import (
    CHROMIUM_ARGS,
    CHROMIUM_PATH,
    STEP_TIMEOUT_MS,
    AppServer,
    Screenshots,
    artifact_folder,
    running_app_server,
)
from tests.conftest import FixtureData, make_settings
from tests.raw_fixture import Expected, build_raw_dataset

BROWSER_TESTS = Path(__file__).resolve().parent
VIEWPORT = {"width": 1440, "height": 1000}  # wide enough for the gallery's six columns
_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if BROWSER_TESTS in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[pytest.TestReport]:
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


# --- The browser --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_executable() -> Path:
    """Debian's Chromium; its absence fails the run in CI and skips the browser tests elsewhere."""
    if not CHROMIUM_PATH.is_file():
        message = f"Chromium is not at {CHROMIUM_PATH}: apt-get install chromium (or run ./scripts/ensure-chromium.sh)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM_PATH


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict, chromium_executable: Path) -> dict:
    return {**browser_type_launch_args, "executable_path": str(chromium_executable), "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict) -> dict:
    return {**browser_context_args, "viewport": VIEWPORT, "color_scheme": "light", "locale": "en-US"}


@pytest.fixture
def page(page: Page) -> Page:
    """pytest-playwright's page (a fresh context per test), with timeouts for a loaded machine."""
    page.set_default_timeout(STEP_TIMEOUT_MS)
    page.set_default_navigation_timeout(STEP_TIMEOUT_MS)
    expect.set_options(timeout=STEP_TIMEOUT_MS)
    return page


@pytest.fixture
def dialogs(context: BrowserContext) -> list[str]:
    """The message of every alert, confirm or prompt that opens in this test's context (each dismissed)."""
    opened: list[str] = []

    def record(dialog) -> None:
        opened.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    context.on("dialog", record)
    return opened


@pytest.fixture
def screenshot(request: pytest.FixtureRequest, browser: Browser, new_context) -> Iterator[Screenshots]:
    """`screenshot(page, "step")` saves `test-artifacts/browser/<test>/NN-step.png` (full page)."""
    folder = artifact_folder(request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    shots = Screenshots(folder)
    yield shots
    reports = request.node.stash.get(_REPORTS, {})
    if "call" in reports and reports["call"].failed:
        for context in browser.contexts:  # depending on `new_context` keeps them open until now
            for page in context.pages:
                if not page.is_closed():
                    shots(page, "failure")


# --- The app servers ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser_fixture_data(tmp_path_factory: pytest.TempPathFactory) -> FixtureData:
    """A generated dataset of the browser tests' own, its catalog built before any server starts."""
    root = tmp_path_factory.mktemp("browser-data")
    expected = build_raw_dataset(root / "movie-posters")
    settings = make_settings(root / "movie-posters", root / "work")
    open_catalog(settings)  # so that no first page load has to build it
    return FixtureData(settings, expected)


@pytest.fixture(scope="session")
def start_app_server(
    tmp_path_factory: pytest.TempPathFactory, chromium_executable: Path
) -> Iterator[Callable[..., AppServer]]:
    """A function that starts `streamlit run app.py` on the given folders; every server stops at the end."""
    logs = tmp_path_factory.mktemp("server-logs")
    numbers = itertools.count(1)
    with ExitStack() as servers:

        def start(settings: Settings, expected: Expected | None = None, env: dict[str, str] | None = None) -> AppServer:
            log_path = logs / f"server-{next(numbers)}.log"
            return servers.enter_context(running_app_server(settings, log_path, expected, extra_env=env))

        yield start


@pytest.fixture(scope="session")
def app_server(start_app_server: Callable[..., AppServer], browser_fixture_data: FixtureData) -> AppServer:
    """The app on the generated dataset, shared by the session's browser tests."""
    return start_app_server(browser_fixture_data.settings, browser_fixture_data.expected)


@pytest.fixture
def fresh_app_server(
    browser_fixture_data: FixtureData, tmp_path: Path, chromium_executable: Path
) -> Iterator[AppServer]:
    """A server of this test's own, that no browser has visited yet; stopped when the test ends."""
    with running_app_server(
        browser_fixture_data.settings, tmp_path / "server.log", browser_fixture_data.expected
    ) as server:
        yield server


@pytest.fixture(scope="session")
def real_app_server(start_app_server: Callable[..., AppServer], real_settings: Settings, real_catalog) -> AppServer:
    """The app on the real dataset (its catalog built first); skipped without the data, except in CI."""
    return start_app_server(real_settings)
