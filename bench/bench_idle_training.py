"""CPU time of the app server while two Training tabs sit idle, with 8 runs (one of 300,000 epochs).

    python bench/bench_idle_training.py [--baseline-tree /tmp/baseline] [--seconds 60]

Each tree (this checkout, and the baseline's if given) serves a generated dataset and a temporary runs
folder of seven small finished runs and one with a 300,000-epoch history.json; two Chromium tabs open the
Training page, wait until it is drawn, then stay idle while the server's CPU seconds are counted (/proc).
Prints the seconds per tree and, with a baseline, the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playwright.sync_api import sync_playwright

from bench.bench_pages import CHROMIUM
from bench.timed_server import cpu_seconds, running
from core.config import CACHE_DIR_ENV, DATA_DIR_ENV, PROJECT_ROOT, RUNS_DIR_ENV
from tests.raw_fixture import build_raw_dataset
from tests.test_long_runs import history, write_long_run

LOAD_TIMEOUT_S = 180


def make_runs(runs_dir: Path) -> None:
    write_long_run(runs_dir)
    for n in range(7):
        path = write_long_run(runs_dir, f"2020010{n + 2}-000000-fast-r{n}")
        (path / "history.json").write_text(json.dumps(history(20, 5)))


def idle_cpu(tree: Path, work: Path, seconds: float, port: int) -> float:
    environment = {
        **os.environ,
        DATA_DIR_ENV: str(work / "data"),
        CACHE_DIR_ENV: str(work / f"cache-{port}"),
        RUNS_DIR_ENV: str(work / "runs"),
    }
    with running(tree, environment, work / f"timings-{port}.jsonl", port) as server, sync_playwright() as play:
        browser = play.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        tabs = browser.new_context()
        for _ in range(2):
            page = tabs.new_page()
            page.goto(f"http://127.0.0.1:{port}/training")
            page.get_by_text("Open a run by its id for its details").wait_for(timeout=LOAD_TIMEOUT_S * 1000)
        time.sleep(5)  # the last page run's tail
        before = cpu_seconds(server.pid)
        time.sleep(seconds)
        spent = cpu_seconds(server.pid) - before
        browser.close()
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-tree", type=Path, help="a checkout of the code to compare with")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-idle-") as scratch:
        work = Path(scratch)
        build_raw_dataset(work / "data")
        make_runs(work / "runs")
        current = idle_cpu(PROJECT_ROOT, work, args.seconds, 8911)
        print(f"this tree: {current:.2f} CPU s in {args.seconds:.0f} s, two idle Training tabs, 8 runs")
        if args.baseline_tree:
            baseline = idle_cpu(args.baseline_tree, work, args.seconds, 8912)
            print(f"baseline:  {baseline:.2f} CPU s; this tree / baseline = {current / baseline:.3f}")


if __name__ == "__main__":
    main()
