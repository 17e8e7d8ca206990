"""Drawing the split: seeded and stratified over every genre, so each part holds its share of each genre.

The split is drawn over all genres present with iterative stratification (Sechidis et al., 2011, as
implemented by `iterstrat`), in two stages: the test part is taken off first, then the validation part from
the rest, so the test part depends only on the seed, the test fraction and the movies. It is drawn once:
`load_or_draw_split` reuses a saved split rather than drawing again, because its test part must never change.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from iterstrat.ml_stratifiers import IterativeStratification

from core.training.split import (
    DEFAULT_FRACTIONS,
    DEFAULT_SEED,
    PART_NAMES,
    PARTS,
    Split,
    SplitError,
    SplitMismatchError,
    check_fractions,
    check_movies,
    drawn_split_id,
    load_split,
    reconcile_split,
    save_split,
)


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
    shares = check_fractions(fractions)
    catalog = check_movies(movies)
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
        split_id=drawn_split_id(seed, shares, ids),
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
    asked = check_fractions(fractions)
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
