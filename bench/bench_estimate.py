"""Does the time estimate hold? A default fast run on the real data, its estimate beside its duration.

Run from the project root: `python bench/bench_estimate.py [--data DIR] [--work DIR] [--at SECONDS] [--warm]`.
With a fresh `--work` folder the run starts from an empty cache (no weights converted, no poster embedded);
`--warm` reuses the folder's cache from an earlier call, so only the heads and the twin are left to do.

Prints, in minutes, the estimate the Start form shows (measured here just before the run, as the form does),
the estimate the progress panel shows `--at` seconds into the run (its elapsed time plus `time_left`), the
run's actual duration, and each estimate's error in percent of the actual. The statuses seen are kept in
the work folder (estimate-statuses.json) to replay.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # so `core` imports when run as a script

from core.app import estimate, machine_speed, remaining_time, runs
from core.config import get_settings
from core.data.catalog_build import open_catalog
from core.training.config import make_config

ROOT = Path(__file__).resolve().parent.parent
POLL_SECONDS = 2.0  # as often as the progress panel reads status.json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(get_settings().data_dir), help="the dataset (default: the app's)")
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "bench-estimate"))
    parser.add_argument("--at", type=float, default=60.0, help="seconds into the run when the panel is read")
    parser.add_argument("--warm", action="store_true", help="keep the work folder's cache from an earlier call")
    args = parser.parse_args()
    work = Path(args.work)
    if not args.warm and (work / "cache").exists():
        sys.exit(f"{work / 'cache'} exists: remove it for a cold run, or pass --warm")
    os.environ.update(
        POSTER_DATA_DIR=args.data, POSTER_CACHE_DIR=str(work / "cache"), POSTER_RUNS_DIR=str(work / "runs")
    )
    settings = get_settings()
    catalog = open_catalog(settings)
    config = make_config("fast").to_json()
    all_runs = runs.list_runs(settings)
    size = tuple(int(side) for side in str(config["image_size"]).split("x"))
    sample = list(catalog.usable_movies()["poster_path"].head(machine_speed.SAMPLE_POSTERS))
    rate = machine_speed.measure_posters_per_second(
        size, sample, settings.weights_dir, config["backbone"], settings.compiled_models_dir
    )
    epoch_seconds = machine_speed.measure_head_epoch_seconds(*machine_speed.head_shape(catalog, config))
    plan = estimate.plan_for(settings, catalog, config, all_runs, rate, epoch_seconds)
    print(
        f"measured {rate:.1f} posters/s and {epoch_seconds:.2f} s a head epoch; "
        f"{plan.posters_to_embed} posters to embed",
        flush=True,
    )

    run_dir = settings.runs_dir / f"bench-{time.strftime('%Y%m%d-%H%M%S')}"
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "core.train", "--mode", "fast", "--run-dir", str(run_dir), "--quiet"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    statuses: list[dict] = []
    panel_total = None
    while process.poll() is None:
        time.sleep(POLL_SECONDS)
        run = runs.read_run(settings, run_dir.name)
        if run.status and (not statuses or run.status.get("updated_at") != statuses[-1].get("updated_at")):
            statuses.append(dict(run.status, seen_after=round(time.monotonic() - started, 1)))
        if panel_total is None and time.monotonic() - started >= args.at and statuses:
            left = remaining_time.time_left(plan, statuses, run.history, int(config["patience"]))
            panel_total = time.monotonic() - started + left.seconds
            print(f"at {args.at:.0f} s: {left.step}, {left.seconds / 60:.1f} min left", flush=True)
    actual = time.monotonic() - started
    (work / "estimate-statuses.json").write_text(json.dumps(statuses, indent=1))
    state = runs.read_run(settings, run_dir.name).state
    print(f"run {run_dir.name} {state}")
    print(f"{'estimate':<28}{'minutes':>9}{'error %':>9}")
    print(f"{'form (before the run)':<28}{plan.total_seconds / 60:>9.1f}{_error(plan.total_seconds, actual):>9.0f}")
    if panel_total is not None:
        print(f"{f'panel at {args.at:.0f} s':<28}{panel_total / 60:>9.1f}{_error(panel_total, actual):>9.0f}")
    print(f"{'actual':<28}{actual / 60:>9.1f}")


def _error(estimated: float, actual: float) -> float:
    return 100 * (estimated - actual) / actual


if __name__ == "__main__":
    main()
