"""Similarity search at a million posters: the exact index against the approximate one (core/serving/similar.py).

First the exact index at 100,000, 250,000 and 500,000 posters (time of a `nearest` query, the memory of
its float32 matrix): where it passes 30 ms or 1 GB is where `make_index` switches. Then the approximate
index is built chunk by chunk up to a million posters; at each checkpoint size (250,000, 500,000, 1,000,000)
it answers 1,000 held-out queries on ONE thread, and the bench prints recall@12 against exact search over
the same posters, query p50/p95, the index's memory, the build time so far, and its size on disk.

The posters are synthetic: each is a real poster's similarity vector (the source) plus Gaussian noise,
scaled so that its median similarity to its source equals the real posters' median nearest-neighbour
similarity, then normalised. The sources are the pooled embeddings found in the embeddings store given
with --embeddings (the app's `.cache/embeddings/<key>` folder, once it has embedded the dataset); without
it, 6,000 clustered non-negative random vectors stand in for them, with the real set's measured median.
Every chunk is generated from its own seed, so the exact ground truth is kept as a running top-12 and
no float32 matrix of a million posters (5.1 GB) is ever held.

    python bench/bench_ann.py [--embeddings DIR] [--exact-sizes 100000,250000,500000]
                              [--checkpoints 250000,500000,1000000] [--queries 1000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.serving.similar import APPROXIMATE_FROM, SEARCH_BREADTH, ApproximateIndex, SimilarityIndex, normalise  # noqa: E402

EMBEDDING_DIM = 1280  # core.model.backbone.EMBEDDING_DIM, not imported: that loads Keras
REAL_MEDIAN_NEAREST = 0.739  # median nearest-neighbour similarity of 5,729 real posters' Lite0 embeddings
CHUNK = 50_000  # posters generated, indexed and scored at a time
K = 12
TARGETS = {"recall": 0.95, "p95_ms": 10.0, "memory_gb": 1.5}
BREADTHS = (SEARCH_BREADTH, 2 * SEARCH_BREADTH)  # the index's search breadth, and twice it


def real_sources(folder: Path) -> np.ndarray:
    """The pooled embeddings (the last 1,280 columns) of every poster in an embeddings-store folder."""
    rows = [np.load(path)[:, -EMBEDDING_DIM:] for path in sorted(folder.glob("chunk-*.npy"))]
    vectors = np.concatenate(rows) if rows else np.zeros((0, EMBEDDING_DIM), np.float32)
    return normalise(vectors[np.abs(vectors).sum(axis=1) > 0])


def clustered_sources(count: int = 6_000, clusters: int = 300) -> np.ndarray:
    """Stand-ins for real embeddings: non-negative and sparse-ish like the backbone's pooled features,
    grouped around a few hundred centres as posters of one style are."""
    rng = np.random.default_rng(7)
    centres = rng.gamma(0.3, size=(clusters, EMBEDDING_DIM)).astype(np.float32)
    members = centres[rng.integers(0, clusters, count)] * rng.gamma(2.0, 0.5, size=(count, EMBEDDING_DIM))
    return normalise(members.astype(np.float32))


def median_nearest(sources: np.ndarray) -> float:
    similarity = sources @ sources.T
    np.fill_diagonal(similarity, -2.0)
    return float(np.median(similarity.max(axis=1)))


def noise_scale(target: float) -> float:
    """The per-dimension noise under which a unit vector keeps `target` similarity to itself, in median:
    cos(s, s + n) is about 1 / sqrt(1 + d·σ²) for d-dimensional Gaussian noise n."""
    return float(np.sqrt((1 / target**2 - 1) / EMBEDDING_DIM))


def posters(sources: np.ndarray, sigma: float, seed: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` synthetic posters (unit float32 rows) and the row of the source each one comes from."""
    rng = np.random.default_rng(seed)
    picked = rng.integers(0, len(sources), count)
    noise = rng.standard_normal((count, EMBEDDING_DIM), dtype=np.float32) * np.float32(sigma)
    return normalise(sources[picked] + noise), picked


def chunks(sources: np.ndarray, sigma: float, total: int) -> Iterator[np.ndarray]:
    for number, start in enumerate(range(0, total, CHUNK)):
        yield posters(sources, sigma, 1_000 + number, min(CHUNK, total - start))[0]


def exact_figures(sources: np.ndarray, sigma: float, sizes: list[int], queries: np.ndarray) -> None:
    print("\nexact index (float32, one matrix product per query)")
    print(f"{'posters':>10} {'query p50 ms':>13} {'query p95 ms':>13} {'memory GB':>10}")
    for size in sizes:
        vectors = np.concatenate(list(chunks(sources, sigma, size)))
        index = SimilarityIndex([f"tt{row:08d}" for row in range(size)], vectors)
        del vectors
        index.nearest(queries[0], k=K)
        times = []
        for query in queries[:40]:
            started = time.perf_counter()
            index.nearest(query, k=K)
            times.append((time.perf_counter() - started) * 1e3)
        p50, p95 = statistics.median(times), float(np.percentile(times, 95))
        print(f"{size:>10,} {p50:>13.1f} {p95:>13.1f} {index.vectors.nbytes / 1e9:>10.2f}", flush=True)
        del index


def approximate_figures(sources: np.ndarray, sigma: float, checkpoints: list[int], queries: np.ndarray) -> None:
    print(f"\napproximate index (usearch HNSW over int8; queries on one thread; recall@{K} against exact)")
    print(
        "graph: the int8 vectors and links, memory-mapped as the app opens them and walked by every query;"
        " disk: with the float16 vectors, of which a query reads 48 rows; built: the building process's index"
    )
    print(
        f"{'posters':>10} {'breadth':>7} {'recall':>7} {'p50 ms':>7} {'p95 ms':>7} {'graph GB':>9}"
        f" {'disk GB':>8} {'built GB':>9} {'build s':>8} {'open s':>7}"
    )
    total = max(checkpoints)
    ids = [f"tt{row:08d}" for row in range(total)]
    index = ApproximateIndex.empty(EMBEDDING_DIM)
    best_scores = np.full((len(queries), K), -np.inf, dtype=np.float32)
    best_rows = np.zeros((len(queries), K), dtype=np.int64)
    building = 0.0
    for chunk in chunks(sources, sigma, total):
        first = len(index)
        scores = queries @ chunk.T  # the exact ground truth, kept as a running top-12
        merged_scores = np.concatenate([best_scores, scores], axis=1)
        merged_rows = np.concatenate([best_rows, np.arange(first, first + len(chunk))[None].repeat(len(queries), 0)], 1)
        top = np.argsort(-merged_scores, axis=1)[:, :K]
        best_scores = np.take_along_axis(merged_scores, top, 1)
        best_rows = np.take_along_axis(merged_rows, top, 1)
        del scores, merged_scores, merged_rows
        started = time.perf_counter()
        index.add(ids[first : first + len(chunk)], chunk)
        building += time.perf_counter() - started
        if len(index) not in checkpoints:
            continue
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "similar"
            index.save(path)
            disk = sum(file.stat().st_size for file in Path(folder).iterdir()) / 1e9
            graph = path.with_suffix(".usearch").stat().st_size / 1e9
            started = time.perf_counter()
            opened = ApproximateIndex.load(path)  # memory-mapped, as the app opens it
            opening = time.perf_counter() - started
            for breadth in BREADTHS:
                opened.search_breadth = breadth
                recall, p50, p95 = _queries(opened, queries, best_rows)
                memory = index.memory_bytes / 1e9
                flags = [
                    name
                    for name, bad in (
                        ("recall", recall < TARGETS["recall"]),
                        ("p95", p95 > TARGETS["p95_ms"]),
                        ("memory", graph > TARGETS["memory_gb"]),
                    )
                    if bad
                ]
                print(
                    f"{len(index):>10,} {breadth:>7} {recall:>7.3f} {p50:>7.2f} {p95:>7.2f} {graph:>9.2f}"
                    f" {disk:>8.2f} {memory:>9.2f} {building:>8.0f} {opening:>7.2f}"
                    + (f"  misses target: {', '.join(flags)}" if flags else ""),
                    flush=True,
                )
            del opened


def _queries(index: ApproximateIndex, queries: np.ndarray, expected_rows: np.ndarray) -> tuple[float, float, float]:
    """Recall@12 against the exact answers, and the p50 and p95 of one query's time in ms (one thread)."""
    times, found = [], 0
    index.nearest(queries[0], k=K)
    for query, expected in zip(queries, expected_rows, strict=True):
        started = time.perf_counter()
        answer = index.nearest(query, k=K)
        times.append((time.perf_counter() - started) * 1e3)
        found += len({int(n.imdb_id[2:]) for n in answer} & set(expected.tolist()))
    return found / (K * len(queries)), statistics.median(times), float(np.percentile(times, 95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embeddings", type=Path, help="an embeddings-store folder of real posters")
    parser.add_argument("--exact-sizes", default="100000,250000,500000")
    parser.add_argument("--checkpoints", default="250000,500000,1000000")
    parser.add_argument("--queries", type=int, default=1000)
    args = parser.parse_args()
    exact_sizes = [int(size) for size in args.exact_sizes.split(",") if size]
    checkpoints = [int(size) for size in args.checkpoints.split(",") if size]
    if any(size % CHUNK for size in checkpoints):
        parser.error(f"checkpoints are multiples of {CHUNK:,} posters")

    sources = real_sources(args.embeddings) if args.embeddings else np.zeros((0, EMBEDDING_DIM), np.float32)
    if len(sources):
        target, origin = median_nearest(sources), f"{len(sources):,} real posters' embeddings"
    else:
        sources, target = clustered_sources(), REAL_MEDIAN_NEAREST
        origin = f"{len(sources):,} clustered random vectors (no real embeddings given)"
    sigma = noise_scale(target)
    sample, picked = posters(sources, sigma, 0, 20_000)
    achieved = float(np.median(np.einsum("ij,ij->i", sample, sources[picked])))
    print(f"sources: {origin}; median nearest-neighbour similarity {target:.3f}")
    print(f"noise σ {sigma:.4f} per dimension: median similarity of a poster to its source {achieved:.3f}")
    print(f"make_index switches to the approximate index from {APPROXIMATE_FROM:,} posters")
    queries, _ = posters(sources, sigma, 999, args.queries)  # held out: a seed no indexed chunk uses

    exact_figures(sources, sigma, exact_sizes, queries)
    approximate_figures(sources, sigma, checkpoints, queries)
    print(
        f"\ntargets: recall@{K} ≥ {TARGETS['recall']}, p95 ≤ {TARGETS['p95_ms']} ms, memory ≤ {TARGETS['memory_gb']} GB"
    )


if __name__ == "__main__":
    main()
