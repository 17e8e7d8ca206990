"""The temporal yardstick: a second saved split that trains on older movies and tests on newer ones.

Users drop posters of new movies, and genres drift over the years (what a thriller poster looks like in
1985 is not what it looks like in 2006). The drawn split mixes every year into every part, so its test
figure answers "a poster like the ones it trained on"; this split answers "a poster of a later year".
Movies before `test_from - VALIDATION_YEARS` train, the `VALIDATION_YEARS` years just before the cut
validate (the best epoch and the thresholds are chosen there), and every movie from `test_from` on is the
temporal test part. Movies without a year are in no part and are counted.

Like the drawn split it is saved once per cut year and reused: movies that appear later are reported and
left out, vanished ones are dropped, nobody ever changes part.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from core.training.split import (
    PART_NAMES,
    PARTS,
    Split,
    SplitError,
    cut_split_id,
    load_split,
    reconcile_split,
    save_split,
)

VALIDATION_YEARS = 2  # the years just before the cut that validate
# The default cut: the catalog's last year minus this, so the test part holds its last five years.
DEFAULT_TEST_YEARS_BACK = 4


def default_test_from(movies: pd.DataFrame) -> int:
    """The catalog's last year − DEFAULT_TEST_YEARS_BACK (2004 on the Chu & Guo dataset, 1980–2008)."""
    years = pd.to_numeric(movies["year"], errors="coerce").dropna()
    if years.empty:
        raise SplitError("no movie has a year, so there is no temporal split")
    return int(years.max()) - DEFAULT_TEST_YEARS_BACK


def part_of_year(year: int, test_from: int) -> str:
    """train before the validation years, val for the VALIDATION_YEARS before the cut, test from it on."""
    if year >= test_from:
        return "test"
    return "val" if year >= test_from - VALIDATION_YEARS else "train"


def cut_by_year(movies: pd.DataFrame, test_from: int, catalog_fingerprint: str | None = None) -> Split:
    """The temporal split of `movies` (columns `imdb_id`, `year`); SplitError when a part would be empty."""
    years = pd.to_numeric(movies["year"], errors="coerce")
    has_year = years.notna().to_numpy()
    assignments = {
        str(imdb_id): part_of_year(int(year), test_from)
        for imdb_id, year in zip(movies["imdb_id"][has_year], years[has_year], strict=True)
    }
    counts = {part: sum(1 for assigned in assignments.values() if assigned == part) for part in PARTS}
    empty = [PART_NAMES[part] for part, count in counts.items() if count == 0]
    if empty:
        raise SplitError(
            f"cutting at {test_from} leaves the temporal {' and '.join(empty)} part empty "
            f"(training: before {test_from - VALIDATION_YEARS}, validation: {test_from - VALIDATION_YEARS}–"
            f"{test_from - 1}, test: {test_from} on); choose another --temporal-test-from"
        )
    total = len(assignments)
    return Split(
        split_id=cut_split_id(test_from, assignments),
        seed=0,
        fractions=tuple(counts[part] / total for part in PARTS),  # type: ignore[arg-type]
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        catalog_fingerprint=catalog_fingerprint,
        assignments=assignments,
        test_from=test_from,
        without_year=int((~has_year).sum()),
    )


def temporal_split_path(cache_dir: Path, test_from: int) -> Path:
    """One saved temporal split per cut year, beside the drawn split."""
    return Path(cache_dir) / f"split_temporal_{test_from}.json"


def load_or_cut_split(
    movies: pd.DataFrame, path: str | os.PathLike[str], test_from: int, catalog_fingerprint: str | None = None
) -> Split:
    """The temporal split saved at `path` (reconciled with `movies`), or cut, saved and returned."""
    target = Path(path)
    if not target.exists():
        split = cut_by_year(movies, test_from, catalog_fingerprint)
        save_split(split, target)
        return split
    saved = load_split(target)
    if saved.test_from != test_from:
        raise SplitError(f"the split saved at {target} is not the temporal split from {test_from}")
    return reconcile_split(saved, movies, catalog_fingerprint)
