"""How fast each registered backbone embeds posters on this machine, and what the weight cache saves.

Run from the project root: `python bench/bench_backbone.py [--batches N] [--backbones lite0,lite1,lite2]`.
Prints one table: embedding throughput in posters/s (best of 3 rounds) for batches of 32 at two poster
sizes, for each backbone, with its time per poster as a ratio to the first backbone's (Lite0 by default,
the baseline, measured in the same run); then Lite0's first (cold) load, which ports the PyTorch file,
against a later (warm) load from the Keras cache. Random pixels are enough for throughput.

With `--engine keras,openvino [--posters 1000,5745,25000]` it times instead what a first run waits for:
embedding N real posters from disk (decode, resize, backbone: the embeddings store's fill) by each engine,
at the similarity size. Keras runs at its fastest batch size (4, 8, 16 or 32, chosen on a first sample of 256
posters from disk in the same run), OpenVINO fed batches of EMBEDDING_BATCH_SIZE as the store does (one poster
a request, several in flight); beyond the real dataset's posters, generated JPEGs of the same size are
written to a temporary folder. Each engine and batch size runs in a process of its own, and they take turns
on slices of the same posters (`bench/engine_race.py`), so that the machine's neighbours weigh on all alike.
Prints posters/s per engine, the ratio OpenVINO / Keras, and seconds per 1000 posters at each count (flat
when time grows linearly). First, the backbone alone on 160 posters decoded beforehand, each engine at its
batch sizes: what the engine itself changes, apart from the decoding that shares the cores.
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

from bench.table import print_table
from core.config import get_settings
from core.model.backbone import load_pretrained
from core.model.backbones import BACKBONES, LITE0, Backbone

BATCH_SIZE = 32
# The batch sizes Keras is tried at, so that OpenVINO is compared with Keras at its best, not at ours.
KERAS_BATCHES = (4, 8, 16, 32)
SAMPLE_POSTERS = 256  # enough posters for the choice of Keras's batch to outlast a neighbour's burst
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


def real_posters() -> list[Path]:
    return sorted((get_settings().data_dir / "Movie_Poster_Dataset").glob("*/*.jpg"))


def poster_files(count: int, folder: Path) -> list[Path]:
    """`count` poster files: the real ones first, then generated JPEGs of a real poster's size."""
    from PIL import Image, ImageDraw

    files = real_posters()[:count]
    rng = np.random.default_rng(1)
    for number in range(count - len(files)):
        path = folder / f"generated-{number:06d}.jpg"
        if not path.exists():
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            image = Image.new("RGB", (182, 268), colour)
            x, y = (int(v) for v in rng.integers(0, 150, 2))
            ImageDraw.Draw(image).ellipse((x, y, x + 60, y + 90), fill=tuple(255 - c for c in colour))
            image.save(path, format="JPEG", quality=90)
        files.append(path)
    return files


def compare_engines(engines: list[str], counts: list[int]) -> None:
    """Each engine in a process of its own, taking turns on the same posters (`bench.engine_race`)."""
    from bench.engine_race import in_turns, started
    from core.model.embeddings import EMBEDDING_BATCH_SIZE
    from core.serving.poster_index import SIMILARITY_IMAGE_SIZE

    height, width = SIMILARITY_IMAGE_SIZE
    print(f"Embedding posters from disk, Lite0 at {height}×{width}, on {os.cpu_count()} CPU cores")
    print("Each way in its own process; slices of the posters embedded by each way in turn.", flush=True)
    sizes = {"keras": KERAS_BATCHES, "openvino": (EMBEDDING_BATCH_SIZE,)}
    with (
        tempfile.TemporaryDirectory() as folder,
        started([(engine, size) for engine in engines for size in sizes[engine]]) as ways,
    ):
        alone = in_turns(ways, poster_files(160, Path(folder)), kind="decoded")
        for name, seconds in alone.items():
            print(f"  backbone alone, 160 decoded posters  {name:<18} {160 / seconds:6.1f} posters/s")
        sample = poster_files(SAMPLE_POSTERS, Path(folder))
        on_sample = in_turns(ways, sample)
        for name, seconds in on_sample.items():
            print(f"  from disk, {len(sample)}-poster sample   {name:<18} {len(sample) / seconds:6.1f} posters/s")
        fastest = {
            engine: min((w for w in ways if w.engine == engine), key=lambda w: on_sample[w.name]) for engine in engines
        }
        if len(fastest) == 2:
            best_alone = {engine: min(alone[w.name] for w in ways if w.engine == engine) for engine in engines}
            ratio = best_alone["keras"] / best_alone["openvino"]
            keras, openvino = fastest["keras"].name, fastest["openvino"].name
            print(f"  backbone alone  openvino / keras (its fastest batch): {ratio:.2f}×")
            print(f"  counts below: {keras} (the fastest on the sample) against {openvino}")
        chosen = [fastest[engine] for engine in engines]
        for count in counts:
            seconds = in_turns(chosen, poster_files(count, Path(folder)))
            for name, taken in seconds.items():
                print(f"  {count:>6} posters  {name:<18} {count / taken:6.1f} posters/s"
                      f"  {1000 * taken / count:6.1f} s per 1000", flush=True)  # fmt: skip
            if len(fastest) == 2:
                ratio = seconds[fastest["keras"].name] / seconds[fastest["openvino"].name]
                print(f"  {count:>6} posters  openvino / keras: {ratio:.2f}×", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=5, help="timed batches per round (default 5)")
    parser.add_argument(
        "--backbones", default=",".join(BACKBONES), help="comma-separated names; the first is the baseline"
    )
    parser.add_argument("--engine", help="compare embedding engines instead, e.g. keras,openvino")
    parser.add_argument("--posters", default="1000,5745", help="with --engine: poster counts (default 1000,5745)")
    args = parser.parse_args()
    if args.engine:
        compare_engines(args.engine.split(","), [int(count) for count in args.posters.split(",")])
        return
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
    print_table(f"EfficientNet-Lite backbones on {os.cpu_count()} CPU cores", rows, 30)


if __name__ == "__main__":
    main()
