"""How fast the training engine is on this machine, beside the classic tutorial's way of training.

Run from the project root: `python bench/bench_training.py [--embed-posters N] [--fine-tune-batches N]
[--tutorial-batches N] [--latency-runs N] [--skip-cold-run]`. Prints one table:

- embedding throughput (posters/s): the frozen backbone's features for N real posters, nothing cached;
- a default fast run's wall time on the real data, cold (no embeddings cached) and warm (all cached);
- fine-tune throughput (images/s): training steps with the top 2 blocks unfrozen, augmented tf.data input;
- single-poster prediction latency (p50/p95) with the run's model loaded, resize included;
- the tutorial's way: its small CNN at 400×300 trained on `ImageDataGenerator.flow_from_dataframe`
  batches, and the same CNN on this project's tf.data pipeline, as images/s and time per epoch.

Everything is written to a temporary folder (the project's catalog, split and converted weights are
copied in when present, so "cold" means only: no poster embedded yet). The default sizes keep the whole
benchmark to a few minutes on 2 CPU cores; throughputs are over all the batches timed, after a warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # so `core` imports when run as a script

import keras
import tensorflow as tf

from bench.table import print_table
from core.config import Settings, get_settings
from core.data.catalog_build import open_catalog
from core.data.genres import GenreVocabulary
from core.model.backbone import cached_weights_path
from core.model.embeddings import embed_posters
from core.model.features import (
    WeightedBinaryCrossentropy,
    make_feature_extractor,
    make_genre_model,
    make_head,
    make_scratch_cnn,
    unfreeze_top_blocks,
)
from core.model.pipeline import make_dataset
from core.serving.predict import decode_image_file, load_run_model, predict_images
from core.training.config import make_config
from core.training.trainer import SPLIT_FILE, train

TUTORIAL_SIZE = (400, 300)  # height, width: the tutorial's input
BATCH = 32


def _bench_settings(folder: Path) -> Settings:
    """Real data, a fresh cache holding only copies of the catalog, the split and the converted weights."""
    project = get_settings()
    settings = Settings(data_dir=project.data_dir, cache_dir=folder / "cache", runs_dir=folder / "runs")
    settings.weights_dir.mkdir(parents=True)
    for source, target in (
        (project.catalog_path, settings.catalog_path),
        (project.cache_dir / SPLIT_FILE, settings.cache_dir / SPLIT_FILE),
        (cached_weights_path(project.weights_dir), cached_weights_path(settings.weights_dir)),
    ):
        if source.is_file():
            shutil.copy2(source, target)
    return settings


def _seconds(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def embedding_throughput(settings: Settings, paths: list[str]) -> float:
    features = make_feature_extractor((320, 224), settings.weights_dir)
    root = settings.data_dir  # only what the store keys the posters by: each folder below is a cold store
    embed_posters(
        paths[:BATCH], (320, 224), settings.cache_dir / "warm-up", settings.weights_dir, features=features,
        data_root=root,
    )  # fmt: skip
    seconds = _seconds(
        lambda: embed_posters(
            paths,
            (320, 224),
            settings.cache_dir / "bench-embed",
            settings.weights_dir,
            features=features,
            data_root=root,
        )
    )
    return len(paths) / seconds


def fast_runs(settings: Settings, cold: bool) -> tuple[float | None, float, Path]:
    """Wall time of a default fast run with nothing embedded yet (if `cold`), then with everything cached."""
    config = make_config("fast")
    cold_seconds = None
    if cold:
        cold_seconds = _seconds(lambda: train(config, settings, settings.runs_dir / "cold"))
    else:  # embed first, untimed, so the warm run is warm
        train(config, settings, settings.runs_dir / "cold")
    warm_dir = settings.runs_dir / "warm"
    warm_seconds = _seconds(lambda: train(config, settings, warm_dir))
    return cold_seconds, warm_seconds, warm_dir


def _train_steps(model: keras.Model, dataset: tf.data.Dataset, batches: int) -> float:
    """Images per second through `model.train_on_batch`, input included, after 2 untimed warm-up batches."""
    iterator = iter(dataset.take(batches + 2))
    for _ in range(2):
        model.train_on_batch(*next(iterator))
    images = 0
    start = time.perf_counter()
    for batch, labels in iterator:
        model.train_on_batch(batch, labels)
        images += len(batch)
    return images / (time.perf_counter() - start)


def fine_tune_throughput(settings: Settings, paths: list[str], labels: np.ndarray, batches: int) -> float:
    features = make_feature_extractor((320, 224), settings.weights_dir)
    head = make_head(labels.shape[1], np.zeros(features.output_shape[-1]), np.ones(features.output_shape[-1]))
    unfreeze_top_blocks(features, 2)
    model = make_genre_model(features, head)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=WeightedBinaryCrossentropy(np.ones(labels.shape[1])))
    dataset = make_dataset(paths, labels, (320, 224), BATCH, training=True, seed=0, cache=False)
    return _train_steps(model, dataset, batches)


def prediction_latency(run_dir: Path, paths: list[str], runs: int) -> tuple[float, float]:
    loaded = load_run_model(run_dir)
    posters = [decode_image_file(path) for path in paths[:runs]]
    predict_images(loaded, posters[:1])  # warm-up: traces the serving function
    times = []
    for poster in posters:
        start = time.perf_counter()
        predict_images(loaded, [poster])
        times.append(time.perf_counter() - start)
    return float(np.percentile(times, 50)) * 1000, float(np.percentile(times, 95)) * 1000


def tutorial_way(movies, vocabulary: GenreVocabulary, batches: int) -> float:
    """The tutorial: ImageDataGenerator(rescale=1/255).flow_from_dataframe at 400×300, its CNN, images/s."""
    from keras.src.legacy.preprocessing.image import ImageDataGenerator

    frame = movies.assign(genres=[[g for g in genres if g in vocabulary.genres] for genres in movies["genres"]])
    generator = ImageDataGenerator(rescale=1 / 255).flow_from_dataframe(
        frame,
        x_col="poster_path",
        y_col="genres",
        classes=list(vocabulary.genres),
        class_mode="categorical",
        target_size=TUTORIAL_SIZE,
        batch_size=BATCH,
        seed=0,
        validate_filenames=False,
    )
    model = make_scratch_cnn(TUTORIAL_SIZE, len(vocabulary))
    # The tutorial's model takes 0..1 pixels: skip this project's scaling layer, the generator scales.
    model.get_layer("scale").scale = 1.0
    model.compile(optimizer="adam", loss="binary_crossentropy")
    for _ in range(2):
        model.train_on_batch(*next(generator))
    images = 0
    start = time.perf_counter()
    for _ in range(batches):
        batch, labels = next(generator)
        model.train_on_batch(batch, labels)
        images += len(batch)
    return images / (time.perf_counter() - start)


def tf_data_same_cnn(paths: list[str], labels: np.ndarray, batches: int) -> float:
    model = make_scratch_cnn(TUTORIAL_SIZE, labels.shape[1])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    dataset = make_dataset(paths, labels, TUTORIAL_SIZE, BATCH, training=True, seed=0, cache=False)
    return _train_steps(model, dataset, batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embed-posters", type=int, default=320, help="posters embedded for the throughput")
    parser.add_argument("--fine-tune-batches", type=int, default=20, help="timed fine-tune batches of 32")
    parser.add_argument("--tutorial-batches", type=int, default=16, help="timed batches of 32 at 400×300")
    parser.add_argument("--latency-runs", type=int, default=40, help="single-poster predictions timed")
    parser.add_argument("--skip-cold-run", action="store_true", help="skip the cold fast run (about 2 minutes)")
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    with tempfile.TemporaryDirectory(prefix="bench-training-") as folder:
        settings = _bench_settings(Path(folder))
        catalog = open_catalog(settings)
        movies = catalog.usable_movies()
        paths = movies["poster_path"].tolist()
        rng = np.random.default_rng(0)
        sample = [paths[i] for i in rng.permutation(len(paths))]
        vocabulary = GenreVocabulary.from_names(g for genres in movies["genres"] for g in genres)
        labels = vocabulary.encode_many([movies["genres"].iloc[paths.index(p)] for p in sample])

        rate = embedding_throughput(settings, sample[: args.embed_posters])
        cold, warm, run_dir = fast_runs(settings, cold=not args.skip_cold_run)
        fine_tune = fine_tune_throughput(settings, sample, labels, args.fine_tune_batches)
        p50, p95 = prediction_latency(run_dir, sample, args.latency_runs)
        tutorial = tutorial_way(
            movies.set_index("poster_path").loc[sample].reset_index(), vocabulary, args.tutorial_batches
        )
        ours_same_cnn = tf_data_same_cnn(sample, labels, args.tutorial_batches)
        history = json.loads((run_dir / "history.json").read_text())
        head_epoch = float(np.median([record["seconds"] for record in history]))

    n_train = round(len(paths) * 0.70)
    rows = [
        ("embedding, 320×224, frozen Lite0", f"{rate:.1f} posters/s"),
        ("fast run, cold (embeds every poster)", "skipped" if cold is None else f"{cold:.0f} s"),
        ("fast run, embeddings cached", f"{warm:.1f} s"),
        ("fast run, one head epoch (train + val scoring)", f"{head_epoch:.2f} s"),
        ("fine-tune, top 2 blocks, 320×224", f"{fine_tune:.1f} images/s"),
        ("fine-tune, time per epoch (est.)", f"{n_train / fine_tune:.0f} s"),
        ("predict one poster, p50", f"{p50:.1f} ms"),
        ("predict one poster, p95", f"{p95:.1f} ms"),
        ("tutorial: flow_from_dataframe, CNN 400×300", f"{tutorial:.1f} images/s"),
        ("tutorial: time per epoch (est.)", f"{n_train / tutorial:.0f} s"),
        ("same CNN 400×300 on tf.data", f"{ours_same_cnn:.1f} images/s"),
        ("tf.data / flow_from_dataframe, same CNN", f"{ours_same_cnn / tutorial:.2f}×"),
        ("tutorial epoch / fast-mode head epoch", f"{n_train / tutorial / head_epoch:.0f}×"),
    ]
    print_table(
        f"Training engine on {os.cpu_count()} CPU cores, {len(paths)} posters ({n_train} in a training epoch)", rows, 18
    )


if __name__ == "__main__":
    main()
