"""Do "labels that look wrong" find wrong labels? Plant known errors, recompute the out-of-fold scores, and
count how many of them each ranking puts in its top 100, 300 and 1,000 (movie, genre) pairs.

For 3 % of the usable movies (chosen at random with a fixed seed), one label is made wrong: half of them lose
one of their genres (never a movie's only genre), half gain one they do not have. The out-of-fold scores are
then computed on those labels exactly as the Dataset page's job does (`core.evaluation.out_of_fold`: five
stratified folds, the default fast head, the cached poster features), and each ranking orders every pair:

- disagreement (the app's list): p for a genre the movie lacks, 1 - p for one it has;
- cleanlab 2.9's multi-label label-quality scores per class (`get_label_quality_scores_per_class`), each of
  its three methods, with and without its adjustment for class imbalance (which cleanlab does not offer
  for confidence-weighted entropy).

    python bench/bench_planted_errors.py --cache-dir DIR [--data-dir DIR] [--seeds 0,1]

The cache folder's features are reused (a default fast run or the similarity index fills them); the first
time on an empty one, every poster is embedded (minutes).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import Settings, get_settings
from core.data.catalog_build import open_catalog
from core.evaluation.out_of_fold import SEED, assign_folds, out_of_fold_scores, training_labels
from core.model.embeddings import poster_embeddings
from core.training.config import make_config

PLANTED_SHARE = 0.03  # of the usable movies
TOPS = (100, 300, 1000)


def plant_errors(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The labels with errors planted, and a mask of the (movie, genre) pairs that were changed."""
    rng = np.random.default_rng(seed)
    planted = labels.copy()
    movies = rng.choice(len(labels), round(PLANTED_SHARE * len(labels)), replace=False)
    for number, movie in enumerate(movies):
        has = np.flatnonzero(labels[movie])
        lacks = np.flatnonzero(~labels[movie])
        drop = number % 2 == 0 and len(has) > 1  # a movie's only genre is never dropped: it gains one instead
        genre = rng.choice(has) if drop else rng.choice(lacks)
        planted[movie, genre] = not labels[movie, genre]
    return planted, planted != labels


def disagreement(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """How wrong each pair's label looks, as `core.evaluation.out_of_fold.doubts` ranks them."""
    return np.where(labels, 1.0 - scores, scores)


def cleanlab_doubt(labels: np.ndarray, scores: np.ndarray, method: str, adjust: bool) -> np.ndarray:
    """cleanlab's per-class label quality, turned round so that higher means more doubtful."""
    try:
        from cleanlab.multilabel_classification.rank import get_label_quality_scores_per_class
    except ImportError:
        sys.exit("This bench compares with cleanlab: pip install cleanlab==2.9.0")

    lists = [list(map(int, np.flatnonzero(row))) for row in labels]
    quality = get_label_quality_scores_per_class(lists, scores, method=method, adjust_pred_probs=adjust)
    quality = np.asarray(quality)  # an (N, K) array, though its docstring says a list of K arrays
    assert quality.shape == labels.shape, quality.shape
    return -quality


def found_in_top(doubt: np.ndarray, planted: np.ndarray, top: int) -> int:
    order = np.argsort(-doubt.ravel(), kind="stable")[:top]
    return int(planted.ravel()[order].sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, required=True, help="where the poster features are kept")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--seeds", default="0", help="planting seeds, comma-separated")
    args = parser.parse_args()
    defaults = get_settings()
    settings = Settings(args.data_dir or defaults.data_dir, args.cache_dir, args.cache_dir / "runs")
    catalog = open_catalog(settings)
    movies, genres, labels = training_labels(catalog)
    features = poster_embeddings(
        list(movies["poster_path"]),
        make_config("fast").image_size,
        settings.embeddings_dir,
        settings.weights_dir,
        data_root=catalog.data_root,
    ).vectors
    print(f"{len(movies):,} movies, {len(genres)} genres, {labels.sum():,} labels; {features.shape[1]} features\n")

    import keras

    rankings = {"disagreement (the app's)": None}
    for method in ("self_confidence", "normalized_margin", "confidence_weighted_entropy"):
        for adjust in (False, True) if method != "confidence_weighted_entropy" else (False,):  # cleanlab's rule
            rankings[f"cleanlab {method}{', adjusted' if adjust else ''}"] = (method, adjust)
    found: dict[str, list[list[int]]] = {name: [] for name in rankings}
    for seed in (int(s) for s in args.seeds.split(",")):
        planted_labels, planted = plant_errors(labels, seed)
        started = time.perf_counter()
        keras.utils.set_random_seed(SEED)
        scores = out_of_fold_scores(features, planted_labels, assign_folds(planted_labels)).astype(np.float64)
        print(
            f"seed {seed}: {planted.sum()} errors planted ({(planted & labels).sum()} genres dropped, "
            f"{(planted & ~labels).sum()} added); out-of-fold scores in {time.perf_counter() - started:.0f} s"
        )
        for name, choice in rankings.items():
            doubt = (
                disagreement(planted_labels, scores)
                if choice is None
                else cleanlab_doubt(planted_labels, scores, *choice)
            )
            found[name].append([found_in_top(doubt, planted, top) for top in TOPS])

    print(
        f"\n{'ranking':<48}" + "".join(f"{'top ' + format(top, ','):>12}" for top in TOPS) + "   (planted errors found)"
    )
    for name, counts in found.items():
        mean = np.mean(counts, axis=0)
        print(f"{name:<48}" + "".join(f"{value:>12.1f}" for value in mean))
    chance = [planted.sum() * top / planted.size for top in TOPS]  # a random order, on average
    print(f"{'random order (expected)':<48}" + "".join(f"{value:>12.1f}" for value in chance))


if __name__ == "__main__":
    main()
