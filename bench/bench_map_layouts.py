"""How well each map layout keeps the posters' neighbourhoods, and how well a new poster is placed on it.

    python bench/bench_map_layouts.py [--cache-dir DIR] [--data-dir DIR] [--placed 200]

Runs on a real dataset whose posters are already embedded in the cache (the map's job, or any default
training run, fills it; otherwise this embeds them first: minutes). For each layout (PCA, UMAP as fitted,
and UMAP settled on the posters' neighbours, the app's) it prints:
- trustworthiness (scikit-learn, k = 10): whether a poster's map neighbours are its neighbours in 1,280-d;
- the genre Jaccard of a poster and its 10 map neighbours, beside the same for its 10 nearest in 1,280-d
  (what a perfect map could show) and for random pairs (what a map that keeps nothing shows).
Then, for `--placed` catalog posters each placed with itself left out of the catalog (as a new poster
would be), the share whose placed point lies nearer its own map place than its 10th map neighbour does, on
both UMAP layouts, for the app's rule and for simpler ones beside it, and the milliseconds a placement takes, as a ratio to
PCA's exact projection.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import get_settings
from core.data.catalog_build import open_catalog
from core.serving import projection
from core.serving.poster_index import build_index
from core.serving.similar import SimilarityIndex

K = 10  # neighbours, for every figure here


def nearest_rows(points: np.ndarray, k: int = K) -> np.ndarray:
    """Each point's k nearest other points (Euclidean), as (n, k) rows."""
    from sklearn.neighbors import NearestNeighbors

    _, rows = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points)
    return rows[:, 1:]


def genre_jaccard(genres: list[frozenset[str]], pairs: np.ndarray) -> float:
    """Mean Jaccard of each poster's genres with those of the posters `pairs` names for it, (n, k)."""
    scores = [len(genres[a] & genres[b]) / len(genres[a] | genres[b]) for a, row in enumerate(pairs) for b in row]
    return float(np.mean(scores))


def placement_rules() -> dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    """The app's rule, and simpler ones it was chosen over."""

    def nearest_only(similarities: np.ndarray, xy: np.ndarray) -> np.ndarray:
        return xy[int(np.argmax(similarities))]

    def mean_of_10(similarities: np.ndarray, xy: np.ndarray) -> np.ndarray:
        return xy[np.argsort(-similarities)[:K]].mean(axis=0)

    def similarity_weighted(similarities: np.ndarray, xy: np.ndarray) -> np.ndarray:
        rows = np.argsort(-similarities)[:K]
        return similarities[rows] @ xy[rows] / similarities[rows].sum()

    return {
        "nearest poster's place": nearest_only,
        "mean of the 10 nearest": mean_of_10,
        "10 nearest, weight = similarity": similarity_weighted,
        f"app: 10 nearest, weight = exp(sim / {projection.PLACE_SHARPNESS})": projection.place_among,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache-dir", type=Path, help="the cache that holds the posters' embeddings")
    parser.add_argument("--data-dir", type=Path, help="the dataset (default: the app's)")
    parser.add_argument("--placed", type=int, default=200, help="catalog posters placed with themselves left out")
    args = parser.parse_args()
    settings = get_settings()
    changes = {name: value for name, value in (("cache_dir", args.cache_dir), ("data_dir", args.data_dir)) if value}
    if changes:
        from dataclasses import replace

        settings = replace(settings, **changes)

    catalog = open_catalog(settings)
    index = build_index(catalog, settings)
    movies = catalog.usable_movies(include_non_movies=True).set_index("imdb_id").loc[index.ids]
    genres = [frozenset(names) for names in movies["genres"]]
    unit = index.vectors
    pca_xy, mean, components, explained, pca_seconds = projection.fit_pca(unit)
    raw_xy, umap_seconds = projection.fit_umap(unit)
    started = time.perf_counter()
    settled_xy = projection.settle_on_neighbours(raw_xy, *projection.nearest_others(unit))
    settle_seconds = time.perf_counter() - started
    poster_map = projection.PosterMap(
        index.ids, settled_xy, pca_xy, mean, components, explained, umap_seconds + settle_seconds, pca_seconds
    )
    print(
        f"{len(index):,} posters; PCA {pca_seconds:.1f} s, UMAP {umap_seconds:.1f} s to lay out, "
        f"settling on the neighbours {settle_seconds:.1f} s\n"
    )
    layouts = {
        projection.LAYOUTS["pca"]: pca_xy,
        "UMAP as fitted": raw_xy,
        f"app: UMAP settled (pull {projection.NEIGHBOUR_PULL})": settled_xy,
    }

    from sklearn.manifold import trustworthiness

    rng = np.random.default_rng(0)
    print(f"{'layout':<34} {'trustworthiness':>15} {'genre Jaccard':>13}")
    print(f"{'1,280-d nearest (the ceiling)':<34} {'1.000':>15} {genre_jaccard(genres, nearest_rows(unit)):>13.3f}")
    for name, xy in layouts.items():
        trust = trustworthiness(unit, xy, n_neighbors=K)
        print(f"{name:<34} {trust:>15.3f} {genre_jaccard(genres, nearest_rows(xy)):>13.3f}")
    random_pairs = rng.integers(0, len(unit), size=(len(unit), K))
    random_pairs = np.where(random_pairs == np.arange(len(unit))[:, None], (random_pairs + 1) % len(unit), random_pairs)
    print(f"{'random pairs (the floor)':<34} {'':>15} {genre_jaccard(genres, random_pairs):>13.3f}\n")

    chosen = rng.choice(len(unit), size=min(args.placed, len(unit)), replace=False)
    print(f"{args.placed} catalog posters placed on a UMAP layout with themselves left out (target: 90 % nearer")
    print("their own place than their 10th map neighbour); the distance is in units of that neighbour's distance")
    print(f"{'layout, rule':<72} {'nearer than its 10th':>20} {'median distance':>15}")
    for layout, xy in (("UMAP as fitted", raw_xy), ("UMAP settled (app)", settled_xy)):
        tenth = np.linalg.norm(xy[nearest_rows(xy)[:, -1]] - xy, axis=1)  # each poster's 10th map neighbour
        for name, rule in placement_rules().items():
            ratios = []
            for row in chosen:
                others = np.arange(len(unit)) != row
                placed = rule(unit[others] @ unit[row], xy[others])
                ratios.append(np.linalg.norm(placed - xy[row]) / tenth[row])
            share = np.mean(np.array(ratios) < 1)
            print(f"{layout + ', ' + name:<72} {share:>20.1%} {np.median(ratios):>15.2f}")

    catalog_index = SimilarityIndex(index.ids, unit)
    timings: dict[str, list[float]] = {"pca": [], "umap": []}
    for row in chosen:
        for layout, times in timings.items():
            started = time.perf_counter()
            poster_map.place(unit[row : row + 1], layout, catalog_index)
            times.append(time.perf_counter() - started)
    pca_ms, umap_ms = (statistics.median(timings[layout]) * 1000 for layout in ("pca", "umap"))
    print(f"\nplacing one poster (median): PCA {pca_ms:.3f} ms, UMAP by neighbours {umap_ms:.3f} ms "
          f"({umap_ms / pca_ms:.0f}× PCA's)")  # fmt: skip


if __name__ == "__main__":
    main()
