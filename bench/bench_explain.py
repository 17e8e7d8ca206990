"""How long a "why this genre" evidence map takes, against a plain prediction of the same poster in the same run.

    python -m bench.bench_explain [--run RUN_DIR] [--posters 40] [--flip-tta]

With the model warm (the explainer built and traced once before timing), per poster: one prediction
(`predict_images`, the baseline), the map of one genre, the maps of the top 3 genres in one call, and the
overlay the opacity slider redraws. Prints p50 / p95 and each p50 as a ratio to the prediction's: these
machines are shared and noisy, so only ratios measured in the same run compare across runs.

The model is `--run`, else the app's active model (`POSTER_RUNS_DIR`), else, train-free, the real
pretrained backbone at the default image size with an untrained head (`make_feature_extractor` +
`make_head` + `make_genre_model`): the timings do not depend on what the head learnt. The posters are
real ones of the dataset when it is there, else random pixels at a typical poster size.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # so `core` imports when run as a script

import tensorflow as tf

from core.app import model_choice
from core.config import get_settings
from core.data.genres import GenreVocabulary
from core.model.features import FEATURE_DIM, make_feature_extractor, make_genre_model, make_head
from core.serving.explain import make_explainer
from core.serving.heat_overlay import overlay
from core.serving.predict import LoadedModel, decode_image_file, load_run_model, predict_images
from core.training.config import TrainingConfig

TRAIN_FREE_GENRES = 20  # about as many as the real dataset keeps at the default minimum per genre
SYNTHETIC_POSTER = (450, 300)  # height, width: a typical poster of the dataset


def _model(run: Path | None, flip_tta: bool) -> tuple[LoadedModel, str]:
    """The model to time and how it was found."""
    settings = get_settings()
    run_id = None if run else model_choice.active_model_id(settings)
    if run or run_id:
        path = run or settings.runs_dir / run_id
        return load_run_model(path), f"run {path.name}"
    config = TrainingConfig()
    features = make_feature_extractor(config.image_size, settings.weights_dir)
    rng = np.random.default_rng(0)
    head = make_head(
        TRAIN_FREE_GENRES,
        rng.normal(0, 1, FEATURE_DIM),
        np.ones(FEATURE_DIM),
        config.head_hidden_units,
        config.dropout,
        prior=np.full(TRAIN_FREE_GENRES, 0.1),
    )
    model = make_genre_model(features, head, flip_tta)
    serve = tf.function(
        lambda batch: model(batch, training=False),
        input_signature=[tf.TensorSpec((None, *config.image_size, 3), tf.float32)],
    )
    vocabulary = GenreVocabulary.from_names(f"genre {n}" for n in range(TRAIN_FREE_GENRES))
    loaded = LoadedModel(
        Path("train-free"), model, vocabulary, np.full(TRAIN_FREE_GENRES, 0.5), config.image_size, {}, serve
    )
    return loaded, f"train-free: pretrained backbone + untrained head, flip_tta={flip_tta}"


def _posters(count: int) -> tuple[list[np.ndarray], str]:
    folder = get_settings().data_dir / "Movie_Poster_Dataset"
    paths = sorted(folder.glob("*/*.jpg"))
    if paths:
        chosen = np.random.default_rng(0).choice(len(paths), size=min(count, len(paths)), replace=False)
        posters = []
        for number in chosen:
            try:
                posters.append(decode_image_file(paths[number]))
            except ValueError:
                continue  # the dataset has a few damaged files; the others are enough
        return posters, f"{len(posters)} real posters"
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (*SYNTHETIC_POSTER, 3), dtype=np.uint8) for _ in range(count)], (
        f"{count} random {SYNTHETIC_POSTER[0]}×{SYNTHETIC_POSTER[1]} posters (no dataset found)"
    )


def _percentiles(seconds: list[float]) -> tuple[float, float]:
    ordered = sorted(seconds)
    return statistics.median(ordered) * 1000, ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a finished run folder (default: the active model, else train-free)")
    parser.add_argument("--posters", type=int, default=40, help="posters timed (default 40)")
    parser.add_argument("--flip-tta", action="store_true", help="train-free model with the mirrored branch")
    args = parser.parse_args()

    loaded, source = _model(args.run, args.flip_tta)
    posters, found = _posters(args.posters)
    started = time.perf_counter()
    explainer = make_explainer(loaded)  # cold: traces the evidence function and checks its scores
    built = time.perf_counter() - started
    # Warm-up: the first calls trace the prediction and settle TensorFlow's thread pools.
    for poster in posters[:2]:
        predict_images(loaded, [poster])
        explainer.maps(poster, list(loaded.genres[:3]))

    stages: dict[str, list[float]] = {"predict": [], "one": [], "three": [], "overlay": []}
    for poster in posters:
        # Interleaved per poster, so that a noisy neighbour slows all rows alike.
        started = time.perf_counter()
        scores = predict_images(loaded, [poster])[0]
        predicted = time.perf_counter()
        top = [genre for genre, _ in loaded.vocabulary.top_k(scores, 3)]
        explainer.maps(poster, top[:1])
        one = time.perf_counter()
        maps = explainer.maps(poster, top)
        three = time.perf_counter()
        overlay(poster, maps[top[0]], 0.5)
        blended = time.perf_counter()
        stages["predict"].append(predicted - started)
        stages["one"].append(one - predicted)
        stages["three"].append(three - one)
        stages["overlay"].append(blended - three)

    baseline = _percentiles(stages["predict"])[0]
    labels = {
        "predict": "prediction, predict_images (baseline)",
        "one": "evidence map, 1 genre",
        "three": "evidence maps, top 3 in one call",
        "overlay": "overlay at 50 % (a slider move)",
    }
    print(f"Evidence maps on {os.cpu_count()} CPU cores, model warm; {source}, input {loaded.image_size}")
    print(f"  {explainer.method}; {found}; explainer built (traced + checked) in {built:.1f} s")
    print(f"  {'what':<40} {'p50 (ms)':>9} {'p95 (ms)':>9} {'p50 / baseline':>15}")
    for key, label in labels.items():
        p50, p95 = _percentiles(stages[key])
        print(f"  {label:<40} {p50:>9.1f} {p95:>9.1f} {p50 / baseline:>14.2f}×")


if __name__ == "__main__":
    main()
