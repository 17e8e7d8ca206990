"""What a user waits for after dropping a poster: validation + preprocessing + prediction + similarity search,
p50/p95 over real posters with the model warm, and the similarity search alone against a brute-force
baseline in the same run; then drop-to-chips with one backbone pass for the scores and the similarity
vector (`PosterReader`, when the run allows it) against the two passes, on the same posters; and that one
pass by OpenVINO against Keras.

    python bench/bench_predict.py --run runs/<id> [--posters 100] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import Settings, get_settings
from core.data.catalog_build import open_catalog
from core.serving.poster_index import PosterEmbedder, PosterReader, build_index
from core.serving.predict import LoadedModel, load_run_model, predict_images
from core.serving.uploads import validate_upload


def _percentiles(seconds: list[float]) -> tuple[float, float]:
    ordered = sorted(seconds)
    return statistics.median(ordered) * 1000, ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a finished run folder (the model to time)")
    parser.add_argument("--posters", type=int, default=100)
    parser.add_argument("--data-dir", type=Path)
    args = parser.parse_args()
    defaults = get_settings()
    settings = Settings(args.data_dir or defaults.data_dir, defaults.cache_dir, defaults.runs_dir)

    catalog = open_catalog(settings)
    print("Building the similarity index (cached embeddings are reused)…", flush=True)
    index = build_index(catalog, settings)
    model = load_run_model(args.run)
    embedder = PosterEmbedder(settings.weights_dir)
    paths = list(catalog.usable_movies()["poster_path"].sample(n=args.posters, random_state=0))
    blobs = [(Path(path).name, Path(path).read_bytes()) for path in paths]

    # Warm-up: the first call traces the TensorFlow functions.
    warm = validate_upload(*reversed(blobs[0]))
    predict_images(model, [warm.pixels])
    embedder.embed([warm.pixels])

    stages: dict[str, list[float]] = {"validate": [], "predict": [], "embed": [], "search": [], "total": []}
    for name, data in blobs:
        started = time.perf_counter()
        poster = validate_upload(data, name)
        validated = time.perf_counter()
        scores = predict_images(model, [poster.pixels])[0]
        predicted = time.perf_counter()
        vector = embedder.embed([poster.pixels])[0]
        embedded = time.perf_counter()
        index.nearest(vector, k=12)
        model.vocabulary.top_k(scores, 3)
        searched = time.perf_counter()
        stages["validate"].append(validated - started)
        stages["predict"].append(predicted - validated)
        stages["embed"].append(embedded - predicted)
        stages["search"].append(searched - embedded)
        stages["total"].append(searched - started)

    query = index.vectors[0]
    raw = np.asarray(index.vectors, dtype=np.float64) * 3.0  # unnormalised, as a naive search would hold them
    repeats = 200
    started = time.perf_counter()
    for _ in range(repeats):
        index.nearest(query, k=12)
    fast = (time.perf_counter() - started) / repeats
    started = time.perf_counter()
    for _ in range(repeats // 10):
        scores = [float(row @ query / (np.linalg.norm(row) * np.linalg.norm(query))) for row in raw]
        sorted(range(len(scores)), key=scores.__getitem__, reverse=True)[:12]
    naive = (time.perf_counter() - started) / (repeats // 10)

    print(f"\nDrop-to-chips latency over {len(blobs)} real posters, model warm ({args.run.name}):")
    print(f"  {'stage':<34} {'p50 (ms)':>9} {'p95 (ms)':>9}")
    labels = {
        "validate": "validate upload (decode, checks)",
        "predict": "preprocess + predict genres",
        "embed": "embed for similarity",
        "search": "nearest posters + top-3",
        "total": "total",
    }
    for key, label in labels.items():
        p50, p95 = _percentiles(stages[key])
        print(f"  {label:<34} {p50:>9.1f} {p95:>9.1f}")
    print(f"\nSimilarity search over {len(index):,} posters: {fast * 1000:.2f} ms (matrix product)")
    print(f"  per-poster Python loop baseline: {naive * 1000:.1f} ms ({naive / fast:.0f}× slower)")

    # Drop to chips, both ways, alternating poster by poster so that both see the same machine load.
    reader = PosterReader(model, lambda: embedder)
    reader.read([warm.pixels])
    both: dict[str, list[float]] = {"two passes": [], "one pass": []}
    for name, data in blobs:
        for way in ("two passes", "one pass"):
            started = time.perf_counter()
            poster = validate_upload(data, name)
            if way == "one pass" and reader.one_pass:
                scores, vector = reader.read([poster.pixels])
            else:
                scores, vector = predict_images(model, [poster.pixels]), embedder.embed([poster.pixels])
            model.vocabulary.top_k(scores[0], 3)
            both[way].append(time.perf_counter() - started)
    print(f"\nDrop to chips (validate, scores and similarity vector, top-3), {len(blobs)} posters:")
    print(f"  one backbone pass possible for this run: {reader.one_pass}")
    for way, seconds in both.items():
        p50, p95 = _percentiles(seconds)
        print(f"  {way:<12} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms")
    ratio = statistics.median(both["two passes"]) / statistics.median(both["one pass"])
    print(f"  two passes / one pass (p50): {ratio:.2f}×")
    if reader.one_pass:
        compare_engines(model, embedder, blobs)


def compare_engines(model: LoadedModel, embedder: PosterEmbedder, blobs: list[tuple[str, bytes]]) -> None:
    """Drop to chips in one pass by OpenVINO and by Keras, alternating poster by poster (same machine load)."""
    readers = {
        "openvino": PosterReader(model, lambda: embedder),
        "keras": PosterReader(model, lambda: embedder, openvino=False),
    }
    seconds: dict[str, list[float]] = {engine: [] for engine in readers}
    for name, data in [blobs[0], *blobs]:  # the first poster again, untimed below: it compiles both
        for engine, reader in readers.items():
            started = time.perf_counter()
            scores, _ = reader.read([validate_upload(data, name).pixels])
            model.vocabulary.top_k(scores[0], 3)
            seconds[engine].append(time.perf_counter() - started)
    print(f"\nDrop to chips in one pass, by engine, {len(blobs)} posters:")
    for engine, timed in seconds.items():
        p50, p95 = _percentiles(timed[1:])
        print(f"  {engine:<9} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms")
    ratio = statistics.median(seconds["keras"][1:]) / statistics.median(seconds["openvino"][1:])
    print(f"  keras / openvino (p50): {ratio:.2f}×")


if __name__ == "__main__":
    main()
