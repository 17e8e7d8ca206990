"""Upload validation latency on typical posters, against a bare `Image.open` + `convert("RGB")` baseline.

    python bench/bench_uploads.py [--posters N] [--repeats N]

The posters are synthetic ~300×450 JPEGs made in memory (noise and gradients, so they compress like real
ones). Both sides start from the uploaded bytes and end with an RGB array; the difference is the price of
the checks: the header walk, the SHA-256, the EXIF look-up and the full decode with its error handling.
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.serving.uploads import validate_upload


def make_posters(count: int, seed: int = 0) -> list[bytes]:
    """`count` JPEGs of about 300×450 pixels, each with its own colours, texture and exact size."""
    rng = random.Random(seed)
    posters = []
    for _ in range(count):
        size = (rng.randint(280, 320), rng.randint(420, 480))
        noise = Image.effect_noise(size, rng.uniform(20, 80))
        gradient = Image.linear_gradient("L").resize(size).rotate(rng.choice([0, 90, 180, 270]))
        image = Image.merge("RGB", (noise, gradient, Image.new("L", size, rng.randrange(256))))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=rng.randint(75, 92))
        posters.append(buffer.getvalue())
    return posters


def baseline(data: bytes, filename: str) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def validated(data: bytes, filename: str) -> np.ndarray:
    return validate_upload(data, filename).pixels


def timed_pass(function, posters: list[bytes]) -> list[float]:
    """Seconds per poster, every poster timed on its own."""
    times = []
    for data in posters:
        started = time.perf_counter()
        function(data, "poster.jpg")
        times.append(time.perf_counter() - started)
    return times


def percentile(times: list[float], share: float) -> float:
    return statistics.quantiles(times, n=100, method="inclusive")[round(share * 100) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posters", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()

    posters = make_posters(args.posters)
    mean_kb = statistics.mean(len(data) for data in posters) / 1024
    timed_pass(baseline, posters), timed_pass(validated, posters)  # warm-up: Pillow loads its plugins
    # Passes alternate, so that a change in the machine's load falls on both alike.
    bare, checked = [], []
    for _ in range(args.repeats):
        bare += timed_pass(baseline, posters)
        checked += timed_pass(validated, posters)

    print(f"{args.posters} synthetic posters, ~300×450 JPEG, {mean_kb:.0f} KB on average; {args.repeats} passes")
    print(f"{'':34} {'p50':>9} {'p95':>9}")
    rows = [("Image.open + convert (baseline)", bare), ("validate_upload", checked)]
    for name, times in rows:
        print(f"{name:34} {percentile(times, 0.50) * 1e3:7.2f} ms {percentile(times, 0.95) * 1e3:7.2f} ms")
    p50 = percentile(checked, 0.50) / percentile(bare, 0.50)
    p95 = percentile(checked, 0.95) / percentile(bare, 0.95)
    print(f"{'ratio (validate / baseline)':34} {p50:8.2f}× {p95:8.2f}×")


if __name__ == "__main__":
    main()
