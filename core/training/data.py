"""The run's movies: the saved split's parts, their posters and multi-hot genres, corrections applied.

The training and validation parts learn from the label corrections made in the app; the test part keeps the
labels the split was drawn with (see `core.training.corrected_labels`), so its figures stay comparable.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.config import Settings
from core.corrections import active_corrections
from core.data.catalog import Catalog
from core.data.catalog_build import open_catalog
from core.data.genres import GenreVocabulary
from core.training import run_folder as rf
from core.training.config import ConfigError, TrainingConfig
from core.training.corrected_labels import RunLabels
from core.training.genre_support import genres_with_min_support
from core.training.split import PARTS, Split
from core.training.stratified_split import load_or_draw_split
from core.training.temporal_split import default_test_from, load_or_cut_split, temporal_split_path

SPLIT_FILE = "split.json"


class TrainingError(RuntimeError):
    """The data cannot make a run (e.g. a part without movies); the message says why in plain words."""


def split_path(settings: Settings) -> Path:
    """The one saved split of the project, reused by every run."""
    return settings.cache_dir / SPLIT_FILE


def project_split(catalog: Catalog, settings: Settings) -> Split:
    """The saved split, drawn (and saved) on first use over every usable title, series and games included.

    Drawing it over every title means a run that includes or leaves out non-movies only takes a subset
    of each part: the test part never changes with a run's settings.
    """
    titles = catalog.usable_movies(include_non_movies=True)
    return load_or_draw_split(titles, split_path(settings), catalog_fingerprint=catalog.fingerprint)


def temporal_project_split(catalog: Catalog, settings: Settings, test_from: int | None) -> Split:
    """The saved temporal split cut at `test_from` (default: the catalog's last year − 4), over every title."""
    titles = catalog.usable_movies(include_non_movies=True)
    year = default_test_from(titles) if test_from is None else test_from
    path = temporal_split_path(settings.cache_dir, year)
    return load_or_cut_split(titles, path, year, catalog_fingerprint=catalog.fingerprint)


@dataclass(frozen=True)
class Part:
    """The movies of one part of the split that the run uses, with their posters and multi-hot genres."""

    ids: list[str]
    paths: list[str]
    labels: np.ndarray  # float32, (movies, genres)


@dataclass(frozen=True)
class TrainingData:
    vocabulary: GenreVocabulary
    left_out: dict[str, str]
    parts: dict[str, Part]
    split: Split
    catalog_fingerprint: str
    without_kept_genre: dict[str, int]  # movies per part dropped because none of their genres was kept
    genre_counts: dict[str, dict[str, int]]
    corrections: dict[str, Any]  # what corrections.json records: the label corrections used and held back
    test_labels_corrected: np.ndarray  # the test part with every correction in force (see corrected_labels)
    data_root: Path  # the dataset folder the posters' paths are under: the embeddings store knows them by it


def prepare_data(config: TrainingConfig, settings: Settings, temporal: bool = False) -> TrainingData:
    """The run's movies, split parts and genre vocabulary; raises ConfigError if too few genres remain.

    With `temporal`, the parts are those of the temporal split (older movies train, newer ones test).
    """
    catalog = open_catalog(settings)
    movies = catalog.usable_movies(include_non_movies=config.include_non_movies)
    if movies.empty:
        raise TrainingError("the catalog has no usable movie (a decodable poster and at least one genre)")
    if temporal:
        split = temporal_project_split(catalog, settings, config.temporal_test_from)
    else:
        split = project_split(catalog, settings)
    in_force = active_corrections(catalog)
    labels_of = RunLabels.make(movies, in_force, split.created_at, config.use_corrections)
    kept, left_out = genres_with_min_support(labels_of.corrected, split, config.min_movies_per_genre)
    if len(kept) < 2:
        raise ConfigError(
            f"a minimum of {config.min_movies_per_genre} movies per genre leaves {len(kept)} genre(s) "
            f"({', '.join(kept) or 'none'}); at least 2 are needed, so lower --min-movies-per-genre"
        )
    vocabulary = GenreVocabulary.from_names(kept)
    corrected = vocabulary.encode_many(list(labels_of.corrected["genres"]))
    as_drawn = vocabulary.encode_many(list(labels_of.as_drawn["genres"]))
    assigned = np.array([split.part_of(imdb_id) for imdb_id in movies["imdb_id"]], dtype=object)
    parts: dict[str, Part] = {}
    without: dict[str, int] = {}
    part_of: dict[str, str] = {}
    test_rows = np.zeros(0, dtype=int)
    for part in PARTS:
        labels = as_drawn if part == "test" else corrected
        has_genre = labels.sum(axis=1) > 0
        rows = np.flatnonzero((assigned == part) & has_genre)
        without[part] = int(((assigned == part) & ~has_genre).sum())
        if len(rows) == 0:
            raise TrainingError(f"the {part} part of the split holds no movie with a kept genre")
        parts[part] = Part(
            ids=movies["imdb_id"].iloc[rows].tolist(),
            paths=movies["poster_path"].iloc[rows].tolist(),
            labels=labels[rows],
        )
        part_of.update(dict.fromkeys(parts[part].ids, part))
        if part == "test":
            test_rows = rows
    counts = {
        genre: {part: int(parts[part].labels[:, j].sum()) for part in PARTS}
        for j, genre in enumerate(vocabulary.genres)
    }
    record = labels_of.record(part_of, available=len(in_force))
    return TrainingData(
        vocabulary,
        left_out,
        parts,
        split,
        catalog.fingerprint,
        without,
        counts,
        record,
        corrected[test_rows],
        catalog.data_root,
    )


def log_corrections(log: rf.RunLog, record: dict[str, Any]) -> None:
    """One or two log lines on the label corrections the run uses and holds back."""
    if not record["available"]:
        return
    if not record["enabled"]:
        log.write(f"Label corrections: {record['available']} in force, not used (--no-corrections).")
        return
    per_part = record["per_part"]
    log.write(
        f"Label corrections: {record['used']} of {record['available']} used (train {per_part['train']}, "
        f"validation {per_part['val']}, test {per_part['test']} made before the split was drawn)."
    )
    if record["test_held_back"]:
        log.write(
            f"{len(record['test_held_back'])} correction(s) of {len(record['test_movies_held_back'])} test "
            "movie(s) came after the split was drawn: the test part keeps its labels, and its metrics are "
            "also reported with these corrections."
        )
