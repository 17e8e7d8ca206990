"""What storing a catalog's vectors costs as it grows: the embeddings store against the one-file cache it
replaced, in one run.

    python bench/bench_embedding_store.py --baseline-tree ../older-checkout [--sizes 5000,20000] [--dim 2048]

Both take the same vectors in checkpoints of 1,024 posters, as a cold embedding saves its work. The store
writes each checkpoint as a chunk of its own; the older cache read the whole file and wrote it again at each
checkpoint. Prints the seconds and bytes written per size, and how each grew from one size to the next
(the growth exponent: 1.0 is linear). No backbone runs: the vectors are random.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.model.embedding_store import EmbeddingStore, VectorKey

CHECKPOINT = 1024  # posters between saves, as `core.model.embeddings.CHECKPOINT_EVERY`


def _folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def store_fill(folder: Path, size: int, dim: int) -> tuple[float, int]:
    store, key = EmbeddingStore(folder, folder / "data"), VectorKey("bench", (384, 256))
    rng, written, started = np.random.default_rng(0), 0, time.perf_counter()
    for start in range(0, size, CHECKPOINT):
        count = min(CHECKPOINT, size - start)
        identities = [(f"2001/tt{n:07d}.jpg", 1000 + n, n) for n in range(start, start + count)]
        before = _folder_bytes(folder)
        store.add(key, identities, rng.random((count, dim), dtype=np.float32), engine="keras")
        written += _folder_bytes(folder) - before
    return time.perf_counter() - started, written


def baseline_fill(tree: Path, folder: Path, size: int, dim: int) -> tuple[float, int]:
    """The older cache's own save function, loaded from the baseline checkout (it needs no backbone)."""
    source = (tree / "core" / "training" / "embeddings.py").read_text()
    start_of, end_of = source.index("def _read_cache("), source.index("def cached_embeddings(")
    namespace: dict = {"np": np, "Path": Path, "__name__": "baseline_cache"}
    spec = importlib.util.spec_from_file_location("baseline_atomic", tree / "core" / "atomic.py")
    atomic = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(atomic)
    namespace["atomic"] = atomic
    exec("from __future__ import annotations\n" + source[start_of:end_of], namespace)
    write = namespace["_write_cache"]
    file = folder / "cache.npz"
    rng, written, started = np.random.default_rng(0), 0, time.perf_counter()
    for start in range(0, size, CHECKPOINT):
        count = min(CHECKPOINT, size - start)
        fresh = {f"/data/2001/tt{n:07d}.jpg": (f"{1000 + n}:{n}", row) for n, row in
                 zip(range(start, start + count), rng.random((count, dim), dtype=np.float32), strict=True)}  # fmt: skip
        write(file, fresh, dim)
        written += file.stat().st_size  # the whole file, written again
    return time.perf_counter() - started, written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-tree", type=Path, help="a checkout with the one-file cache (else the store alone)")
    parser.add_argument("--sizes", default="5000,20000")
    parser.add_argument("--dim", type=int, default=2048)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    for size in sizes:
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            old = baseline_fill(args.baseline_tree, Path(b), size, args.dim) if args.baseline_tree else (math.nan, 0)
            rows.append((size, store_fill(Path(a), size, args.dim), old))
    print(f"{'posters':>8} {'store s':>8} {'store MB':>9} {'old s':>8} {'old MB':>9} {'old/store time':>15}")
    for size, (s_time, s_bytes), (o_time, o_bytes) in rows:
        print(
            f"{size:>8} {s_time:>8.2f} {s_bytes / 1e6:>9.0f} {o_time:>8.2f} {o_bytes / 1e6:>9.0f} {o_time / s_time:>14.1f}x"
        )
    for (n1, (s1, _), (o1, _)), (n2, (s2, _), (o2, _)) in itertools.pairwise(rows):
        ratio = math.log(n2 / n1)
        print(
            f"growth {n1}->{n2}: store exponent {math.log(s2 / s1) / ratio:.2f}, old exponent {math.log(o2 / o1) / ratio:.2f}"
        )


if __name__ == "__main__":
    main()
