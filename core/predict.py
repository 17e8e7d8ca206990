"""The command: genre scores of poster images from a finished run.

    python -m core.predict --run RUN_DIR IMAGE_OR_DIR... [--json FILE] [--top K]

A folder of thousands of posters streams (`core.serving.predict.stream_scores`), with progress on stderr.
A file that cannot be decoded is reported on stderr and skipped; the others are still predicted. The exit
code is 0 when at least one image was predicted, 1 when none could be, 2 when the run is unusable.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Collection, Sequence
from pathlib import Path

from core import atomic
from core.config import get_settings
from core.serving.predict import (
    TOP_K,
    RunModelError,
    load_run_model,
    predicted_genres,
    stream_scores,
    top_genres,
)

_PROGRESS_SECONDS = 2.0


def _image_files(targets: Sequence[str]) -> list[Path]:
    """The files named, and the files of the folders named (sorted, hidden files skipped)."""
    files: list[Path] = []
    for target in targets:
        path = Path(target)
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        else:
            files.append(path)
    return files


def _json_key(path: Path, taken: Collection[str]) -> str:
    """The poster's file stem, or its name, or its path when two inputs share a stem."""
    for key in (path.stem, path.name, str(path)):
        if key not in taken:
            return key
    return str(path.resolve())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.predict", description="Genre scores of poster images.")
    parser.add_argument("--run", required=True, type=Path, help="a finished run folder")
    parser.add_argument("images", nargs="+", help="image files or folders of images")
    parser.add_argument("--json", type=Path, help="also write {poster file stem: {genre: probability}} here")
    parser.add_argument("--top", type=int, default=TOP_K, help="how many top genres to print (default 3)")
    args = parser.parse_args(argv)
    try:
        loaded = load_run_model(args.run, get_settings().compiled_models_dir)
    except RunModelError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    top = max(1, min(args.top, len(loaded.vocabulary)))

    files = _image_files(args.images)
    results: dict[str, dict[str, float]] = {}
    started = last_report = time.perf_counter()
    for done, (path, row) in enumerate(
        stream_scores(loaded, files, lambda error: print(f"skipped {error}", file=sys.stderr)), 1
    ):
        now = time.perf_counter()
        if now - last_report >= _PROGRESS_SECONDS:
            last_report = now
            print(f"predicted {done} of {len(files)} files ({done / (now - started):.1f} posters/s)", file=sys.stderr)
        results[_json_key(path, results.keys())] = {
            genre: round(float(p), 6) for genre, p in zip(loaded.genres, row, strict=True)
        }
        ranked = ", ".join(f"{genre} {p:.2f}" for genre, p in top_genres(loaded, row, top))
        chosen = ", ".join(predicted_genres(loaded, row)) or "none above its threshold"
        every = "  ".join(
            f"{genre} {p:.3f}" for genre, p in sorted(zip(loaded.genres, row, strict=True), key=lambda g: -g[1])
        )
        print(f"{path}\n  top {top}: {ranked}\n  predicted: {chosen}\n  all: {every}")
    if not results:
        print("error: no image could be read", file=sys.stderr)
        return 1
    print(f"predicted {len(results)} of {len(files)} files in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    if args.json:
        atomic.write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
