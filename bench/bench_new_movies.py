"""What helps on posters of new movies: each factor varied alone, judged on the temporal split.

    python -m bench.bench_new_movies cost  [--factors "lite2 320x224,flip TTA"] [--posters 64] [--repeats 3]
    python -m bench.bench_new_movies embed --factors "default,lite2 320x224"
    python -m bench.bench_new_movies sweep [--seeds 3] [--factors default,linear,...] [--backtest-from 2002]
                                           [--json out.json]

`cost` prints the embedding time of each candidate (every factor by default) against today's default
(Lite0 at 320×224, one view) on the same posters in the same process (median of `--repeats` timed passes
after a warm-up, summed over the views and sizes a candidate embeds): the embedding cost limit of a
candidate is judged on that ratio. `embed` fills the embeddings caches of the named factors for every
usable movie (slow, resumable: the cache keeps what was done). `sweep` trains the temporal twin of a fast run
(core.training.twin) for each factor and seed on cached features, and prints one row per factor: the
3-seed mean temporal *validation* mAP (what chooses), with hit@3 and P@3, and the temporal test figures
beside it (reported, never used to choose). A factor whose features are not cached is embedded first.
A refit trains on the validation part, so validation cannot judge it: `--backtest-from 2002` also trains
each twin cut at 2002 and scores it on the movies of 2002–2003 only, years the real temporal test (2004 on)
never holds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from core.config import get_settings
from core.data.catalog_build import open_catalog
from core.model.embeddings import poster_embeddings
from core.model.features import make_feature_extractor, make_scaled_feature_extractor
from core.model.pipeline import make_poster_dataset
from core.training import metrics
from core.training import run_folder as rf
from core.training.config import make_config, parse_image_size
from core.training.epochs import Progress
from core.training.fast import train_fast
from core.training.stop import StopControl
from core.training.temporal_split import VALIDATION_YEARS
from core.training.twin import PREDICTIONS_KEY, train_temporal_twin

# The fast run's default before this sweep chose a new one, spelled out so that its row stays what it was.
DEFAULT = {"backbone": "lite0", "image_size": "320x224", "flip_tta": False, "head_ensemble": 1, "refit": False}
# One factor at a time, against that default (Lite0, 320×224, one 512-unit head, no weighting), then combined.
FACTORS: dict[str, dict[str, Any]] = {
    "default": {},
    "linear head": {"head_hidden_units": 0},
    "sqrt pos-weighting": {"pos_weighting": "sqrt"},
    "lite2 320x224": {"backbone": "lite2"},
    "lite2 320x224 + linear head": {"backbone": "lite2", "head_hidden_units": 0},
    "lite2 372x260 (native width)": {"backbone": "lite2", "image_size": "372x260"},
    "flip TTA": {"flip_tta": True},
    "224x224 squash": {"image_size": "224x224"},
    "384x256": {"image_size": "384x256"},
    "multi-scale 320x224 + 224x160": {"multi_scale": "224x160"},
    "multi-scale 384x256 + 320x224": {"image_size": "384x256", "multi_scale": "320x224"},
    "ensemble of 3 heads": {"head_ensemble": 3},
    "refit": {"refit": True},
    "refit + ensemble of 3": {"refit": True, "head_ensemble": 3},
    "384x256 + flip TTA": {"image_size": "384x256", "flip_tta": True},
    "384x256 + refit + ensemble of 3": {"image_size": "384x256", "refit": True, "head_ensemble": 3},
    "384x256 + flip TTA + refit + ensemble of 3": {
        "image_size": "384x256",
        "flip_tta": True,
        "refit": True,
        "head_ensemble": 3,
    },
}
# Today's default (384×256, three heads refitted), and the losses and weightings for the imbalance on it.
TODAY = {"image_size": "384x256", "refit": True, "head_ensemble": 3}
FACTORS |= {
    "today + asymmetric loss": {**TODAY, "loss": "asymmetric"},
    "today + effective-number weighting": {**TODAY, "pos_weighting": "effective-number"},
    "today + sqrt weighting": {**TODAY, "pos_weighting": "sqrt"},
    "today + balanced weighting": {**TODAY, "pos_weighting": "balanced"},
    # The heads as the fine-tune mode trains its first one (3e-4 in batches of 32), not 1e-3 in batches of 128.
    "today + heads at 3e-4 in batches of 32": {**TODAY, "learning_rate": 3e-4, "batch_size": 32},
    "today + lite1": {**TODAY, "backbone": "lite1"},
    "today + lite0 + lite1 + lite2": {**TODAY, "extra_backbones": ("lite1", "lite2")},
    "today + asymmetric loss + effective-number weighting": {
        **TODAY,
        "loss": "asymmetric",
        "pos_weighting": "effective-number",
    },
}
HEAD_ONLY = ("linear head", "sqrt pos-weighting", "lite2 320x224 + linear head", "ensemble of 3 heads", "refit")
HEAD_ONLY += ("refit + ensemble of 3",)  # the head or the loss: the default's features, no embedding cost of their own


def _usable_paths(settings) -> list[str]:
    return list(open_catalog(settings).usable_movies()["poster_path"])


def _timed_pass(embed, dataset) -> float:
    started = time.perf_counter()
    for batch in dataset:
        embed(batch).numpy()
    return time.perf_counter() - started


def _extractors(factor: dict[str, Any], weights_dir: Path) -> tuple[tuple[int, int], list[tuple[Any, int]]]:
    """The factor's image size and each feature extractor it runs per poster, with how many views it sees."""
    settings = {**DEFAULT, **factor}
    image_size = parse_image_size(settings["image_size"])
    views = 2 if settings.get("flip_tta") else 1
    extractors = [(make_feature_extractor(image_size, weights_dir, settings["backbone"]), views)]
    extractors += [
        (make_feature_extractor(image_size, weights_dir, extra), views) for extra in settings.get("extra_backbones", ())
    ]
    if settings.get("multi_scale"):
        smaller = parse_image_size(settings["multi_scale"])
        extractors.append(
            (make_scaled_feature_extractor(image_size, smaller, weights_dir, settings["backbone"]), views)
        )
    return image_size, extractors


def cost(args: argparse.Namespace) -> None:
    """Seconds per poster of each candidate against the default, same posters, same process."""
    settings = get_settings()
    paths = _usable_paths(settings)[: args.posters]
    names = ["default", *(name.strip() for name in args.factors.split(","))] if args.factors else list(FACTORS)
    rows = []
    for name in dict.fromkeys(names):
        if name in HEAD_ONLY:
            continue
        image_size, extractors = _extractors(FACTORS[name], settings.weights_dir)
        dataset = make_poster_dataset(paths, image_size, 32).cache()
        seconds = 0.0
        for features, views in extractors:
            # Traced, as the embeddings cache runs it (an eager call per batch adds overhead of its own).
            embed = tf.function(lambda batch, features=features: features(batch, training=False))
            for _ in range(2):  # warm-up: tracing, the decoded posters cached, oneDNN's kernels chosen
                _timed_pass(embed, dataset)
            seconds += statistics.median(_timed_pass(embed, dataset) for _ in range(args.repeats)) * views
        rows.append((name, seconds))
        print(f"{name}: {seconds:.2f} s", file=sys.stderr, flush=True)
    print(f"| features | s per {len(paths)} posters (median of {args.repeats}) | cost against the default |")
    print("|---|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.2f} | {seconds / rows[0][1]:.2f}x |")


def embed(args: argparse.Namespace) -> None:
    """Fill the embeddings caches of the named factors for every usable movie."""
    settings = get_settings()
    paths = _usable_paths(settings)
    for name in (name.strip() for name in args.factors.split(",")):
        factor = {**DEFAULT, **FACTORS[name]}
        started = time.perf_counter()

        def report(done: int, total: int, started: float = started, name: str = name) -> None:
            if done % 512 == 0 or done == total:
                print(
                    f"{name}: {done}/{total} posters, {time.perf_counter() - started:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )

        result = poster_embeddings(
            paths,
            parse_image_size(factor["image_size"]),
            settings.embeddings_dir,
            settings.weights_dir,
            bool(factor.get("flip_tta")),
            progress=report,
            backbone=factor["backbone"],
            multi_scale=parse_image_size(factor["multi_scale"]) if factor.get("multi_scale") else None,
            data_root=open_catalog(settings).data_root,
        )
        seconds = time.perf_counter() - started
        rate = result.computed / seconds if result.computed else float("nan")
        print(f"{name}: {result.computed} embeddings computed ({rate:.2f} per s), {result.reused} reused", flush=True)


def _twin_figures(overrides: dict[str, Any], seed: int, settings, work: Path, test_from: int | None = None):
    config = make_config("fast", **{**DEFAULT, **overrides, "seed": seed, "temporal_test_from": test_from})
    run_dir = work / f"run-{time.monotonic_ns()}"
    progress = Progress(
        run_dir, rf.StatusWriter(rf.claim_run_dir(run_dir)), rf.RunLog(run_dir, echo=False), StopControl(run_dir)
    )
    figures, _ = train_temporal_twin(config, settings, progress, tf.distribute.get_strategy(), train_fast)
    progress.log.close()
    if "temporal_test" not in figures:
        raise RuntimeError(figures["temporal"].get("skipped"))
    return figures


def _backtest(figures: dict[str, Any], years: dict[str, int], before: int) -> dict[str, float]:
    """The twin's figures on its test movies from before `before` only: a test part that the real temporal
    test never overlaps, for choosing what validation cannot judge (a refit trains on validation)."""
    predictions = figures[PREDICTIONS_KEY]
    keep = np.array([years[str(imdb_id)] < before for imdb_id in predictions["temporal_test_ids"]])
    labels, scores = predictions["temporal_test_labels"][keep], predictions["temporal_test_scores"][keep]
    return {
        "map": metrics.mean_average_precision(labels, scores),
        "hit_at_3": metrics.hit_at_k(labels, scores, 3),
        "p_at_3": metrics.precision_at_k(labels, scores, 3),
        "movies": int(keep.sum()),
    }


def sweep(args: argparse.Namespace) -> None:
    """Per factor and seed: the temporal twin at the real cut (validation chooses; test reported), and with
    `--backtest-from` a second twin cut earlier and scored on the years before the real cut only."""
    settings = get_settings()
    names = [name.strip() for name in args.factors.split(",")] if args.factors else list(FACTORS)
    movies = open_catalog(settings).usable_movies()
    years = {
        str(imdb_id): int(year) for imdb_id, year in zip(movies["imdb_id"], movies["year"], strict=True) if year == year
    }
    seeds = [args.first_seed + args.seed_step * number for number in range(args.seeds)]
    results: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as work:
        for name in names:
            results[name] = []
            for seed in seeds:
                started = time.perf_counter()
                figures = _twin_figures(FACTORS[name], seed, settings, Path(work))
                val, test = figures["temporal_validation"], figures["temporal_test"]
                row = {
                    **{f"val_{key}": val["summary"][key] for key in ("map", "hit_at_3", "p_at_3")},
                    **{f"test_{key}": test["summary"][key] for key in ("map", "hit_at_3", "p_at_3")},
                    "test_top3_hit_at_3": test["baselines"]["top3_frequent"]["hit_at_3"],
                    "test_top3_p_at_3": test["baselines"]["top3_frequent"]["p_at_3"],
                    "test_chance_map": test["baselines"]["chance_map"],
                }
                if args.backtest_from is not None:
                    early = _twin_figures(FACTORS[name], seed, settings, Path(work), args.backtest_from)
                    back = _backtest(early, years, figures["temporal"]["test_from"])
                    row.update({f"back_{key}": value for key, value in back.items()})
                row["seconds"] = time.perf_counter() - started
                results[name].append(row)
                print(f"{name} seed {seed}: {row}", file=sys.stderr, flush=True)
    keys = ["val_map", "val_hit_at_3", "val_p_at_3"]
    header = "| factor (mean ± sd over seeds) | temporal val mAP | val hit@3 | val P@3 |"
    if args.backtest_from is not None:
        keys += ["back_map", "back_hit_at_3", "back_p_at_3"]
        header += " backtest mAP | backtest hit@3 | backtest P@3 |"
    keys += ["test_map", "test_hit_at_3", "test_p_at_3"]
    header += " temporal test mAP | test hit@3 | test P@3 |"
    print(f"Seeds {', '.join(map(str, seeds))}.")
    print(header)
    print("|---" * (len(keys) + 1) + "|")
    for name, rows in results.items():
        cells = []
        for key in keys:
            values = [row[key] for row in rows]
            spread = np.std(values, ddof=1) if len(values) > 1 else 0.0
            cells.append(f"{np.mean(values):.4f} ± {spread:.4f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    first = next(iter(results.values()))[0]
    print(
        f"\nBaselines on the temporal test part: top-3 frequent hit@3 {first['test_top3_hit_at_3']:.4f}, "
        f"P@3 {first['test_top3_p_at_3']:.4f}, chance mAP {first['test_chance_map']:.4f}"
    )
    if args.backtest_from is not None:
        print(
            f"Backtest: twins cut at {args.backtest_from} (training before {args.backtest_from - VALIDATION_YEARS}, "
            f"validation {args.backtest_from - VALIDATION_YEARS}–{args.backtest_from - 1}), scored on their "
            f"{first['back_movies']} test movies before the real cut only."
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_new_movies", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("cost", "embed"):
        command = commands.add_parser(name)
        command.add_argument("--factors", help=f"comma-separated, of: {', '.join(FACTORS)}", required=name == "embed")
        command.add_argument("--posters", type=int, default=64)
        command.add_argument("--repeats", type=int, default=3)
    command = commands.add_parser("sweep")
    command.add_argument("--seeds", type=int, default=3)
    command.add_argument("--first-seed", type=int, default=1)
    command.add_argument(
        "--seed-step",
        type=int,
        default=10,
        help="seeds first-seed, first-seed + step, …: apart, so that the "
        "heads of an ensemble (seed, seed + 1, …) never repeat across rows",
    )
    command.add_argument(
        "--backtest-from", type=int, help="also cut at this earlier year and score the years before the real cut"
    )
    command.add_argument("--factors", help=f"comma-separated, of: {', '.join(FACTORS)}")
    command.add_argument("--json")
    args = parser.parse_args(argv)
    {"cost": cost, "embed": embed, "sweep": sweep}[args.command](args)


if __name__ == "__main__":
    main()
