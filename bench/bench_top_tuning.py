"""Tuning the top K blocks on cached maps against today's frozen default, on the temporal split.

    python -m bench.bench_top_tuning [--blocks 0,1,2,3] [--seeds 3] [--first-seed 1] [--seed-step 10]
                                     [--set tune_learning_rate=3e-5 ...] [--json out.json]

Each (K, seed) trains the temporal twin of today's default fast run (Lite0 at 384×256, three heads refitted
on training + validation) with `tune_top_blocks=K` (K = 0: the frozen default), in a process of its own, so
that its peak memory (the child's maximum resident set, from `wait4`) and wall time are its own. The maps of
each K are computed first, once, in their own process (timed apart: a run pays it only on its first use).
The table gives, per K, the mean ± sd over seeds of the temporal validation mAP (what chooses), and the
temporal test mAP, hit@3 and P@3 (reported, never used to choose), with seconds and peak MB per run.
Needs the frozen features of 384×256 cached (any earlier default run, or `make bench` on an empty cache
embeds them first, in the K = 0 rows).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TODAY = {"image_size": "384x256", "refit": True, "head_ensemble": 3}


def _child(args: argparse.Namespace) -> None:
    """One twin (or, with --maps-only, the maps of one K), its figures written to --out."""
    from bench.bench_new_movies import _twin_figures
    from core.config import get_settings
    from core.data.catalog_build import open_catalog
    from core.model.cached_maps import embed_activations
    from core.training.config import parse_image_size

    settings = get_settings()
    overrides = {**TODAY, **_settings(args.set), "tune_top_blocks": args.blocks}
    if args.maps_only:
        catalog = open_catalog(settings)
        movies = catalog.usable_movies()
        result = embed_activations(
            list(movies["poster_path"]),
            parse_image_size(overrides["image_size"]),
            settings.embeddings_dir,
            settings.weights_dir,
            args.blocks,
            data_root=catalog.data_root,
        )
        Path(args.out).write_text(json.dumps({"computed": result.computed, "reused": result.reused}))
        return
    with tempfile.TemporaryDirectory() as work:
        figures = _twin_figures(overrides, args.seed, settings, Path(work))
    val, test = figures["temporal_validation"]["summary"], figures["temporal_test"]["summary"]
    row = {f"val_{key}": val[key] for key in ("map", "hit_at_3", "p_at_3")}
    row |= {f"test_{key}": test[key] for key in ("map", "hit_at_3", "p_at_3")}
    row["best_epoch"] = figures["temporal"]["best_epoch"]
    Path(args.out).write_text(json.dumps(row))


def _settings(pairs: list[str] | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for pair in pairs or []:
        name, _, text = pair.partition("=")
        values[name] = json.loads(text) if text[:1].isdigit() or text in ("true", "false") else text
    return values


def _run_child(argv: list[str]) -> tuple[dict[str, Any], float, float]:
    """The child's result, its wall seconds and its peak resident memory in MB."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = handle.name
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "bench.bench_top_tuning", "child", *argv, "--out", out])
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"child {argv} failed with {os.waitstatus_to_exitcode(status)}")
    result = json.loads(Path(out).read_text())
    os.unlink(out)
    return result, seconds, usage.ru_maxrss / 1024  # ru_maxrss is in kB on Linux


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_top_tuning", description=__doc__.split("\n")[0])
    parser.add_argument("command", nargs="?", default="table", choices=("table", "child"))
    parser.add_argument("--blocks", default="0,1,2,3")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--seed-step", type=int, default=10)
    parser.add_argument("--set", action="append", help="another setting for every row, e.g. tune_epochs=10")
    parser.add_argument("--json")
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--maps-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.command == "child":
        args.blocks = int(args.blocks)
        _child(args)
        return
    extra = [item for pair in args.set or [] for item in ("--set", pair)]
    seeds = [args.first_seed + args.seed_step * number for number in range(args.seeds)]
    rows: dict[int, list[dict[str, Any]]] = {}
    maps: dict[int, tuple[dict[str, Any], float, float]] = {}
    for blocks in [int(value) for value in args.blocks.split(",")]:
        if blocks:
            maps[blocks] = _run_child(["--blocks", str(blocks), "--maps-only", *extra])
            print(f"maps of K={blocks}: {maps[blocks][0]} in {maps[blocks][1]:.0f} s", file=sys.stderr, flush=True)
        rows[blocks] = []
        for seed in seeds:
            row, seconds, peak = _run_child(["--blocks", str(blocks), "--seed", str(seed), *extra])
            rows[blocks].append({**row, "seconds": seconds, "peak_mb": peak})
            print(f"K={blocks} seed {seed}: {rows[blocks][-1]}", file=sys.stderr, flush=True)
    keys = ["val_map", "test_map", "test_hit_at_3", "test_p_at_3", "seconds", "peak_mb"]
    print(f"Seeds {', '.join(map(str, seeds))}; settings {TODAY | _settings(args.set)}.")
    print("| top blocks tuned | temporal val mAP | temporal test mAP | test hit@3 | test P@3 | s per run | peak MB |")
    print("|---|---|---|---|---|---|---|")
    for blocks, found in rows.items():
        cells = []
        for key in keys:
            values = [row[key] for row in found]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            digits = 0 if key in ("seconds", "peak_mb") else 4
            cells.append(f"{statistics.mean(values):.{digits}f} ± {spread:.{digits}f}")
        print(f"| {blocks or 'none (frozen)'} | " + " | ".join(cells) + " |")
    for blocks, (result, seconds, peak) in maps.items():
        print(f"Maps of K={blocks}: {result['computed']} computed in {seconds:.0f} s, peak {peak:.0f} MB.")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "maps": maps}, indent=2))


if __name__ == "__main__":
    main()
