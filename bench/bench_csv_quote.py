"""CSV reading time after one stray quote: a manifest of 250 KB, 500 KB and 1 MB whose tenth row opens a
quoted field that is never closed, against the same file without the stray quote, read in the same run.

    python bench/bench_csv_quote.py [--sizes 250,500,1000] [--repeats N] [--give-up SECONDS]

Reading is linear when "per KB" stays near 1.00 from one size to the next (the time ratio follows the size
ratio) and the stray quote costs about what a clean file does ("vs clean" near 1). A size whose read takes
longer than `--give-up` seconds ends the table, so that a slow reader cannot hang the benchmark.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.data.ingest.csv_layouts import MANIFEST_COLUMNS
from core.data.ingest.csv_rows import read_csv

HEADER = "id,title,year,genres,poster\n"
STRAY_ROW = 10  # the row whose title opens a quote that no later line closes


def manifest(size_kb: int, stray_quote: bool) -> bytes:
    """A manifest of about `size_kb` KB of ordinary rows, the tenth with a stray quote if asked."""
    lines, total, number = [HEADER], len(HEADER), 0
    while total < size_kb * 1000:
        number += 1
        title = f'"Movie {number}' if stray_quote and number == STRAY_ROW else f"Movie {number}"
        line = f"m{number},{title},{1950 + number % 70},Drama,m{number}.jpg\n"
        lines.append(line)
        total += len(line)
    return "".join(lines).encode("utf-8")


def timed_read(path: Path, repeats: int, give_up: float) -> tuple[float, int]:
    """(median seconds, rows kept) of reading the file; stops repeating once a read passes `give_up`."""
    durations, rows = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        rows = len(read_csv(path, path.name, MANIFEST_COLUMNS).rows)
        durations.append(time.perf_counter() - started)
        if durations[-1] > give_up:
            break
    return statistics.median(durations), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="250,500,1000", help="file sizes in KB")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--give-up", type=float, default=60.0, help="seconds one read may take")
    args = parser.parse_args()

    print(f"CSV read after one stray quote (row {STRAY_ROW}), median of {args.repeats}")
    print(f"  {'size':>8}  {'rows':>7}  {'stray quote':>11}  {'clean':>8}  {'vs clean':>8}  {'per KB':>6}  rows kept")
    first: tuple[int, float] | None = None
    with tempfile.TemporaryDirectory() as work:
        for size_kb in (int(value) for value in args.sizes.split(",")):
            stray_path, clean_path = Path(work) / "stray.csv", Path(work) / "clean.csv"
            stray_path.write_bytes(manifest(size_kb, stray_quote=True))
            clean_path.write_bytes(manifest(size_kb, stray_quote=False))
            stray, kept = timed_read(stray_path, args.repeats, args.give_up)
            clean, rows = timed_read(clean_path, args.repeats, args.give_up)
            first = first or (size_kb, stray)
            # Time per KB against the smallest size's: 1.00 is linear, a quadratic reader doubles it per doubling.
            per_kb = (stray / size_kb) / (first[1] / first[0])
            print(
                f"  {size_kb:>5} KB  {rows:>7,}  {stray:>9.3f} s  {clean:>6.3f} s  {stray / clean:>7.2f}×"
                f"  {per_kb:>6.2f}  {kept:,}"
            )
            if stray > args.give_up:
                print(f"  (a read took over {args.give_up:.0f} s: larger sizes skipped)")
                break


if __name__ == "__main__":
    main()
