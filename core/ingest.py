"""`python -m core.ingest`: read a raw copy of the dataset and print (or save) its data-quality report."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from core.config import Settings, get_settings
from core.csv_files import write_csv
from core.data.catalog import CatalogError
from core.data.catalog_build import clear_caches, open_catalog
from core.data.ingest.layout import DataNotFoundError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m core.ingest",
        description="Read the movie-poster dataset into the catalog and report what is wrong with it.",
    )
    parser.add_argument("--data-dir", type=Path, help="the dataset folder (default: $POSTER_DATA_DIR or ../shared)")
    parser.add_argument("--cache-dir", type=Path, help="where the catalog lives (default: $POSTER_CACHE_DIR)")
    parser.add_argument("--report-json", type=Path, help="write the report's figures to this JSON file")
    parser.add_argument("--findings-csv", type=Path, help="write every finding to this CSV file")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the catalog even if nothing changed")
    parser.add_argument(
        "--clear-cache", action="store_true", help="delete the catalog, embeddings and thumbnails, then exit"
    )
    return parser


def _print_summary(summary: dict[str, object], seconds: float, rebuilt: str | None) -> None:
    print(f"Catalog {'built (' + rebuilt + ')' if rebuilt else 'up to date'} in {seconds:.2f} s")
    for key in (
        "records", "unique_movies", "duplicate_records", "posters", "posters_with_record",
        "posters_without_record", "records_without_poster", "records_without_genre", "unreadable_posters",
        "unparseable_records", "usable_movies",
    ):  # fmt: skip
        print(f"  {key.replace('_', ' '):<24} {summary[key]:>7,}")
    print("  findings:")
    for kind, count in summary["findings"].items():  # type: ignore[union-attr]
        if count:
            print(f"    {kind:<26} {count:>6,}")
    genres = summary["genres"]
    print(f"  {len(genres)} genres (usable movies): " + ", ".join(f"{g} {n}" for g, n in genres.items()))  # type: ignore[union-attr]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    defaults = get_settings()
    settings = Settings(
        data_dir=(args.data_dir or defaults.data_dir).expanduser().resolve(),
        cache_dir=(args.cache_dir or defaults.cache_dir).expanduser().resolve(),
        runs_dir=defaults.runs_dir,
    )
    if args.clear_cache:
        removed = clear_caches(settings)
        print("Removed: " + (", ".join(str(path) for path in removed) if removed else "nothing (no cache)"))
        return 0

    def progress(fraction: float, message: str) -> None:
        if sys.stderr.isatty():
            print(f"\r{fraction:6.1%}  {message:<60}", end="", file=sys.stderr, flush=True)

    started = time.perf_counter()
    try:
        catalog = open_catalog(settings, progress=progress, rebuild=args.rebuild)
    except (DataNotFoundError, CatalogError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if sys.stderr.isatty():
        print(file=sys.stderr)
    summary = catalog.summary()
    _print_summary(summary, time.perf_counter() - started, catalog.rebuilt_because)
    if args.report_json:
        args.report_json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        print(f"Report written to {args.report_json}")
    if args.findings_csv:
        write_csv(catalog.findings(), args.findings_csv)
        print(f"Findings written to {args.findings_csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
