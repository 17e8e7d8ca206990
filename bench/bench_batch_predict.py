"""Batch prediction over a folder against the backbone's own embedding speed, in the same run.

    python -m bench.bench_batch_predict --run runs/<id> [--posters 2000] [--repeats 3]

Three figures, start-up (TensorFlow, model loading, tracing) excluded from each:
- the backbone alone: the run's feature extractor on posters already decoded and resized in memory, once
  per view the model reads (the poster, and its mirror image in a run that averages it in), the fastest a
  prediction could go (its pure compute);
- `stream_scores`: files → decode (threads) → resize (tf.data) → model, what `python -m core.predict` runs;
- with `--decode-first`, also every file decoded first, then `predict_images` (the command before streaming).
Each is the median of `--repeats` passes, in posters per second, with its ratio to the backbone.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import tensorflow as tf

from core.config import get_settings
from core.data.catalog_build import open_catalog
from core.model.features import make_feature_extractor
from core.model.pipeline import resize_posters
from core.serving.predict import decode_image_file, load_run_model, predict_images, stream_scores


def _rate(posters: int, seconds: list[float]) -> float:
    return posters / statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--posters", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backbone-posters", type=int, default=256, help="posters per pass of the backbone alone")
    parser.add_argument("--decode-first", action="store_true", help="also time decoding every file first")
    args = parser.parse_args()
    settings = get_settings()
    paths = list(open_catalog(settings).usable_movies()["poster_path"].sample(n=args.posters, random_state=0))
    loaded = load_run_model(args.run)
    features = make_feature_extractor(loaded.image_size, settings.weights_dir, loaded.config.get("backbone", "lite0"))

    sample = resize_posters([decode_image_file(path) for path in paths[: args.backbone_posters]], loaded.image_size)
    batches = [sample[start : start + 32] for start in range(0, len(sample), 32)]
    # Traced like the run model's `serve`, so both are timed as the same kind of call.
    mirrored = bool(loaded.config.get("flip_tta"))

    def views(batch):
        plain = features(batch, training=False)
        return (plain, features(tf.reverse(batch, axis=[2]), training=False)) if mirrored else (plain,)

    embed = tf.function(views, input_signature=[tf.TensorSpec((None, *loaded.image_size, 3), tf.float32)])
    embed(tf.constant(batches[0]))  # tracing: excluded
    list(stream_scores(loaded, paths[:32]))  # warm-up of the pipeline and the model, excluded
    predict_images(loaded, [decode_image_file(paths[0])])

    backbone, streamed, decoded_first = [], [], []
    for _ in range(args.repeats):
        started = time.perf_counter()
        for batch in batches:
            [view.numpy() for view in embed(tf.constant(batch))]
        backbone.append(time.perf_counter() - started)

        started = time.perf_counter()
        count = sum(1 for _ in stream_scores(loaded, paths))
        streamed.append(time.perf_counter() - started)

        if args.decode_first:
            started = time.perf_counter()
            predict_images(loaded, [decode_image_file(path) for path in paths])
            decoded_first.append(time.perf_counter() - started)

    base = _rate(len(sample), backbone)
    print(
        f"{count} posters streamed, backbone timed on {len(sample)} ({2 if mirrored else 1} view(s) each, as the "
        f"model reads them); median of {args.repeats} passes"
    )
    print("| pipeline | posters/s | against the backbone alone |")
    print("|---|---|---|")
    rows = [
        ("backbone alone (decoded, resized, in memory)", base),
        ("stream_scores (python -m core.predict)", _rate(count, streamed)),
    ]
    if decoded_first:
        rows.append(("decode every file first, then predict_images", _rate(len(paths), decoded_first)))
    for name, rate in rows:
        print(f"| {name} | {rate:.2f} | {rate / base:.0%} |")


if __name__ == "__main__":
    main()
