"""The real-browser tests' machinery: a Streamlit server in its own process group, waits, screenshots.

Nothing here is a test. `conftest.py` turns it into fixtures; a test module may also import it directly
(e.g. `open_view`, `wait_for_text`, `genre_chip`).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from playwright.sync_api import Locator, Page, expect

from core.config import PROJECT_ROOT, Settings
from tests.raw_fixture import Expected
from ui.text import WORD_JOINER

CHROMIUM_PATH = Path("/usr/bin/chromium")  # Debian's package; Playwright's own download is not used
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS_DIR = PROJECT_ROOT / "test-artifacts" / "browser"

# Seconds and milliseconds, generous because the tests share a small machine with heavy jobs.
SERVER_START_TIMEOUT_S = 90  # until /_stcore/health answers
SERVER_STOP_TIMEOUT_S = 15  # SIGTERM, then SIGKILL
FIRST_LOAD_TIMEOUT_MS = 60_000  # a page's first script run imports pandas, plotly, …
STEP_TIMEOUT_MS = 30_000  # one interaction and the rerun it causes

APP_ROOT = '[data-testid="stApp"]'
EXCEPTION_BOX = '[data-testid="stException"]'
QUIET_MS = 300  # how long the drawn state must hold: it bridges the instant between a run and its st.rerun
# True once the app is connected, its script not running (Streamlit marks both on its root element), and its
# content drawn: no element of an earlier run left stale, no element still a skeleton (Streamlit draws one
# while an element type's code loads, which on a busy machine outlasts any fixed wait), every image loaded
# and every Plotly chart drawn; all of that unbroken for `quiet` ms. Content, not DOM silence: a chart's own
# redraws under load kept a "nothing changed for 500 ms" wait from ever ending.
_SETTLED_JS = """quiet => {
    const app = document.querySelector('[data-testid="stApp"]');
    const drawn = app
        && app.dataset.testScriptState === "notRunning"
        && app.dataset.testConnectionState === "CONNECTED"
        && !app.querySelector('[data-stale="true"], [data-testid="stSkeleton"]')
        && [...app.querySelectorAll("img")].every(image => image.complete)
        && [...app.querySelectorAll('[data-testid="stPlotlyChart"]')].every(chart => chart.querySelector(".main-svg"));
    if (!drawn) {
        window.__drawnSince = undefined;
        return false;
    }
    window.__drawnSince ??= performance.now();
    return performance.now() - window.__drawnSince >= quiet;
}"""


@dataclass
class AppServer:
    """A running `streamlit run app.py`: where it answers, what it reads, where its log goes."""

    url: str
    settings: Settings
    expected: Expected | None  # what the generated dataset holds; None on the real data
    log_path: Path
    process: subprocess.Popen = field(repr=False)

    def url_for(self, path: str = "/", **params: str) -> str:
        """The absolute URL of a view, e.g. `url_for("/genre", genre="Comedy", page="2")`."""
        query = f"?{urlencode(params)}" if params else ""
        return f"{self.url}/{path.lstrip('/')}{query}"

    def log_tail(self, characters: int = 6000) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-characters:]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_environment(settings: Settings, extra_env: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            **settings.as_environment(),
            "PYTHONUNBUFFERED": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            **(extra_env or {}),
        }
    )
    return env


def _health(url: str) -> str | None:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=3) as response:
            return response.read().decode(errors="replace").strip()
    except (urllib.error.URLError, OSError):
        return None


def stop_process_group(process: subprocess.Popen, timeout: float = SERVER_STOP_TIMEOUT_S) -> None:
    """SIGTERM to the server's whole process group, SIGKILL if it is still there after `timeout`."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)
    except ProcessLookupError:
        process.wait(timeout=timeout)


@contextmanager
def running_app_server(
    settings: Settings,
    log_path: Path,
    expected: Expected | None = None,
    extra_env: dict[str, str] | None = None,
    start_timeout: float = SERVER_START_TIMEOUT_S,
) -> Iterator[AppServer]:
    """`streamlit run app.py` on a free port with these folders; stopped (process group and all) on exit."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        # Other people edit the sources while the tests run: a "source changed" banner must not appear.
        "--server.fileWatcherType",
        "none",
    ]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=server_environment(settings, extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so that every child goes with it
        )
    server = AppServer(url, settings, expected, log_path, process)
    try:
        deadline = time.monotonic() + start_timeout
        while _health(url) != "ok":
            if process.poll() is not None:
                raise RuntimeError(f"the app server exited with {process.returncode}:\n{server.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the app server did not answer in {start_timeout:.0f} s:\n{server.log_tail()}")
            time.sleep(0.25)
        yield server
    finally:
        stop_process_group(process)


# --- Waiting for Streamlit -----------------------------------------------------------------------------


def wait_for_app(page: Page, timeout: float = STEP_TIMEOUT_MS, quiet_ms: int = QUIET_MS) -> None:
    """Wait until the script has finished its runs and their content is drawn (see `_SETTLED_JS`).

    "notRunning" alone is not enough: the elements of a run are drawn a moment after it (skeletons until
    their code has loaded, stale ones until replaced), and a page may start a second run (a rerun, a
    `st.switch_page`) right after the first; so the drawn state must also hold for `quiet_ms`.
    """
    page.evaluate("window.__drawnSince = undefined")  # what was drawn before this wait does not count
    page.wait_for_function(_SETTLED_JS, arg=quiet_ms, timeout=timeout, polling=100)
    expect(page.get_by_test_id("stStatusWidget").get_by_text("Running")).to_have_count(0, timeout=timeout)


def open_view(page: Page, url: str, *, expect_text: str | None = None, timeout: float = FIRST_LOAD_TIMEOUT_MS) -> None:
    """Load `url` and wait for the app to finish running (and, if given, for `expect_text` to be shown).

    A page can run twice on one load (a `st.rerun` or `st.switch_page`), and between the runs the app is
    briefly idle: waiting for a text the final view shows is what makes the wait exact.
    """
    page.goto(url, wait_until="domcontentloaded", timeout=timeout)
    if expect_text is not None:
        wait_for_text(page, expect_text, timeout=timeout)
    wait_for_app(page, timeout=timeout)


def wait_for_text(page: Page, text: str | re.Pattern[str], timeout: float = STEP_TIMEOUT_MS) -> None:
    """Wait until `text` (exact substring, or a pattern) is visible in the app's main area."""
    expect(page.get_by_test_id("stMain")).to_contain_text(text, timeout=timeout)


def main_text(page: Page) -> str:
    """What a person reads in the app's main area (rendered text, not Markdown source, no invisible joiners)."""
    return page.get_by_test_id("stMain").inner_text().replace(WORD_JOINER, "")


def title_heading(page: Page) -> Locator:
    """The page's title: its first level-one heading (`st.title`, or a literal heading of dataset text)."""
    return page.get_by_test_id("stMain").locator("h1").first


def page_title(page: Page) -> str:
    """The text of the page's `st.title`."""
    return title_heading(page).inner_text().strip()


def assert_no_exception(page: Page, server: AppServer | None = None) -> None:
    """No Streamlit exception box and no traceback in front of the user."""
    boxes = page.locator(EXCEPTION_BOX)
    detail = f"\nserver log:\n{server.log_tail()}" if server else ""
    assert boxes.count() == 0, f"an exception is shown: {boxes.first.inner_text()[:2000]}{detail}"
    text = page.locator(APP_ROOT).inner_text()
    assert "Traceback" not in text, f"a traceback is shown:\n{text[:2000]}{detail}"


def sidebar_pages(page: Page) -> list[str]:
    """The page titles listed in the sidebar's navigation (without their icons' ligature names)."""
    links = page.get_by_test_id("stSidebarNav").get_by_test_id("stSidebarNavLink")
    return [text.strip().splitlines()[-1].strip() for text in links.all_inner_texts()]


def alerts(page: Page) -> list[str]:
    """The texts of the warnings, errors, infos and successes in the main area (their icons left out)."""
    bodies = page.get_by_test_id("stMain").get_by_test_id("stAlert").get_by_test_id("stMarkdownContainer")
    return [text.strip() for text in bodies.all_inner_texts()]


def metrics(page: Page) -> dict[str, str]:
    """`st.metric` labels and their values as shown, e.g. {"Records": "84"}."""
    shown = {}
    for metric in page.get_by_test_id("stMetric").all():
        label = metric.get_by_test_id("stMetricLabel").inner_text().strip()
        shown[label] = metric.get_by_test_id("stMetricValue").inner_text().strip()
    return shown


def expect_url(page: Page, path: str, params: dict[str, str] | None = None, timeout: float = STEP_TIMEOUT_MS) -> None:
    """Wait until the address bar shows exactly this page path and these query parameters."""
    params = params or {}
    page.wait_for_url(lambda url: url_is(url, path, params), timeout=timeout)


def url_is(url: str, path: str, params: dict[str, str]) -> bool:
    """Whether `url` is this page path with exactly these query parameters."""
    parts = urlsplit(url)
    return parts.path.strip("/") == path.strip("/") and dict(parse_qsl(parts.query)) == params


# --- The app's views, as a person uses them ----------------------------------------------------------


def gallery_links(page: Page) -> dict[str, str]:
    """The movie links of the gallery on screen: imdbID -> the link's visible text."""
    shown = {}
    for link in page.get_by_test_id("stMain").get_by_test_id("stPageLink-NavLink").all():
        query = dict(parse_qsl(urlsplit(link.get_attribute("href") or "").query))
        if "movie" in query:
            shown[query["movie"]] = link.inner_text().strip()
    return shown


def movie_link(page: Page, imdb_id: str) -> Locator:
    """The gallery's link to one movie."""
    return page.get_by_test_id("stMain").locator(f'[data-testid="stPageLink-NavLink"][href$="movie={imdb_id}"]')


def genre_chip(page: Page, genre: str, within: Locator | None = None) -> Locator:
    """A genre chip (a link styled as a pill that opens the genre's gallery) in the main area, or in `within`."""
    scope = within if within is not None else page.get_by_test_id("stMain")
    return scope.locator('div[class*="st-key-chips-"]').get_by_role("link", name=genre, exact=True).first


def genre_bars(page: Page, labels: list[str]) -> Locator:
    """The Dataset page's genre bars (one link per genre to its gallery), once every one of `labels` is drawn."""
    bars = page.get_by_test_id("stMain").locator('div[class*="st-key-genre-bars"]')
    for label in labels:
        expect(genre_bar(bars, label)).to_have_count(1, timeout=FIRST_LOAD_TIMEOUT_MS)
    return bars


def genre_bar(bars: Locator, label: str) -> Locator:
    return bars.locator(f'a[href="genre?{urlencode({"genre": label})}"]')


def click_bar(page: Page, bars: Locator, label: str) -> None:
    """A real mouse click on the bar of the genre `label`."""
    bar = genre_bar(bars, label)
    bar.scroll_into_view_if_needed()
    bar.click()


_WATCH_TEXTS_JS = """(needles) => {
    window.__textsShown = [];
    const look = () => {
        const shown = document.body.innerText;
        for (const needle of needles) {
            if (!window.__textsShown.includes(needle) && shown.includes(needle)) window.__textsShown.push(needle);
        }
    };
    new MutationObserver(look).observe(document.body, {childList: true, subtree: true, characterData: true});
}"""


def watch_for_texts(page: Page, texts: list[str]) -> None:
    """From now on, note each of these texts the page shows, however briefly: a click's passing feedback
    (\"Opening …\", \"Starting …\") is gone by the time the next view is drawn. The app moves between its
    pages without reloading the document, so the watch lasts across them."""
    page.evaluate(_WATCH_TEXTS_JS, texts)


def texts_shown(page: Page) -> list[str]:
    """The watched texts that have been on the page since `watch_for_texts`, in the order they appeared."""
    return page.evaluate("() => window.__textsShown")


# --- Screenshots ---------------------------------------------------------------------------------------

MAX_SCREENSHOT_HEIGHT = 12_000  # pixels

# Streamlit scrolls its main area inside the window, so a "full page" is as tall as that area's content.
_CONTENT_HEIGHT_JS = """() => {
    const main = document.querySelector('[data-testid="stMain"]');
    return Math.ceil(Math.max(main ? main.scrollHeight : 0, document.documentElement.scrollHeight));
}"""


def from_the_dataset_to_a_genres_gallery(
    page: Page, server: AppServer, expected: Expected, genre: str, screenshot: Screenshots
) -> None:
    """Both journeys' first steps: the Dataset page and its figures, then a click on `genre`'s bar of the
    genre chart opens that genre's gallery (its URL, movie count and title checked)."""
    open_view(page, server.url_for("/"), expect_text="Usable movies")
    assert metrics(page)["Usable movies"] == f"{expected.usable_movies:,}"
    chart = genre_bars(page, sorted(expected.genres))
    screenshot(page, "dataset")

    click_bar(page, chart, genre)
    expect_url(page, "/genre", {"genre": genre})
    wait_for_text(page, f"{expected.genres[genre]} movies of genre {genre}")
    wait_for_app(page)
    assert page_title(page) == f"Genre gallery: {genre}"
    screenshot(page, "gallery")


def artifact_folder(test_name: str) -> Path:
    """`test-artifacts/browser/<test name>`, the name made safe for a path."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", test_name).strip("-")[:120]
    return ARTIFACTS_DIR / safe


def full_page_screenshot(page: Page, path: Path) -> None:
    """All of the app's content in one PNG: the window is made as tall as the content for the shot."""
    viewport = page.viewport_size
    height = min(page.evaluate(_CONTENT_HEIGHT_JS), MAX_SCREENSHOT_HEIGHT)
    if viewport is None or height <= viewport["height"]:
        page.screenshot(path=str(path), full_page=True, animations="disabled")
        return
    page.set_viewport_size({"width": viewport["width"], "height": height})
    try:
        page.screenshot(path=str(path), full_page=True, animations="disabled")
    finally:
        page.set_viewport_size(viewport)


class Screenshots:
    """Full-page PNGs of one test, numbered in the order taken: `NN-step.png`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.taken: list[Path] = []

    def __call__(self, page: Page, step: str) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", step).strip("-") or "step"
        path = self.folder / f"{len(self.taken) + 1:02d}-{name}.png"
        full_page_screenshot(page, path)
        self.taken.append(path)
        return path


def click_opens(
    page: Page,
    target: Locator,
    path: str,
    params: dict[str, str],
    shown: str | re.Pattern[str],
    timeout: float = STEP_TIMEOUT_MS,
) -> None:
    """Click `target`: the view it opens shows `shown`, and the address bar says `path` with exactly `params`
    (so that a reload or a shared link opens the same view). With `back_returns_to` after it, this checks
    that the click added exactly one history entry: none, and Back skips the view the click was made on;
    two, and Back lands on a view in between."""
    target.click()
    expect_url(page, path, params, timeout=timeout)
    wait_for_text(page, shown, timeout=timeout)
    wait_for_app(page, timeout=timeout)
    assert url_is(page.url, path, params), f"the URL moved on to {page.url}"


def back_returns_to(page: Page, path: str, params: dict[str, str], shown: str | re.Pattern[str]) -> None:
    """The browser's Back shows the view at `path` with `params` again."""
    page.go_back()
    expect_url(page, path, params)
    wait_for_text(page, shown)
    wait_for_app(page)


# --- Predict --------------------------------------------------------------------------------------------

MODEL_TIMEOUT_MS = 120_000  # the first page that predicts loads TensorFlow, the model and the embedder


def prediction_chips(page: Page) -> Locator:
    """The top-3 chips of the Predict page: links to a gallery sorted by similarity to the dropped poster."""
    return page.get_by_test_id("stMain").locator('div[class*="st-key-chips-"] a[href*="sort=similar"]')


def predict_from_the_sidebar(page: Page) -> None:
    """The sidebar's Predict link, until the uploader is drawn (the page loads the model first)."""
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=re.compile("Predict")).click()
    expect_url(page, "/predict")
    wait_for_text(page, "Drop one or more posters", timeout=MODEL_TIMEOUT_MS)
    wait_for_app(page, timeout=MODEL_TIMEOUT_MS)
