"""Speed budgets per page: the server's time for a new tab's first visit and for a warm rerun, and the
browser's time until the page is complete, for every page of the app, against the budgets.

    POSTER_CACHE_DIR=... POSTER_RUNS_DIR=... python bench/bench_pages.py [--repeats 5]
        [--baseline-tree DIR [--baseline-cache DIR]] [--no-pin]

It uses the data, caches and runs of the environment (as the app does) and needs an active model, a
second finished run to compare with, and the similarity embeddings made (the Predict page says when they
are not). The app is started by `bench/timed_server.py`, which times every script run on the server; the
server is pinned to CPU 0 and Chromium to CPU 1 (`--no-pin` to leave them free), so that the browser's
work does not count as the server's.

Per page, over `--repeats` new tabs (medians): the server-side seconds of the tab's first visit (all its
script runs, after TensorFlow and the model were loaded once: that load is its own line) and of a warm
rerun (the "R" key), and the browser's time from navigation until its last change (the later of the last
DOM mutation and the last image received). Predict is timed from the drop of a poster to its three chips,
and the chip click from the click to the similarity gallery's last card. With `--baseline-tree` (e.g. an
older checkout, `git archive <rev> | tar x -C DIR`) the same is measured there, in the same run, and each
figure gets its ratio (baseline / now).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playwright.sync_api import BrowserContext, Page, sync_playwright

from bench.page_profile import WATCH_PHASES_JS, profile_visit
from bench.timed_server import read_timings, running
from core.app import model_choice, runs
from core.config import PROJECT_ROOT, Settings, get_settings
from core.data.catalog_build import open_catalog

CHROMIUM = "/usr/bin/chromium"
QUIET_MS = 700  # the page counts as complete once nothing changed for this long
STEP_TIMEOUT_S = 240
VIEWPORT = {"width": 1400, "height": 1000}
# The budgets, in seconds: warm rerun and first visit on the server; complete in Chromium pinned to one core,
# where Streamlit's frontend alone takes about half a second to start in a new tab.
WARM_BUDGET, FIRST_BUDGET = 0.3, 1.5
COMPLETE_BUDGET = {"Dataset": 3.0}
COMPLETE_DEFAULT, CHIP_BUDGET = 2.5, 1.5

_SETTLED_JS = """quiet => {
    const app = document.querySelector('[data-testid="stApp"]');
    if (!app || app.dataset.testScriptState !== "notRunning" || app.dataset.testConnectionState !== "CONNECTED")
        return false;
    const images = [...document.images].every(image => image.complete);
    return images && performance.now() - window.__lastChange > quiet;
}"""
# The later of the last DOM change and the last image received, after `since` (ms since navigation).
_COMPLETE_JS = """since => {
    const images = performance.getEntriesByType("resource")
        .filter(entry => entry.initiatorType === "img" && entry.startTime >= since)
        .map(entry => entry.responseEnd);
    return Math.max(window.__lastChange, ...images) - since;
}"""


@dataclass
class Figures:
    first: list[float] = field(default_factory=list)  # server seconds of a new tab's first visit
    warm: list[float] = field(default_factory=list)  # server seconds of a rerun
    complete: list[float] = field(default_factory=list)  # browser seconds until complete
    runs: list[int] = field(default_factory=list)  # script runs a first visit took


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


class Timings:
    """The script runs the timed server recorded, read as they come."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen = 0

    def new(self) -> list[dict]:
        fresh = read_timings(self.path, self.seen)
        self.seen += len(fresh)
        return fresh


@contextmanager
def timed_server(tree: Path, settings: Settings, timings: Path, pin: bool) -> Iterator[str]:
    port = 8700 + os.getpid() % 200 + (1 if tree != PROJECT_ROOT else 0)
    environment = {
        **os.environ,
        **settings.as_environment(),
    }
    with running(tree, environment, timings, port, 0 if pin else None):
        yield f"http://127.0.0.1:{port}"


def settle(page: Page) -> None:
    page.wait_for_function(_SETTLED_JS, arg=QUIET_MS, timeout=STEP_TIMEOUT_S * 1000, polling=100)
    if page.locator('[data-testid="stException"]').count():
        raise RuntimeError(f"the page {page.url} shows an exception")


def script_seconds(records: list[dict]) -> tuple[float, int]:
    """Server seconds of the whole-page script runs among `records`, and how many there were."""
    pages = [record for record in records if not record["fragment"]]
    return sum(record["seconds"] for record in pages), len(pages)


def rerun(page: Page, timings: Timings) -> float:
    """Press R (Streamlit's rerun key) and return the server seconds of that rerun."""
    timings.new()
    # The key goes to the page, not to a focused widget (which would take the "r"); no click, since a click
    # at any fixed spot may land on a link or the sidebar's resize handle.
    deadline = time.monotonic() + STEP_TIMEOUT_S
    records: list[dict] = []
    pressed = 0.0
    while not [record for record in records if not record["fragment"]]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no rerun of {page.url} was recorded")
        if time.monotonic() - pressed > 5:  # a key lost to a redraw in progress is pressed again
            page.evaluate("() => document.activeElement && document.activeElement.blur()")
            page.keyboard.press("r")
            pressed = time.monotonic()
        time.sleep(0.05)
        records += timings.new()
    settle(page)
    return script_seconds(records + timings.new())[0]


def visit(tabs: BrowserContext, url: str, timings: Timings) -> tuple[Page, float, float, int]:
    """A new tab's first visit of `url`: (the page, server seconds, browser seconds to complete, runs)."""
    page = tabs.new_page()
    timings.new()
    page.goto(url, timeout=STEP_TIMEOUT_S * 1000)
    settle(page)
    complete = page.evaluate(_COMPLETE_JS, 0) / 1000
    server, count = script_seconds(timings.new())
    return page, server, complete, count


def drop_and_click(
    tabs: BrowserContext, base: str, poster: Path, timings: Timings
) -> tuple[float, float, float, float, int]:
    """Predict: (server s of the drop, browser s drop → complete, warm rerun s, chip click browser s, runs)."""
    page, _, _, _ = visit(tabs, f"{base}/predict", timings)
    since = page.evaluate("performance.now()")
    timings.new()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(poster))
    chips = page.locator('a[href*="sort=similar"]')
    chips.nth(2).wait_for(timeout=STEP_TIMEOUT_S * 1000)
    settle(page)
    complete = page.evaluate(_COMPLETE_JS, since) / 1000
    server, count = script_seconds(timings.new())
    warm = rerun(page, timings)
    since = page.evaluate("performance.now()")
    chips.first.click()
    page.wait_for_url("**/genre?**", timeout=STEP_TIMEOUT_S * 1000)
    settle(page)
    chip = page.evaluate(_COMPLETE_JS, since) / 1000
    page.close()
    return server, complete, warm, chip, count


def measure(
    tree: Path,
    settings: Settings,
    views: dict[str, str],
    poster: Path,
    repeats: int,
    pin: bool,
    profile: bool = False,
    predict: bool = True,
) -> dict:
    """Every page's figures on the app of `tree`; also the one-off TensorFlow + model load, and with `profile`
    one more visit per page with the browser's phases and JavaScript profile."""
    folder = Path(tempfile.mkdtemp(prefix="bench-pages-"))
    timings_path = folder / "timings.jsonl"
    results: dict[str, Figures] = {name: Figures() for name in [*views, *["Predict (drop a poster)"] * predict]}
    chip: list[float] = []
    with timed_server(tree, settings, timings_path, pin) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        # Tabs of one browser, as a user's: they share its HTTP cache, so a new tab does not fetch and compile
        # the app's JavaScript again (the first visits below warm it), but each opens its own session.
        tabs = browser.new_context(viewport=VIEWPORT)
        tabs.add_init_script(WATCH_PHASES_JS)
        timings = Timings(timings_path)
        # Once per server: TensorFlow and the model (the first Predict visit), then every page once, cold.
        page, load, _, _ = visit(tabs, f"{base}/predict", timings)
        page.close()
        for url in views.values():
            visit(tabs, f"{base}{url}", timings)[0].close()
        if predict:
            drop_and_click(tabs, base, poster, timings)
        for _ in range(repeats):
            for name, url in views.items():
                page, server, complete, count = visit(tabs, f"{base}{url}", timings)
                figures = results[name]
                figures.first.append(server)
                figures.complete.append(complete)
                figures.runs.append(count)
                figures.warm.append(rerun(page, timings))
                page.close()
            if not predict:
                continue
            server, complete, warm, chip_seconds, count = drop_and_click(tabs, base, poster, timings)
            predict = results["Predict (drop a poster)"]
            predict.first.append(server)
            predict.complete.append(complete)
            predict.warm.append(warm)
            predict.runs.append(count)
            chip.append(chip_seconds)
        profiles = (
            {} if not profile else {name: profile_visit(tabs, f"{base}{url}", settle) for name, url in views.items()}
        )
        browser.close()
    return {"load": load, "pages": results, "chip": chip, "profiles": profiles}


def views_of(settings: Settings) -> tuple[dict[str, str], Path]:
    catalog = open_catalog(settings)
    counts = catalog.genre_counts()
    largest = max(counts, key=counts.get)
    finished = [run for run in runs.list_runs(settings) if run.has_model and not run.is_active]
    active = model_choice.active_model_id(settings)
    if active is None or len(finished) < 2:
        sys.exit("needs an active model and a second finished run (copy a run folder under another id)")
    other = next(run.run_id for run in finished if run.run_id != active)
    movies = catalog.usable_movies()
    movie = movies.iloc[len(movies) // 2]
    views = {
        "Dataset": "/dataset",
        f"Genre gallery ({largest}, {counts[largest]:,} movies)": "/genre?" + urlencode({"genre": largest}),
        "Movie": f"/movie?movie={movie['imdb_id']}",
        f"Training ({len(finished)} finished runs)": "/training",
        "A run's detail": f"/training?run={active}",
        "Compare two runs": "/training?" + urlencode({"compare": f"{active},{other}"}),
    }
    return views, Path(movies.iloc[len(movies) // 3]["poster_path"])


def line(name: str, figures: Figures, baseline: Figures | None) -> str:
    budget = COMPLETE_BUDGET.get(name, COMPLETE_DEFAULT)
    cells = []
    for values, old, target in (
        (figures.first, baseline.first if baseline else None, FIRST_BUDGET),
        (figures.warm, baseline.warm if baseline else None, WARM_BUDGET),
        (figures.complete, baseline.complete if baseline else None, budget),
    ):
        now = median(values)
        mark = "ok" if now <= target else "OVER"
        ratio = f" (was {median(old):.2f}, {median(old) / now:.1f}×)" if old else ""
        cells.append(f"{now:6.2f} ≤{target:.1f} {mark:<4}{ratio:<18}")
    return f"  {name:<42} " + " ".join(f"{cell:<36}" for cell in cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="new tabs per page (medians are reported)")
    parser.add_argument("--baseline-tree", type=Path, help="another checkout of the app to compare with")
    parser.add_argument(
        "--baseline-cache", type=Path, help="the baseline's own cache folder (when its catalog format differs)"
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin the server and the browser to CPUs")
    parser.add_argument(
        "--pages", help="only the pages whose name holds one of these comma-separated words (e.g. run,Movie)"
    )
    parser.add_argument("--no-predict", action="store_true", help="leave out Predict and the chip click")
    parser.add_argument(
        "--profile", action="store_true", help="also say where each page's time goes in the browser (one visit)"
    )
    args = parser.parse_args()
    pin = not args.no_pin and os.cpu_count() and os.cpu_count() >= 2
    if pin:
        os.sched_setaffinity(0, {1})  # this script and the Chromium it starts; the server gets CPU 0
    settings = get_settings()
    views, poster = views_of(settings)
    if args.pages:
        words = [word.strip().lower() for word in args.pages.split(",") if word.strip()]
        views = {name: url for name, url in views.items() if any(word in name.lower() for word in words)}
    trees = {"now": PROJECT_ROOT} | ({"baseline": args.baseline_tree.resolve()} if args.baseline_tree else {})
    measured = {}
    for label, tree in reversed(trees.items()):
        print(f"Measuring the app in {tree} ({args.repeats} tabs per page)…", flush=True)
        served = settings
        if label == "baseline" and args.baseline_cache:
            served = Settings(settings.data_dir, args.baseline_cache.resolve(), settings.runs_dir)
        profile = args.profile and label == "now"
        measured[label] = measure(tree, served, views, poster, args.repeats, bool(pin), profile, not args.no_predict)
    now, before = measured["now"], measured.get("baseline")
    load = load_before = now["load"]
    if before:
        load_before = before["load"]
    print(f"\nData: {settings.data_dir} · server pinned to CPU 0, Chromium to CPU 1: {bool(pin)}")
    print(f"Loading TensorFlow and the model (a server's first Predict visit): {load:.1f} s", end="")
    print(f" (baseline {load_before:.1f} s)" if before else "")
    header = "seconds, median (baseline/now)" if before else "seconds, median"
    print(f"\n  {'page':<42} {'first visit (server)':<36} {'warm rerun (server)':<36} {'complete (browser)':<36}")
    print(f"  {'':<42} {header}")
    for name, figures in now["pages"].items():
        print(line(name, figures, before["pages"][name] if before else None))
    if now["chip"]:
        chip = median(now["chip"])
        ratio = f" (was {median(before['chip']):.2f}, {median(before['chip']) / chip:.1f}×)" if before else ""
        print(f"  {'Chip click → similarity gallery (browser)':<42} {chip:6.2f} ≤{CHIP_BUDGET:.1f}{ratio}")
    runs_per_visit = {name: max(figures.runs) for name, figures in now["pages"].items()}
    print(f"\nScript runs per first visit (max): {runs_per_visit}")
    for name, profile in now["profiles"].items():
        print(f"\n{name}, one more new tab in the browser:")
        print("\n".join(f"  {text}" for text in profile.lines()))


if __name__ == "__main__":
    main()
