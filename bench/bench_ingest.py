"""Ingest speed on the real dataset: a cold build of the catalog against a warm open, and the poster check
in JPEG draft mode against a full decode (the reason draft mode is used), all in one run as ratios.

    python bench/bench_ingest.py [--data-dir DIR] [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import DEFAULT_DATA_DIR, Settings
from core.data.catalog_build import open_catalog
from core.data.ingest.posters import check_poster


def _full_decode(path: Path) -> None:
    with Image.open(path) as image:
        image.load()


def _timed(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as work:
        settings = Settings(args.data_dir, Path(work) / "cache", Path(work) / "runs")
        cold = _timed(lambda: open_catalog(settings, rebuild=True), args.repeats)
        warm = _timed(lambda: open_catalog(settings), args.repeats)
        catalog = open_catalog(settings)
        posters = [Path(p) for p in catalog.usable_movies(include_non_movies=True)["poster_path"]]
    with ThreadPoolExecutor(max_workers=3) as pool:
        draft = _timed(lambda: list(pool.map(check_poster, posters, chunksize=32)), args.repeats)
        full = _timed(lambda: list(pool.map(_full_decode, posters, chunksize=32)), args.repeats)

    rows = [
        ("catalog build, cold (read + decode + write)", f"{cold:.2f} s", "1.00"),
        ("catalog open, warm (fingerprint check only)", f"{warm:.3f} s", f"{cold / warm:.0f}× faster"),
        (f"check {len(posters):,} posters, draft-mode decode", f"{draft:.2f} s", "1.00"),
        (f"decode {len(posters):,} posters in full", f"{full:.2f} s", f"{full / draft:.1f}× slower"),
    ]
    print(f"Ingest benchmark on {args.data_dir} (median of {args.repeats}; page cache warm)")
    width = max(len(row[0]) for row in rows)
    for name, value, ratio in rows:
        print(f"  {name:<{width}}  {value:>9}  {ratio}")


if __name__ == "__main__":
    main()
