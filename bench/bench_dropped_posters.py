"""What keeping a dropped poster for its links costs, against validating its upload (which every drop pays).

    python bench/bench_dropped_posters.py [--posters N] [--kept N]

Each poster is a synthetic ~300×450 JPEG (`bench_uploads.make_posters`). "keep" writes it as a PNG into a
folder that already holds `--kept` posters (about what 500 MB holds of real ones), then runs the eviction
that every write runs, which lists the folder; "load" is what a new session opening the poster's link
pays before it embeds the poster again. Figures are medians per poster, and their ratio to validation.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_uploads import make_posters
from core.config import Settings
from core.serving.dropped_posters import evict, keep_dropped, load_dropped
from core.serving.uploads import validate_upload


def fill(settings: Settings, count: int) -> None:
    """`count` kept posters' files (small: the eviction's listing cost depends on their number, not size)."""
    folder = settings.dropped_posters_dir
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(count):
        name = f"{number:032x}"
        (folder / f"{name}.png").write_bytes(b"\x89PNG" + bytes(60))
        (folder / f"{name}.json").write_text('{"filename": "poster.jpg"}')


def median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posters", type=int, default=30)
    parser.add_argument("--kept", type=int, default=2500)
    args = parser.parse_args()
    uploads = make_posters(args.posters, seed=3)

    with tempfile.TemporaryDirectory() as work:
        settings = Settings(data_dir=Path(work) / "data", cache_dir=Path(work) / "cache", runs_dir=Path(work) / "runs")
        fill(settings, args.kept)
        validating, keeping, loading, hashes = [], [], [], set()
        for data in uploads:
            started = time.perf_counter()
            poster = validate_upload(data, "poster.jpg")
            validating.append(time.perf_counter() - started)
            hashes.add(poster.content_hash)
            started = time.perf_counter()
            keep_dropped(settings, [poster])
            keeping.append(time.perf_counter() - started)
            started = time.perf_counter()
            load_dropped(settings, poster.content_hash)
            loading.append(time.perf_counter() - started)
        started = time.perf_counter()
        evict(settings)
        scan = time.perf_counter() - started
        folder = settings.dropped_posters_dir
        kept_bytes = sum(path.stat().st_size for path in folder.iterdir() if path.name.partition(".")[0] in hashes)

    base = median_ms(validating)
    print(f"{args.posters} posters of about 300×450, into a folder holding {args.kept:,} kept posters")
    print(f"validate the upload (baseline): {base:7.2f} ms per poster")
    print(
        f"keep it (PNG, write, evict):    {median_ms(keeping):7.2f} ms  ({median_ms(keeping) / base:.2f}× validation)"
    )
    print(
        f"load it back (a new session):   {median_ms(loading):7.2f} ms  ({median_ms(loading) / base:.2f}× validation)"
    )
    print(f"eviction's listing alone:       {scan * 1000:7.2f} ms  ({scan * 1000 / base:.2f}× validation)")
    print(f"kept on disk per poster:        {kept_bytes / max(1, len(hashes)) / 1024:7.1f} KB")


if __name__ == "__main__":
    main()
