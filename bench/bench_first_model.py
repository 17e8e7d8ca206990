"""How long a new user waits for a first model: from an empty cache until the default run is the active model.

Everything the app does on a first visit and a click on "Start the fast default run", in order, each timed:
the catalog built from the raw files, then the run launched as the app launches it (`core.app.runs`), which
ports the backbone's weights, compiles it, embeds every poster, trains the heads, their refit and the
temporal twin, and adopts itself as the active model. The run's own phases come from its metrics.json.

    python bench/bench_first_model.py [--data DIR] [--work DIR] [--no-temporal-twin]

The work folder must not hold a cache yet (a fresh temporary one by default).
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

from core.app import model_choice, runs
from core.config import Settings, get_settings
from core.data.catalog_build import open_catalog

TARGET_SECONDS = 4 * 60
POLL_SECONDS = 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=get_settings().data_dir)
    parser.add_argument("--work", type=Path, default=None, help="an empty folder (default: a new temporary one)")
    parser.add_argument(
        "--no-temporal-twin", action="store_true", help="the run as started with the Start form's twin left out"
    )
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="first-model-"))
    if (work / "cache").exists():
        sys.exit(f"{work / 'cache'} exists: the bench starts from an empty cache")
    settings = Settings(args.data, work / "cache", work / "runs")
    os.environ.update(settings.as_environment())

    started = time.monotonic()
    catalog = open_catalog(settings)
    catalog_seconds = time.monotonic() - started
    print(f"catalog built: {catalog_seconds:.1f} s ({len(catalog.usable_movies()):,} usable movies)", flush=True)

    run_id = runs.launch_run(settings, "fast", ["--no-temporal-twin"] if args.no_temporal_twin else [])
    while model_choice.active_model_id(settings) != run_id:
        run = runs.read_run(settings, run_id)
        if run.state in runs.FINAL_STATES and run.state != "finished":
            sys.exit(f"the run ended {run.state}: see {settings.runs_dir / run_id / 'train.log'}")
        time.sleep(POLL_SECONDS)
    total = time.monotonic() - started

    timing = json.loads((settings.runs_dir / run_id / "metrics.json").read_text()).get("timing", {})
    run_seconds = total - catalog_seconds
    print(f"\n{'phase':<34}{'seconds':>9}")
    print(f"{'catalog (raw files read)':<34}{catalog_seconds:>9.1f}")
    print(f"{'run, launch to active model':<34}{run_seconds:>9.1f}")
    phases = {name: seconds for name, seconds in timing.items() if name != "total_s"}
    for name, seconds in phases.items():
        print(f"{'  ' + name:<34}{seconds:>9.1f}")
    if "total_s" in timing:  # the rest: start-up, the weights' port, the temporal twin, evaluation and saving
        print(f"{'  the rest (twin, start, save)':<34}{timing['total_s'] - sum(phases.values()):>9.1f}")
    print(f"{'empty cache to active model':<34}{total:>9.1f}")
    print(f"\nTarget: at most {TARGET_SECONDS / 60:.0f} min: {'met' if total <= TARGET_SECONDS else 'NOT met'}")


if __name__ == "__main__":
    main()
