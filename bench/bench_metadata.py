"""Metadata reading time and memory against file size: the largest real metadata file, and copies of its
records 2, 4, 8 and 32 times over, read (decoded and parsed) as one file each, as ratios against 1×.

    python bench/bench_metadata.py [--data-dir DIR] [--repeats N] [--multiples 1,2,4,8,32]

Reading is linear when the time ratio follows the size ratio ("per MB" stays near 1.00) and the peak
memory per MB of file stays flat. A size whose read takes longer than `--give-up` seconds ends the table
(it is reported, and bigger sizes are skipped) so that a slow reader cannot hang the benchmark.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import DEFAULT_DATA_DIR
from core.data.ingest.layout import locate_layout
from core.data.ingest.metadata import decode_metadata, parse_records


def largest_metadata_file(data_dir: Path, work: Path) -> Path:
    layout = locate_layout(data_dir, work / "extracted")
    return max((path for path in layout.metadata_dir.iterdir() if path.is_file()), key=lambda p: p.stat().st_size)


def multiplied(raw: bytes, times: int) -> bytes:
    """The file's records `times` times over, in the file's own encoding (so decoding is measured too)."""
    decoded = decode_metadata(raw)
    text = decoded.text if decoded.text.endswith("\n") else decoded.text + "\n"
    codec = "utf-16" if decoded.encoding.startswith("UTF-16") else "utf-8"
    return (text * times).encode(codec)


def read_file(raw: bytes) -> int:
    return len(parse_records(decode_metadata(raw).text, "bench.txt").records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--multiples", default="1,2,4,8,32")
    parser.add_argument("--give-up", type=float, default=120.0, help="seconds one read may take")
    args = parser.parse_args()

    import tempfile

    with tempfile.TemporaryDirectory() as work:
        source = largest_metadata_file(args.data_dir, Path(work))
        original = source.read_bytes()
    rows = []
    base_seconds = base_size = None
    for times in (int(value) for value in args.multiples.split(",")):
        raw = multiplied(original, times)
        durations = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            records = read_file(raw)
            durations.append(time.perf_counter() - started)
            if durations[-1] > args.give_up:
                break
        seconds = statistics.median(durations)
        tracemalloc.start()
        read_file(raw) if seconds <= args.give_up else None
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        if base_seconds is None:
            base_seconds, base_size = seconds, len(raw)
        size_ratio = len(raw) / base_size
        rows.append(
            (
                f"{times}×",
                f"{len(raw) / 1e6:.2f} MB",
                f"{records:,}",
                f"{seconds:.3f} s",
                f"{seconds / base_seconds:.2f}",
                f"{seconds / base_seconds / size_ratio:.2f}",
                f"{peak / 1e6:.0f} MB" if seconds <= args.give_up else "-",
                f"{peak / len(raw):.1f}" if seconds <= args.give_up else "-",
            )
        )
        if seconds > args.give_up:
            print(f"  ({times}× took {seconds:.0f} s, over --give-up; larger sizes skipped)")
            break

    header = ("size", "file", "records", "read (median)", "time ratio", "per MB", "peak memory", "peak / file")
    print(f"Metadata reading of {source.name} and its multiples (median of {args.repeats})")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  " + "  ".join(f"{cell:>{width}}" for cell, width in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
