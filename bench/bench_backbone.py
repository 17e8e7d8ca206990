"""How fast each registered backbone embeds posters on this machine, and what the weight cache saves.

Run from the project root: `python bench/bench_backbone.py [--batches N] [--backbones lite0,lite1,lite2]`.
Prints one table: embedding throughput in posters/s (best of 3 rounds) for batches of 32 at two poster
sizes, for each backbone, with its time per poster as a ratio to the first backbone's (Lite0 by default,
the baseline, measured in the same run); then Lite0's first (cold) load, which ports the PyTorch file,
against a later (warm) load from the Keras cache. Random pixels are enough for throughput.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # so `core` imports when run as a script

from core.backbone import load_pretrained
from core.backbones import BACKBONES, LITE0, Backbone

BATCH_SIZE = 32
# (height, width): a portrait poster, and the square size the network was trained at.
SIZES = ((320, 224), (224, 224))


def posters_per_second(
    entry: Backbone, height: int, width: int, batches: int, cache_dir: Path, rounds: int = 3
) -> float:
    """Embedding throughput for batches of random posters: the best of a few timed rounds after a warm-up.

    The best round, not the mean, because on a shared machine the other rounds measure the neighbours.
    """
    model = load_pretrained((height, width, 3), cache_dir=cache_dir, spec=entry)
    posters = np.random.default_rng(0).uniform(0, 255, (BATCH_SIZE, height, width, 3)).astype("float32")
    for _ in range(2):
        model.predict_on_batch(posters)
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(batches):
            model.predict_on_batch(posters)
        best = max(best, BATCH_SIZE * batches / (time.perf_counter() - start))
    return best


def load_seconds(cache_dir: Path) -> float:
    start = time.perf_counter()
    load_pretrained((224, 224, 3), cache_dir=cache_dir, spec=LITE0)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=5, help="timed batches per round (default 5)")
    parser.add_argument(
        "--backbones", default=",".join(BACKBONES), help="comma-separated names; the first is the baseline"
    )
    args = parser.parse_args()
    entries = [BACKBONES[name.strip()] for name in args.backbones.split(",")]

    with tempfile.TemporaryDirectory() as folder:
        cache_dir = Path(folder)
        cold = load_seconds(cache_dir)
        warm = min(load_seconds(cache_dir) for _ in range(3))
        rows = []
        for height, width in SIZES:
            rates = [posters_per_second(entry, height, width, args.batches, cache_dir) for entry in entries]
            for entry, rate in zip(entries, rates, strict=True):
                label = f"{entry.name}: embed {height}×{width}, batch {BATCH_SIZE}"
                rows.append((label, f"{rate:.1f} posters/s, {rates[0] / rate:.2f}× {entries[0].name}"))
    rows += [
        ("lite0: load, cold (port .pth + cache)", f"{cold:.2f} s"),
        ("lite0: load, warm (from cache)", f"{warm:.2f} s"),
        ("cold / warm", f"{cold / warm:.1f}×"),
    ]
    width = max(len(label) for label, _ in rows)
    print(f"EfficientNet-Lite backbones on {os.cpu_count()} CPU cores")
    for label, value in rows:
        print(f"  {label:<{width}}  {value:>30}")


if __name__ == "__main__":
    main()
