"""How many people can predict at once: a bounded load ramp on loopback, real Chromium sessions on the app,
with the server's own share measured apart.

    python bench/bench_load.py [--real] [--steps 1,2,4,8,16] [--baseline-tree DIR] [--no-pin]
                               [--max-p95 60] [--session-timeout 180] [--max-minutes 30] [--keep]

The app runs on 127.0.0.1 through `bench/timed_server.py`, which records every script run's duration on the
server. With `--real` it serves the data, caches and active model of the environment (`POSTER_CACHE_DIR`,
`POSTER_RUNS_DIR`; the similarity embeddings made); without it, the generated test dataset with a tiny
model trained first by `python -m core.train` (64x48 pixels, 3 epochs), in a temporary folder. The server
is pinned to CPU 0 and this script with its Chromium to CPU 1 (`taskset`; `--no-pin` leaves them free), so
that the browsers' work is not counted as the server's. One warm-up session loads the model; then each
step opens N sessions at once (contexts of one Chromium, driven concurrently), and each session:

1. opens /predict and drops a poster of its own (a different file per session) on the uploader;
2. waits for its three genre chips (the time measured: from the upload to the chips on screen);
3. checks that every link on its page carries its own poster's content hash (the SHA-256 prefix that
   `core.serving.uploads` computes), so no session sees another's poster;
4. clicks the first chip and waits for the gallery "sorted by similarity to your poster <its file>".

Per step it prints the browser-perceived p50 / p95 seconds of the whole journey (drop → chips → click →
gallery) and p50 to the chips, the sessions that failed (a timeout, a wrong or missing result, an exception
box), those whose pages showed another session's poster, the server-side p50 / p95 seconds per script run,
the server's CPU seconds per journey (its process tree's user + system time over the step, divided by the
sessions) and its resident memory (VmRSS summed over its process tree, the peak sampled during the step).
The ramp stops at the first step with an error or a p95 above --max-p95: that step is the breaking point.
With `--baseline-tree` (another checkout, e.g. `git archive <rev> | tar x -C DIR`) the same ramp runs on
that app too, in the same run, and the ratios are printed. Not part of the tests: it takes minutes and a
lot of memory.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # so `core` and `tests` import as a script

from playwright.async_api import Browser, async_playwright, expect

from bench.timed_server import cpu_seconds, read_timings, running
from core.app import model_choice
from core.config import PROJECT_ROOT, Settings, get_settings
from core.data.catalog_build import open_catalog
from core.serving.uploads import CONTENT_HASH_CHARS
from tests.browser.helpers import CHROMIUM_ARGS, CHROMIUM_PATH, EXCEPTION_BOX, free_port
from tests.raw_fixture import build_raw_dataset

TRAIN_TIMEOUT_S = 600
WARM_UP_TIMEOUT_S = 600  # the first prediction loads the model and embeds every poster of the dataset
CLICK_TIMEOUT_S = 60  # from the chip's click to the gallery sorted by similarity
VIEWPORT = {"width": 1280, "height": 900}


@dataclass
class SessionResult:
    poster: str
    seconds: float | None = None  # upload → three chips visible
    journey: float | None = None  # upload → chips → click → the gallery sorted by similarity
    error: str | None = None
    mixed_up: bool = False  # a link on its page carried another poster's hash


@dataclass
class StepResult:
    sessions: int
    results: list[SessionResult]
    wall_seconds: float
    rss_peak_mib: float
    rss_after_mib: float
    server_runs: list[float] = field(default_factory=list)  # seconds of each script run on the server
    cpu_seconds: float = 0.0  # the server's CPU seconds over the step
    notes: list[str] = field(default_factory=list)

    @property
    def journeys(self) -> list[float]:
        return sorted(r.journey for r in self.results if r.journey is not None and r.error is None)

    @property
    def cpu_per_journey(self) -> float:
        return self.cpu_seconds / max(1, self.sessions)

    @property
    def times(self) -> list[float]:
        return sorted(r.seconds for r in self.results if r.seconds is not None and r.error is None)

    @property
    def errors(self) -> int:
        return sum(1 for r in self.results if r.error is not None)

    @property
    def mixed_up(self) -> int:
        return sum(1 for r in self.results if r.mixed_up)


def content_hash(data: bytes) -> str:
    """The poster's key in the session and in URLs, as `core.serving.uploads.validate_upload` computes it."""
    return hashlib.sha256(data).hexdigest()[:CONTENT_HASH_CHARS]


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile of sorted `values` (p95 of 20 values is the 19th)."""
    return values[max(0, math.ceil(share * len(values)) - 1)] if values else float("nan")


# --- The server's memory ----------------------------------------------------------------------------------


def process_tree(root: int) -> list[int]:
    """`root` and every process descended from it, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo and len(tree) < 10_000:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def tree_rss_mib(root: int) -> float:
    """VmRSS summed over the process tree of `root`, in MiB."""
    total_kib = 0
    for pid in process_tree(root):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except OSError:
            continue
    return total_kib / 1024


class MemorySampler:
    """The peak of `tree_rss_mib(pid)` while it runs, sampled twice a second in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss_mib(self.pid))
            self._stop.wait(0.5)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.peak = max(self.peak, tree_rss_mib(self.pid))


# --- Setting up: the dataset and a tiny active model --------------------------------------------------------


def prepare_real(count: int) -> tuple[Settings, list[Path]]:
    """The environment's data and active model; `count` posters of the catalog, each a different file."""
    settings = get_settings()
    if model_choice.active_model_id(settings) is None:
        raise SystemExit("--real needs an active model (set one on the Training page)")
    movies = open_catalog(settings).usable_movies().sample(frac=1.0, random_state=1)
    posters, seen = [], set()
    for path in movies["poster_path"]:
        digest = content_hash(Path(path).read_bytes())
        if digest not in seen:
            seen.add(digest)
            posters.append(Path(path))
        if len(posters) == count:
            break
    return settings, posters


def prepare(work: Path) -> tuple[Settings, list[Path]]:
    """The generated dataset, its catalog and a tiny active model under `work`; the readable posters."""
    expected = build_raw_dataset(work / "movie-posters")
    settings = Settings(work / "movie-posters", work / "cache", work / "runs")
    open_catalog(settings)
    command = [sys.executable, "-m", "core.train", "--mode", "fast", "--image-size", "64x48", "--epochs", "3"]
    command += ["--min-movies-per-genre", "5", "--runs-dir", str(settings.runs_dir), "--quiet"]
    command += ["--data-dir", str(settings.data_dir), "--cache-dir", str(settings.cache_dir)]
    print("Training a tiny model with python -m core.train …", flush=True)
    done = subprocess.run(command, cwd=PROJECT_ROOT, timeout=TRAIN_TIMEOUT_S, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the tiny model did not train:\n{done.stderr[-3000:]}")
    [run_id] = [entry.name for entry in settings.runs_dir.iterdir() if entry.is_dir()]
    model_choice.set_active_model(settings, run_id)
    posters = [
        settings.data_dir / "Movie_Poster_Dataset" / str(movie.year) / f"{movie.imdb_id}.jpg"
        for movie in expected.movies
        if movie.poster in ("jpeg", "png")
    ]
    return settings, posters


# --- One session ----------------------------------------------------------------------------------------------


def _poster_param(href: str | None) -> str | None:
    return dict(parse_qsl(urlsplit(href or "").query)).get("poster")


async def predict_session(browser: Browser, url: str, poster: Path, timeout_s: float) -> SessionResult:
    """Open /predict, drop `poster`, time the three chips, check they are this poster's, click one."""
    result = SessionResult(poster.name)
    expected_hash = content_hash(poster.read_bytes())
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        page = await context.new_page()
        page.set_default_timeout(timeout_s * 1000)
        await page.goto(f"{url}/predict", wait_until="domcontentloaded")
        uploader = page.get_by_test_id("stFileUploader").locator('input[type="file"]')
        await uploader.wait_for(state="attached")
        started = time.perf_counter()
        await uploader.set_input_files(str(poster))
        chips = page.locator(f'div[class*="st-key-chips-{expected_hash}"] a')
        await expect(chips).to_have_count(3, timeout=timeout_s * 1000)
        result.seconds = time.perf_counter() - started

        hrefs = [await link.get_attribute("href") for link in await page.locator('a[href*="poster="]').all()]
        others = {_poster_param(href) for href in hrefs} - {expected_hash}
        if others:
            result.mixed_up = True
            result.error = f"links to other posters on the page: {sorted(others)[:3]}"
            return result
        if await page.locator(EXCEPTION_BOX).count():
            result.error = "an exception box on the Predict page"
            return result

        await chips.first.click()
        await page.wait_for_url(
            lambda address: "/genre" in address and _poster_param(address) == expected_hash,
            timeout=CLICK_TIMEOUT_S * 1000,
        )
        main = page.get_by_test_id("stMain")
        try:
            await expect(main).to_contain_text(
                f"Similarity is to your poster {poster.name}", timeout=CLICK_TIMEOUT_S * 1000
            )
        except AssertionError:
            text = await main.inner_text()
            result.mixed_up = "Similarity is to your poster" in text
            result.error = "the gallery is not sorted by similarity to this session's poster"
            return result
        if await page.locator(EXCEPTION_BOX).count():
            result.error = "an exception box on the gallery"
        result.journey = time.perf_counter() - started
    except Exception as error:  # a timeout or a closed page: counted as this session's error, the ramp goes on
        result.error = f"{type(error).__name__}: {' '.join(str(error).split())[:160]}"
    finally:
        await context.close()
    return result


async def run_step(browser: Browser, url: str, posters: list[Path], timeout_s: float) -> list[SessionResult]:
    """All sessions of one step at once, each bounded by `timeout_s` plus the chip's click."""

    async def bounded(poster: Path) -> SessionResult:
        try:
            return await asyncio.wait_for(
                predict_session(browser, url, poster, timeout_s), timeout_s + CLICK_TIMEOUT_S + 30
            )
        except TimeoutError:
            return SessionResult(poster.name, error=f"no result within {timeout_s + CLICK_TIMEOUT_S + 30:.0f} s")

    return list(await asyncio.gather(*(bounded(poster) for poster in posters)))


# --- The ramp ----------------------------------------------------------------------------------------------------


HEADER = (
    f"{'tabs':>4}  {'journey p50':>11}  {'journey p95':>11}  {'chips p50':>9}  {'errors':>6}  {'mixed up':>8}  "
    f"{'server run p50':>14}  {'p95':>6}  {'runs':>5}  {'CPU s/journey':>13}  {'RSS peak MiB':>12}"
)


def table_row(step: StepResult) -> str:
    journeys, chips, server = step.journeys, step.times, sorted(step.server_runs)
    return (
        f"{step.sessions:>4}  {median_or_nan(journeys):>11.2f}  {percentile(journeys, 0.95):>11.2f}  "
        f"{median_or_nan(chips):>9.2f}  {step.errors:>6}  {step.mixed_up:>8}  "
        f"{median_or_nan(server):>14.3f}  {percentile(server, 0.95):>6.3f}  {len(server):>5}  "
        f"{step.cpu_per_journey:>13.2f}  {step.rss_peak_mib:>12.0f}"
    )


def median_or_nan(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def print_table(steps: list[StepResult]) -> None:
    print(HEADER)
    print("-" * len(HEADER))
    for step in steps:
        print(table_row(step))


async def ramp(
    args: argparse.Namespace, url: str, server_pid: int, posters: list[Path], timings: Path
) -> list[StepResult]:
    deadline = time.monotonic() + args.max_minutes * 60
    steps: list[StepResult] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM_PATH), args=CHROMIUM_ARGS)
        try:
            print("Warm-up session (loads the model, embeds the dataset for similarity) …", flush=True)
            [warm] = await run_step(browser, url, posters[-1:], WARM_UP_TIMEOUT_S)
            if warm.error:
                raise SystemExit(f"the warm-up session failed: {warm.error}")
            print(f"Warm-up: chips after {warm.seconds:.1f} s. Server RSS {tree_rss_mib(server_pid):.0f} MiB.\n")
            print(HEADER)
            for count in args.steps:
                if time.monotonic() > deadline:
                    print(f"Stopped before {count} sessions: the --max-minutes budget is spent.")
                    break
                started = time.monotonic()
                seen, cpu = len(read_timings(timings)), cpu_seconds(server_pid)
                with MemorySampler(server_pid) as memory:
                    results = await run_step(browser, url, posters[:count], args.session_timeout)
                step = StepResult(count, results, time.monotonic() - started, memory.peak, tree_rss_mib(server_pid))
                step.cpu_seconds = cpu_seconds(server_pid) - cpu
                step.server_runs = [run["seconds"] for run in read_timings(timings, seen)]
                steps.append(step)
                print(table_row(step), flush=True)
                for result in results:
                    if result.error:
                        print(f"    {result.poster}: {result.error}")
                p95 = percentile(step.times, 0.95)
                if step.errors or not p95 <= args.max_p95:
                    reason = f"{step.errors} error(s)" if step.errors else f"p95 {p95:.1f} s > {args.max_p95:.0f} s"
                    print(f"\nBreaking point: {count} concurrent sessions ({reason}).")
                    break
                await asyncio.sleep(2)  # let the server settle between steps
            else:
                print(f"\nNo breaking point up to {args.steps[-1]} concurrent sessions.")
        finally:
            await browser.close()
    return steps


def serve_and_ramp(args: argparse.Namespace, tree: Path, settings: Settings, posters: list[Path], work: Path):
    """Start the app of `tree` (pinned unless --no-pin), ramp the sessions against it, stop it."""
    environment = {
        **os.environ,
        **settings.as_environment(),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    timings = work / f"timings-{len(list(work.glob('timings-*.jsonl')))}.jsonl"
    port = free_port()
    with running(tree, environment, timings, port, None if args.no_pin else 0) as server:
        print(f"App of {tree} on 127.0.0.1:{port} (server pid {server.pid}), {len(posters)} posters to drop.")
        return asyncio.run(ramp(args, f"http://127.0.0.1:{port}", server.pid, posters, timings))


def print_targets(steps: list[StepResult], real: bool) -> None:
    by_tabs = {step.sessions: step for step in steps}
    print("\nTargets" + ("" if real else " (meant for --real)") + ":")
    if 16 in by_tabs:
        step = by_tabs[16]
        print(f"  at 16 tabs: {step.errors} errors, {step.mixed_up} tabs shown another's poster (target 0 and 0)")
    if 4 in by_tabs:
        p95 = percentile(sorted(by_tabs[4].server_runs), 0.95)
        print(f"  server-side p95 per script run at 4 tabs: {p95:.3f} s (target ≤ 1 s)")
    if 1 in by_tabs and 16 in by_tabs:
        ratio = by_tabs[16].cpu_per_journey / max(1e-9, by_tabs[1].cpu_per_journey)
        print(f"  CPU seconds per journey, 16 tabs / 1 tab: {ratio:.2f}× (target ≤ 1.5×)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", action="store_true", help="the environment's data and active model")
    parser.add_argument("--steps", default="1,2,4,8,16", help="concurrent sessions per step (comma-separated)")
    parser.add_argument("--baseline-tree", type=Path, help="another checkout of the app, ramped in the same run")
    parser.add_argument("--no-pin", action="store_true", help="leave the server and the browsers on any CPU")
    parser.add_argument("--max-p95", type=float, default=60.0, help="seconds: a step above this p95 stops the ramp")
    parser.add_argument("--session-timeout", type=float, default=180.0, help="seconds a session may wait for chips")
    parser.add_argument("--max-minutes", type=float, default=30.0, help="no new step starts after this many minutes")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (dataset, runs, server log)")
    args = parser.parse_args()
    args.steps = sorted({int(step) for step in args.steps.split(",")})
    if not CHROMIUM_PATH.is_file():
        print(f"Chromium is not at {CHROMIUM_PATH}: apt-get install chromium", file=sys.stderr)
        return 2
    if not args.no_pin:
        os.sched_setaffinity(0, {1})  # this script and the Chromium it starts; the server gets CPU 0

    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    try:
        settings, posters = prepare_real(args.steps[-1] + 1) if args.real else prepare(work)
        hashes = {content_hash(poster.read_bytes()) for poster in posters}
        if len(hashes) != len(posters) or len(posters) < args.steps[-1] + 1:
            print(f"need {args.steps[-1] + 1} different posters, the dataset has {len(hashes)}", file=sys.stderr)
            return 2
        trees = {"now": PROJECT_ROOT} | ({"baseline": args.baseline_tree.resolve()} if args.baseline_tree else {})
        ramps = {label: serve_and_ramp(args, tree, settings, posters, work) for label, tree in trees.items()}
        for label, steps in ramps.items():
            print(f"\nLoad ramp ({label}: {trees[label]}): per concurrent tab, seconds")
            print_table(steps)
            print_targets(steps, args.real)
        if "baseline" in ramps:
            print("\nBaseline / now, per step: journey p50, server run p95, CPU s per journey")
            for old, new in zip(ramps["baseline"], ramps["now"], strict=False):
                ratios = (
                    median_or_nan(old.journeys) / median_or_nan(new.journeys),
                    percentile(sorted(old.server_runs), 0.95) / percentile(sorted(new.server_runs), 0.95),
                    old.cpu_per_journey / max(1e-9, new.cpu_per_journey),
                )
                print(f"  {new.sessions:>3} tabs: " + " · ".join(f"{ratio:.2f}×" for ratio in ratios))
        return 0
    finally:
        if args.keep:
            print(f"Kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
