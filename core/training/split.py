"""One seeded, stratified train/validation/test split of the catalog's movies, drawn once and saved.

Every run reads the same saved split, so runs compare with one another and the test part is never looked
at while a model or its thresholds are chosen. The split is drawn over all genres present with iterative
stratification (Sechidis et al., 2011, as implemented by `iterstrat`), in two stages: the test part is
taken off first, then the validation part from the rest, so the test part depends only on the seed, the
test fraction and the movies. Once saved it is reused as is: movies that appear later are reported and
left out of every part, movies that vanish are dropped with a count, and nothing is ever redrawn. A run's
minimum number of movies per genre filters genres afterwards (`genres_with_min_support`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from iterstrat.ml_stratifiers import IterativeStratification

PARTS = ("train", "val", "test")
PART_NAMES = {"train": "training", "val": "validation", "test": "test"}
DEFAULT_SEED = 42
# Shares of the movies in the train, validation and test parts (fractions of 1).
DEFAULT_FRACTIONS = (0.70, 0.15, 0.15)


class SplitError(ValueError):
    """The movies or settings given cannot make a train/validation/test split."""


class SplitFileError(SplitError):
    """A saved split file is missing, unreadable or not a split."""


class SplitMismatchError(SplitError):
    """The saved split was drawn with other settings than the ones asked for."""


@dataclass(frozen=True)
class CatalogChanges:
    """How the catalog given now differs from the one the saved split was drawn on."""

    new_ids: tuple[str, ...] = ()  # in the catalog now, not in the split: in no part
    vanished_ids: tuple[str, ...] = ()  # in the split, gone from the catalog: dropped from their part
    vanished_by_part: Mapping[str, int] = field(default_factory=dict)
    fingerprint_changed: bool = False

    @property
    def is_empty(self) -> bool:
        return not (self.new_ids or self.vanished_ids or self.fingerprint_changed)

    def describe(self) -> list[str]:
        """The changes in plain words, one line each, for a run's log or a page."""
        lines: list[str] = []
        if self.new_ids:
            lines.append(
                f"{len(self.new_ids)} movies appeared after the split was drawn; they are in no part "
                "(neither trained on nor evaluated) until a new split is drawn."
            )
        if self.vanished_ids:
            by_part = ", ".join(f"{PART_NAMES[p]} {n}" for p, n in self.vanished_by_part.items() if n)
            lines.append(
                f"{len(self.vanished_ids)} movies of the split are no longer in the catalog and were "
                f"dropped ({by_part})."
            )
        if self.fingerprint_changed:
            lines.append("The catalog changed since the split was drawn; the split itself was kept.")
        return lines


@dataclass(frozen=True)
class Split:
    """Which part (train, val or test) each movie belongs to, and how that was drawn."""

    split_id: str
    seed: int
    fractions: tuple[float, float, float]  # train, val, test
    created_at: str  # UTC, ISO 8601
    catalog_fingerprint: str | None
    assignments: Mapping[str, str]  # imdb_id -> "train" | "val" | "test"
    changes: CatalogChanges = field(default_factory=CatalogChanges)
    # A temporal split (core.training.temporal_split) cuts by year instead of drawing: its first test year,
    # and the movies without a year, left out of every part. None and 0 for the drawn split.
    test_from: int | None = None
    without_year: int = 0

    def ids(self, part: str) -> list[str]:
        """The sorted ids of the movies in one part."""
        if part not in PARTS:
            raise SplitError(f"unknown part {part!r}; the parts are {', '.join(PARTS)}")
        return sorted(imdb_id for imdb_id, assigned in self.assignments.items() if assigned == part)

    def part_of(self, imdb_id: str) -> str | None:
        return self.assignments.get(imdb_id)

    def counts(self) -> dict[str, int]:
        return {part: sum(1 for a in self.assignments.values() if a == part) for part in PARTS}

    def to_json(self) -> dict[str, Any]:
        temporal = {"test_from": self.test_from, "without_year": self.without_year} if self.test_from else {}
        return {
            **temporal,
            "split_id": self.split_id,
            "seed": self.seed,
            "fractions": dict(zip(PARTS, self.fractions, strict=True)),
            "created_at": self.created_at,
            "catalog_fingerprint": self.catalog_fingerprint,
            "assignments": dict(sorted(self.assignments.items())),
        }

    @classmethod
    def from_json(cls, data: Any) -> Split:
        """Rebuild a saved split, checking that it is whole and that its id matches its movies."""
        if not isinstance(data, dict):
            raise SplitFileError("a split file must hold a JSON object")
        missing = [key for key in ("split_id", "seed", "fractions", "assignments") if key not in data]
        if missing:
            raise SplitFileError(f"the split file lacks {', '.join(missing)}")
        fractions_field = data["fractions"]
        if not isinstance(fractions_field, dict) or set(fractions_field) != set(PARTS):
            raise SplitFileError("the split's fractions must name train, val and test")
        assignments = data["assignments"]
        if not isinstance(assignments, dict) or not all(part in PARTS for part in assignments.values()):
            raise SplitFileError("every assignment must be one of train, val or test")
        seed = data["seed"]
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise SplitFileError(f"the split's seed must be a whole number, got {seed!r}")
        fractions = _check_fractions(tuple(fractions_field[part] for part in PARTS))
        test_from = data.get("test_from")
        if test_from is not None and (isinstance(test_from, bool) or not isinstance(test_from, int)):
            raise SplitFileError(f"the split's first test year must be a whole number, got {test_from!r}")
        expected = (
            _split_id(seed, fractions, assignments) if test_from is None else cut_split_id(test_from, assignments)
        )
        if data["split_id"] != expected:
            raise SplitFileError("the split id does not match its seed, fractions and movies: was it edited?")
        return cls(
            split_id=data["split_id"],
            seed=seed,
            fractions=fractions,
            created_at=str(data.get("created_at", "")),
            catalog_fingerprint=data.get("catalog_fingerprint"),
            assignments=dict(assignments),
            test_from=test_from,
            without_year=int(data.get("without_year", 0)),
        )


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    try:
        values = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        raise SplitError(f"fractions must be three numbers (train, val, test), got {fractions!r}") from None
    if len(values) != 3 or not all(math.isfinite(f) and 0 < f < 1 for f in values):
        raise SplitError(f"fractions must be three shares between 0 and 1 (train, val, test), got {fractions!r}")
    if not math.isclose(sum(values), 1.0, abs_tol=1e-6):
        raise SplitError(f"fractions must add up to 1, got {fractions!r} (sum {sum(values):.4f})")
    return values  # type: ignore[return-value]


def _check_movies(movies: pd.DataFrame) -> dict[str, list[str]]:
    """imdb_id -> genres, after checking the frame has the columns, unique ids and lists of genre names."""
    missing = {"imdb_id", "genres"} - set(movies.columns)
    if missing:
        raise SplitError(f"the movies table lacks the column(s) {', '.join(sorted(missing))}")
    catalog: dict[str, list[str]] = {}
    for imdb_id, genres in zip(movies["imdb_id"], movies["genres"], strict=True):
        if not isinstance(imdb_id, str) or not imdb_id:
            raise SplitError(f"every movie needs an imdb_id (a non-empty string), got {imdb_id!r}")
        if imdb_id in catalog:
            raise SplitError(f"the movie {imdb_id} appears twice; each movie can be in only one part")
        if isinstance(genres, str) or not isinstance(genres, list | tuple | set | np.ndarray):
            raise SplitError(f"the genres of {imdb_id} must be a list of names, got {genres!r}")
        catalog[imdb_id] = [str(genre) for genre in genres]
    return catalog


def _split_id(seed: int, fractions: Sequence[float], ids: Any) -> str:
    material = json.dumps({"seed": seed, "fractions": list(fractions), "ids": sorted(ids)}, separators=(",", ":"))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:12]


def cut_split_id(test_from: int, assignments: Mapping[str, str]) -> str:
    """The id of a split cut by year: it depends on the cut and on which movie is in which part."""
    material = json.dumps({"test_from": test_from, "parts": sorted(assignments.items())}, separators=(",", ":"))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:12]


def _stratified_pick(labels: np.ndarray, share: float, rng: np.random.RandomState) -> np.ndarray:
    """Mask of about `share` of the rows, keeping each genre's share of positives on both sides."""
    order = rng.permutation(labels.shape[0])
    # Called directly rather than through MultilabelStratifiedShuffleSplit, which refuses a single genre.
    folds = IterativeStratification(labels=labels[order], r=np.array([1.0 - share, share]), random_state=rng)
    picked = np.zeros(labels.shape[0], dtype=bool)
    picked[order] = folds == 1
    return picked


def draw_split(
    movies: pd.DataFrame,
    seed: int = DEFAULT_SEED,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    catalog_fingerprint: str | None = None,
) -> Split:
    """Draw a new stratified split of all the given movies (columns `imdb_id`, `genres`).

    The same movies, seed and fractions always give the same split, whatever the order of the rows.
    """
    shares = _check_fractions(fractions)
    catalog = _check_movies(movies)
    if len(catalog) < len(PARTS):
        raise SplitError(f"{len(catalog)} movies cannot fill the three parts train, val and test")
    ids = sorted(catalog)
    genre_names = sorted({genre for genres in catalog.values() for genre in genres})
    column = {genre: j for j, genre in enumerate(genre_names)}
    labels = np.zeros((len(ids), len(genre_names)), dtype=bool)  # iterstrat indexes with it: must be bool
    for i, imdb_id in enumerate(ids):
        labels[i, [column[genre] for genre in catalog[imdb_id]]] = True
    # The legacy RandomState stream is frozen by NumPy, so a seed draws the same split on any machine.
    rng = np.random.RandomState(seed)
    is_test = _stratified_pick(labels, shares[2], rng)
    rest = np.flatnonzero(~is_test)
    is_val_of_rest = _stratified_pick(labels[rest], shares[1] / (shares[0] + shares[1]), rng)
    parts = np.full(len(ids), "train", dtype=object)
    parts[is_test] = "test"
    parts[rest[is_val_of_rest]] = "val"
    assignments = dict(zip(ids, parts.tolist(), strict=True))
    split = Split(
        split_id=_split_id(seed, shares, ids),
        seed=seed,
        fractions=shares,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        catalog_fingerprint=catalog_fingerprint,
        assignments=assignments,
    )
    empty = [PART_NAMES[part] for part, count in split.counts().items() if count == 0]
    if empty:
        raise SplitError(f"{len(ids)} movies are too few: the {' and '.join(empty)} part would be empty")
    return split


def save_split(split: Split, path: str | os.PathLike[str]) -> None:
    """Write the split as JSON atomically: a crash mid-write leaves the previous file (or none), never half."""
    if not split.changes.is_empty:
        raise SplitError("only a split as drawn can be saved, not one reconciled with a later catalog")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(split.to_json(), handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_split(path: str | os.PathLike[str]) -> Split:
    """Read a saved split; `SplitFileError` says what is wrong when it cannot."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SplitFileError(f"no saved split at {source}") from None
    except OSError as error:
        raise SplitFileError(f"cannot read the split file {source}: {error.strerror}") from error
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise SplitFileError(f"the split file {source} is not valid JSON (line {error.lineno})") from error
    return Split.from_json(data)


def reconcile_split(split: Split, movies: pd.DataFrame, catalog_fingerprint: str | None = None) -> Split:
    """The saved split restricted to the movies given now, with what changed in `changes`.

    New movies are put in no part, vanished ones are dropped; no movie ever moves between parts.
    """
    present = set(_check_movies(movies))
    vanished = sorted(set(split.assignments) - present)
    changes = CatalogChanges(
        new_ids=tuple(sorted(present - set(split.assignments))),
        vanished_ids=tuple(vanished),
        vanished_by_part={part: sum(1 for i in vanished if split.assignments[i] == part) for part in PARTS},
        fingerprint_changed=(
            catalog_fingerprint is not None
            and split.catalog_fingerprint is not None
            and catalog_fingerprint != split.catalog_fingerprint
        ),
    )
    kept = {imdb_id: part for imdb_id, part in split.assignments.items() if imdb_id in present}
    return replace(split, assignments=kept, changes=changes)


def load_or_draw_split(
    movies: pd.DataFrame,
    path: str | os.PathLike[str],
    seed: int = DEFAULT_SEED,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    catalog_fingerprint: str | None = None,
) -> Split:
    """Reuse the split saved at `path` (reconciled with `movies`), or draw, save and return a new one.

    A saved split drawn with another seed or other fractions raises `SplitMismatchError` rather than being
    redrawn, because its test part must never change.
    """
    target = Path(path)
    if not target.exists():
        split = draw_split(movies, seed, fractions, catalog_fingerprint)
        save_split(split, target)
        return split
    saved = load_split(target)
    asked = _check_fractions(fractions)
    if saved.seed != seed or not all(
        math.isclose(a, b, abs_tol=1e-9) for a, b in zip(saved.fractions, asked, strict=True)
    ):
        raise SplitMismatchError(
            f"the split saved at {target} was drawn with seed {saved.seed} and fractions "
            f"{'/'.join(f'{f:g}' for f in saved.fractions)}, not seed {seed} and "
            f"{'/'.join(f'{f:g}' for f in asked)}; its test part must not change, so use its settings, "
            "or delete the file to draw a new split (earlier results will no longer compare)"
        )
    return reconcile_split(saved, movies, catalog_fingerprint)


def genres_with_min_support(movies: pd.DataFrame, split: Split, min_movies: int) -> tuple[list[str], dict[str, str]]:
    """The genres a run can learn and evaluate, and the others with the reason in plain words.

    A genre is kept when at least `min_movies` movies of the split have it and each of the training,
    validation and test parts holds at least one of them. Movies in no part are not counted. The split is
    never redrawn to rescue a genre.
    """
    if isinstance(min_movies, bool) or not isinstance(min_movies, int) or min_movies < 1:
        raise SplitError(f"the minimum number of movies per genre must be a whole number ≥ 1, got {min_movies!r}")
    catalog = _check_movies(movies)
    per_part: dict[str, dict[str, int]] = {}
    for imdb_id, genres in catalog.items():
        part = split.part_of(imdb_id)
        for genre in genres:
            counts = per_part.setdefault(genre, dict.fromkeys(PARTS, 0))
            if part is not None:
                counts[part] += 1
    kept: list[str] = []
    left_out: dict[str, str] = {}
    for genre in sorted(per_part):
        counts = per_part[genre]
        total = sum(counts.values())
        reasons: list[str] = []
        if total < min_movies:
            reasons.append(f"only {total} movies in the split have it (at least {min_movies} needed)")
        reasons += [f"no movie of the {PART_NAMES[part]} part has it" for part in PARTS if counts[part] == 0]
        if reasons:
            left_out[genre] = "; ".join(reasons)
        else:
            kept.append(genre)
    return kept, left_out
