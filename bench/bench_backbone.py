"""How fast each registered backbone embeds posters on this machine, and what the weight cache saves.

Run from the project root: `python bench/bench_backbone.py [--batches N] [--backbones lite0,lite1,lite2]`.
Prints one table: embedding throughput in posters/s (best of 3 rounds) for batches of 32 at two poster
sizes, for each backbone, with its time per poster as a ratio to the first backbone's (Lite0 by default,
the baseline, measured in the same run); then Lite0's first (cold) load, which ports the PyTorch file,
against a later (warm) load from the Keras cache. Random pixels are enough for throughput.

With `--engine keras,openvino [--posters 1000,5745,25000]` it times instead what a first run waits for:
embedding N real posters from disk (decode, resize, backbone: the embeddings store's fill) by each engine,
at the similarity size. Keras runs at its fastest batch size (4, 8, 16 or 32, chosen on a first sample in the
same run), OpenVINO fed batches of EMBEDDING_BATCH_SIZE as the store does (one poster a request, several in
flight); beyond the real dataset's posters,
generated JPEGs of the same size are written to a temporary folder. Prints posters/s per engine, the ratio
OpenVINO / Keras, and seconds per 1000 posters at each count (flat when time grows linearly). First, the
backbone alone on 160 posters decoded beforehand, each engine at its batch sizes: what the engine itself
changes, apart from the decoding that shares the cores.
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


def embedding_seconds(engine: str, files: list[Path], batch_size: int, features) -> float:
    """Seconds to embed `files` from disk, as the embeddings store's fill does (without storing)."""
    from core.model.inference import OPENVINO, Inference
    from core.model.pipeline import make_poster_dataset

    size = tuple(features.input_shape[1:3])
    compiled = Inference(lambda batch: features(batch, training=False), size, openvino=engine == OPENVINO)
    assert compiled.engine == engine, f"{engine} is not available here"
    compiled(np.zeros((batch_size, *size, 3), np.float32))  # compile / trace outside the timing
    started = time.perf_counter()
    for _ in compiled.map(make_poster_dataset([str(f) for f in files], size, batch_size)):
        pass
    return time.perf_counter() - started


def backbone_alone_seconds(engine: str, posters: np.ndarray, batch_size: int, features, rounds: int = 3) -> float:
    """Seconds for the backbone alone to embed `posters`, decoded and resized beforehand (the best of a few
    rounds): what the engine changes, apart from the decoding that shares the cores with it."""
    from core.model.inference import OPENVINO, Inference

    size = tuple(features.input_shape[1:3])
    compiled = Inference(lambda batch: features(batch, training=False), size, openvino=engine == OPENVINO)
    assert compiled.engine == engine, f"{engine} is not available here"
    batches = [posters[start : start + batch_size] for start in range(0, len(posters), batch_size)]
    compiled(batches[0])
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in compiled.map(batches):
            pass
        best = min(best, time.perf_counter() - started)
    return best


def decoded_posters(files: list[Path], size: tuple[int, int]) -> np.ndarray:
    from core.model.pipeline import make_poster_dataset

    return np.concatenate([batch.numpy() for batch in make_poster_dataset([str(f) for f in files], size, 32)])


def compare_engines(engines: list[str], counts: list[int]) -> None:
    from core.model.embeddings import EMBEDDING_BATCH_SIZE
    from core.model.features import make_feature_extractor
    from core.serving.poster_index import SIMILARITY_IMAGE_SIZE

    with tempfile.TemporaryDirectory() as folder:
        features = make_feature_extractor(SIMILARITY_IMAGE_SIZE, get_settings().weights_dir)
        sample = poster_files(64, Path(folder))
        keras_batch = max(
            KERAS_BATCHES, key=lambda size: len(sample) / embedding_seconds("keras", sample, size, features)
        )
        batches = {"keras": keras_batch, "openvino": EMBEDDING_BATCH_SIZE}
        height, width = SIMILARITY_IMAGE_SIZE
        print(f"Embedding posters from disk, Lite0 at {height}×{width}, on {os.cpu_count()} CPU cores")
        print(f"  Keras's fastest batch on a 64-poster sample: {keras_batch}")
        alone = decoded_posters(poster_files(160, Path(folder)), SIMILARITY_IMAGE_SIZE)
        alone_rates = {}
        for engine in engines:
            for size in KERAS_BATCHES if engine == "keras" else (EMBEDDING_BATCH_SIZE,):
                rate = len(alone) / backbone_alone_seconds(engine, alone, size, features)
                alone_rates[engine] = max(alone_rates.get(engine, 0.0), rate)
                print(
                    f"  backbone alone, {len(alone)} decoded posters  {engine:<8} batch {size:>2}  {rate:6.1f} posters/s"
                )
        if "keras" in alone_rates and "openvino" in alone_rates:
            ratio = alone_rates["openvino"] / alone_rates["keras"]
            print(f"  backbone alone  openvino / keras (its fastest batch): {ratio:.2f}×", flush=True)
        for count in counts:
            files = poster_files(count, Path(folder))
            rates = {}
            for engine in engines:
                seconds = embedding_seconds(engine, files, batches[engine], features)
                rates[engine] = count / seconds
                print(f"  {count:>6} posters  {engine:<8} batch {batches[engine]:>2}  {rates[engine]:6.1f} posters/s"
                      f"  {1000 * seconds / count:6.1f} s per 1000", flush=True)  # fmt: skip
            if "keras" in rates and "openvino" in rates:
                print(f"  {count:>6} posters  openvino / keras: {rates['openvino'] / rates['keras']:.2f}×", flush=True)


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
