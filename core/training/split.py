"""A train/validation/test split of the catalog's movies, as saved once and reused as is by every run.

Every run reads the same saved split, so runs compare with one another and the test part is never looked
at while a model or its thresholds are chosen. A split is drawn (`core.training.stratified_split`) or cut
by year (`core.training.temporal_split`); here is what both share: the parts, the file and its checks, and
how a saved split meets a later catalog. Once saved it is reused as is: movies that appear later are
reported and left out of every part, movies that vanish are dropped with a count, and nothing is ever
redrawn. An id computed from the split's settings and movies tells an edited file from a saved one.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

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
        fractions = check_fractions(tuple(fractions_field[part] for part in PARTS))
        test_from = data.get("test_from")
        if test_from is not None and (isinstance(test_from, bool) or not isinstance(test_from, int)):
            raise SplitFileError(f"the split's first test year must be a whole number, got {test_from!r}")
        expected = (
            drawn_split_id(seed, fractions, assignments) if test_from is None else cut_split_id(test_from, assignments)
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


def check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    """The train, val and test shares as three floats in (0, 1) that add up to 1."""
    try:
        values = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        raise SplitError(f"fractions must be three numbers (train, val, test), got {fractions!r}") from None
    if len(values) != 3 or not all(math.isfinite(f) and 0 < f < 1 for f in values):
        raise SplitError(f"fractions must be three shares between 0 and 1 (train, val, test), got {fractions!r}")
    if not math.isclose(sum(values), 1.0, abs_tol=1e-6):
        raise SplitError(f"fractions must add up to 1, got {fractions!r} (sum {sum(values):.4f})")
    return values  # type: ignore[return-value]


def check_movies(movies: pd.DataFrame) -> dict[str, list[str]]:
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


def drawn_split_id(seed: int, fractions: Sequence[float], ids: Any) -> str:
    """The id of a drawn split: it depends on the seed, the fractions and which movies were split."""
    material = json.dumps({"seed": seed, "fractions": list(fractions), "ids": sorted(ids)}, separators=(",", ":"))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:12]


def cut_split_id(test_from: int, assignments: Mapping[str, str]) -> str:
    """The id of a split cut by year: it depends on the cut and on which movie is in which part."""
    material = json.dumps({"test_from": test_from, "parts": sorted(assignments.items())}, separators=(",", ":"))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:12]


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
    present = set(check_movies(movies))
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
