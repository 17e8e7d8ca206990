"""Out-of-fold scores for every usable movie, and the labels they doubt.

A run's test part covers a fifth of the movies; to question every label, each movie must be scored by a
model that never trained on it. The usable movies are cut into 5 iteratively stratified folds (seed 42);
for each fold the default fast head (`make_config("fast")`: same layers, dropout, learning rate, epochs
and patience) is trained on the other four, early-stopped on a stratified tenth of them, and scores the
fold it left out. It runs on the cached poster features, so no poster is embedded twice.

The labels are the corrected ones in force when the job runs, so the result is cached per catalog and
corrections state (`state_key`); it is computed in the background (`core.app.jobs`), with its progress.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core import atomic
from core.config import Settings
from core.corrections import active_corrections, apply_corrections
from core.data.catalog import Catalog
from core.data.catalog_build import open_catalog

N_FOLDS = 5
SEED = 42
INNER_VALIDATION_SHARE = 0.1  # of the four training folds, for early stopping only
JOB_TARGET = "core.evaluation.out_of_fold:compute_job"
RESULT_DIR = "out-of-fold"


class OutOfFoldError(RuntimeError):
    """The out-of-fold scores cannot be computed or read; the message says why."""


def state_key(catalog: Catalog) -> str:
    """A name for this catalog and the corrections in force: the result of one is never shown for another."""
    corrections = sorted((c.imdb_id, c.genre, c.action) for c in active_corrections(catalog))
    digest = hashlib.sha256(json.dumps([catalog.fingerprint, corrections]).encode()).hexdigest()
    return f"oof-{catalog.fingerprint[:12]}-{digest[:12]}"


def result_path(settings: Settings, key: str) -> Path:
    return settings.cache_dir / RESULT_DIR / f"{key}.npz"


@dataclass(frozen=True)
class OutOfFold:
    """Every scored movie's labels (as used), out-of-fold scores and fold, with how long it took."""

    key: str
    ids: list[str]
    genres: list[str]
    labels: np.ndarray  # (movies, genres) bool
    scores: np.ndarray  # (movies, genres) float
    folds: np.ndarray  # (movies,) the fold each movie was held out in
    seconds: float
    corrections: int  # corrections in force when it was computed


def assign_folds(labels: np.ndarray, n_folds: int = N_FOLDS, seed: int = SEED) -> np.ndarray:
    """The fold (0..n_folds-1) of each row, iteratively stratified so every fold has each genre's share."""
    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

    folds = np.zeros(len(labels), dtype=np.int64)
    splitter = MultilabelStratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for fold, (_, held_out) in enumerate(splitter.split(np.zeros((len(labels), 1)), labels.astype(int))):
        folds[held_out] = fold
    return folds


def fit_head(
    train_x: np.ndarray,
    train_y: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
    epoch_done: Callable[[], None] = lambda: None,
):
    """The default fast head trained on (train_x, train_y), with the weights of its best validation mAP."""
    import keras

    from core.model.features import compile_head, make_head, positive_weights
    from core.model.losses import genre_loss
    from core.model.pipeline import make_embedding_dataset
    from core.training import metrics
    from core.training.config import make_config

    config = make_config("fast")
    head = make_head(
        train_y.shape[1],
        train_x.mean(axis=0),
        train_x.var(axis=0),
        config.head_hidden_units,
        config.dropout,
        prior=train_y.mean(axis=0),
    )
    pos_weight = positive_weights(train_y, config.pos_weighting, config.pos_weight_cap)
    compile_head(head, config.learning_rate, genre_loss(config.loss, pos_weight), -(-len(train_x) // config.batch_size))
    dataset = make_embedding_dataset(train_x, train_y, config.batch_size, True, SEED)
    val_x = np.asarray(val_x, dtype=np.float32)

    class KeepBest(keras.callbacks.Callback):
        """The run's rule: keep the weights of the best validation mAP, stop after `patience` worse epochs."""

        def __init__(self) -> None:
            super().__init__()
            self.best, self.weights, self.waited = -1.0, head.get_weights(), 0

        def on_epoch_end(self, epoch: int, logs=None) -> None:
            epoch_done()
            value = metrics.mean_average_precision(val_y, head(val_x, training=False).numpy())
            if value > self.best:
                self.best, self.weights, self.waited = value, head.get_weights(), 0
            else:
                self.waited += 1
                if config.patience and self.waited >= config.patience:
                    head.stop_training = True

    keep = KeepBest()
    # One fit call for every epoch: a call per epoch costs more than the epoch itself on small folds.
    head.fit(dataset, epochs=config.epochs, callbacks=[keep], verbose=0)
    head.set_weights(keep.weights)
    return head


def out_of_fold_scores(
    features: np.ndarray,
    labels: np.ndarray,
    folds: np.ndarray,
    progress: Callable[[int, int, str], None] = lambda done, total, message: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> np.ndarray:
    """Each row scored by the head trained without its fold (and without anything else of that fold)."""
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    from core.training.config import make_config

    n_folds = int(folds.max()) + 1
    epochs = make_config("fast").epochs
    scores = np.zeros(labels.shape, dtype=np.float32)
    done = [0]
    for fold in range(n_folds):
        if should_stop():
            raise StoppedError
        held_out = np.flatnonzero(folds == fold)
        rest = np.flatnonzero(folds != fold)
        inner = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=INNER_VALIDATION_SHARE, random_state=SEED + fold)
        fit_rows, val_rows = next(inner.split(np.zeros((len(rest), 1)), labels[rest].astype(int)))
        fit, val = rest[fit_rows], rest[val_rows]
        progress(fold * epochs, n_folds * epochs, f"fold {fold + 1} of {n_folds}")
        done[0] = fold * epochs

        def epoch_done(fold: int = fold) -> None:
            done[0] += 1
            progress(min(done[0], (fold + 1) * epochs), n_folds * epochs, f"fold {fold + 1} of {n_folds}")
            if should_stop():
                raise StoppedError

        head = fit_head(features[fit], labels[fit], features[val], labels[val], epoch_done)
        scores[held_out] = head.predict(features[held_out], batch_size=1024, verbose=0)
    progress(n_folds * epochs, n_folds * epochs, "done")
    return scores


class StoppedError(Exception):
    """A stop was asked for between two epochs."""


def training_labels(catalog: Catalog, min_movies: int | None = None) -> tuple[pd.DataFrame, list[str], np.ndarray]:
    """The usable movies with a kept genre, the kept genres (at least `min_movies` movies, the default fast
    run's minimum unless given) and their multi-hot corrected labels, as a default fast run learns them."""
    from core.training.config import make_config

    movies = apply_corrections(catalog.usable_movies(), active_corrections(catalog))
    counts = pd.Series([genre for genres in movies["genres"] for genre in genres]).value_counts()
    minimum = make_config("fast").min_movies_per_genre if min_movies is None else min_movies
    genres = sorted(counts[counts >= minimum].index)
    labels = np.array([[genre in set(movie) for genre in genres] for movie in movies["genres"]], dtype=bool)
    keep = labels.any(axis=1)
    return movies[keep].reset_index(drop=True), genres, labels[keep]


def compute(settings: Settings, progress=None, should_stop=None, min_movies: int | None = None) -> OutOfFold:
    """Compute and save the out-of-fold scores of the current catalog and corrections state."""
    from core.model.embeddings import poster_embeddings
    from core.training.config import make_config

    progress = progress or (lambda done, total, message: None)
    should_stop = should_stop or (lambda: False)
    started = time.perf_counter()
    catalog = open_catalog(settings)
    key = state_key(catalog)
    corrections = len(active_corrections(catalog))
    movies, genres, labels = training_labels(catalog, min_movies)
    if len(genres) < 2 or len(movies) < 2 * N_FOLDS:
        raise OutOfFoldError(f"{len(movies)} movies with {len(genres)} genre(s) of enough support are too few")
    embedded = poster_embeddings(
        list(movies["poster_path"]),
        make_config("fast").image_size,  # the features a default fast run cached
        settings.embeddings_dir,
        settings.weights_dir,
        progress=lambda done, total: progress(done, total, "embedding posters"),
        should_stop=should_stop,
        data_root=catalog.data_root,
    )
    import keras

    keras.utils.set_random_seed(SEED)
    folds = assign_folds(labels)
    scores = out_of_fold_scores(embedded.vectors, labels, folds, progress, should_stop)
    result = OutOfFold(
        key, list(movies["imdb_id"]), genres, labels, scores, folds, time.perf_counter() - started, corrections
    )
    save(settings, result)
    return result


def save(settings: Settings, result: OutOfFold) -> None:
    path = result_path(settings, result.key)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.save_npz(
        path,
        ids=np.array(result.ids, dtype=str),
        genres=np.array(result.genres, dtype=str),
        labels=result.labels.astype(np.uint8),
        scores=result.scores.astype(np.float32),
        folds=result.folds.astype(np.int64),
        seconds=np.array(result.seconds),
        corrections=np.array(result.corrections),
    )


def load(settings: Settings, key: str) -> OutOfFold | None:
    """The saved result of one state, or None when there is none (or it cannot be read)."""
    try:
        with np.load(result_path(settings, key), allow_pickle=False) as saved:
            return OutOfFold(
                key,
                saved["ids"].tolist(),
                saved["genres"].tolist(),
                saved["labels"].astype(bool),
                saved["scores"].astype(np.float64),
                saved["folds"],
                float(saved["seconds"]),
                int(saved["corrections"]),
            )
    except (OSError, ValueError, KeyError):
        return None


def latest(settings: Settings, catalog: Catalog) -> OutOfFold | None:
    """The newest saved result for this catalog, whatever corrections it was computed with."""
    folder = settings.cache_dir / RESULT_DIR
    prefix = f"oof-{catalog.fingerprint[:12]}-"
    candidates = sorted(folder.glob(f"{prefix}*.npz"), key=lambda path: path.stat().st_mtime, reverse=True)
    for path in candidates:
        found = load(settings, path.stem)
        if found is not None:
            return found
    return None


def compute_job(job, min_movies: int | None = None) -> None:
    """The background job (`core.app.jobs`): compute with progress; a stop request ends it stopped."""
    from core.background import Stopped

    try:
        result = compute(
            job.settings,
            progress=lambda done, total, message: job.progress(done, total, message),
            should_stop=job.should_stop,
            min_movies=min_movies,
        )
    except StoppedError:
        raise Stopped from None
    job.progress(1, 1, "done", seconds=round(result.seconds, 1), movies=len(result.ids))


def doubts(result: OutOfFold) -> pd.DataFrame:
    """Every (movie, genre) pair ranked by how much the out-of-fold score disagrees with the label:
    p for a genre the movie is not labelled with, 1 - p for one it is. Highest disagreement first."""
    rows, columns = np.indices(result.scores.shape)
    labelled = result.labels.ravel()
    score = result.scores.ravel()
    top = np.argsort(-result.scores, axis=1)
    frame = pd.DataFrame(
        {
            "imdb_id": np.array(result.ids)[rows.ravel()],
            "genre": np.array(result.genres)[columns.ravel()],
            "labelled": labelled,
            "score": score,
            "disagreement": np.where(labelled, 1.0 - score, score),
        }
    )
    # The model's most likely genre that the movie is not labelled with, for "replace with …".
    unlabelled_top = [
        next((result.genres[j] for j in top[i] if not result.labels[i, j]), None) for i in range(len(result.ids))
    ]
    frame["top_genre"] = np.array(unlabelled_top, dtype=object)[rows.ravel()]
    return frame.sort_values(["disagreement", "imdb_id", "genre"], ascending=[False, True, True], ignore_index=True)
