"""How long a run will take on this machine, from what was measured here, not from constants.

The measure comes from the runs already made on this machine: a run's per-epoch seconds (history.json)
and its embedding time (metrics.json's timing). With no earlier run of a mode, the backbone's throughput
is measured on a few real posters (`measure_posters_per_second`) and the run's work is counted in posters.
Both follow the run's own backbone: a larger one costs more per poster, so another backbone's run or
throughput would promise too little.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

from core.backbones import BACKBONES, DEFAULT_BACKBONE
from core.runs import RunView

# Training a network costs about three forward passes per image (forward, backward, update); the
# scratch CNN is far smaller than the backbone. Both factors only scale a throughput measured here.
BACKWARD_COST = 3.0
SCRATCH_COST = 0.25


@dataclass(frozen=True)
class Estimate:
    seconds: float
    basis: str  # what the figure was derived from, in plain words


def _same_setup(run: RunView, mode: str, image_size: str, backbone: str) -> bool:
    same_backbone = mode == "scratch" or run.config.get("backbone", DEFAULT_BACKBONE) == backbone
    return run.config.get("mode") == mode and str(run.config.get("image_size")) == image_size and same_backbone


def _epoch_seconds(run: RunView) -> float | None:
    seconds = [record["seconds"] for record in run.history if isinstance(record.get("seconds"), int | float)]
    return statistics.median(seconds) if seconds else None


def estimate_from_runs(
    runs: Sequence[RunView], mode: str, image_size: str, epochs: int, backbone: str = DEFAULT_BACKBONE
) -> Estimate | None:
    """From the latest finished run of the same mode, image size and backbone (the scratch mode has none): its
    epoch time × epochs (+ its set-up)."""
    for run in runs:  # newest first
        if run.state != "finished" or not _same_setup(run, mode, image_size, backbone):
            continue
        per_epoch = _epoch_seconds(run)
        timing = run.metrics.get("timing", {}) if run.metrics else {}
        total, training = timing.get("total_s"), timing.get("training_s")
        if per_epoch is None or not isinstance(total, int | float):
            continue
        fixed = max(0.0, total - (training if isinstance(training, int | float) else 0.0))
        if mode == "fast":
            fixed = min(fixed, 30.0)  # embeddings are cached now: only loading and evaluation remain
        passes = head_passes(run.config)
        return Estimate(
            fixed + per_epoch * epochs * passes, f"measured by run {run.run_id}: {per_epoch:.1f} s per epoch"
        )
    return None


def head_passes(config: dict) -> int:
    """How many times a fast run goes through its epochs: once per head, again for a refit (at most as many
    epochs), and all of it again for the temporal twin. 1 for the other modes (their twin is counted apart)."""
    if config.get("mode", "fast") != "fast":
        return 1
    heads = int(config.get("head_ensemble", 1) or 1)
    return heads * (2 if config.get("refit") else 1) * (2 if config.get("temporal_twin") else 1)


def estimate_from_throughput(
    posters_per_second: float,
    mode: str,
    posters: int,
    epochs: int,
    uncached: int,
    views: int = 1,
    passes: int = 1,
    backbone: str = DEFAULT_BACKBONE,
) -> Estimate:
    """From the throughput measured for `backbone`: embedding the uncached posters (once per view: the mirrored
    poster is a second pass), then the epochs (`passes` times over, see `head_passes`)."""
    embed = uncached * views / posters_per_second
    if mode == "fast":
        seconds = embed + epochs * 1.0 * passes + 10
    elif mode == "fine-tune":
        seconds = embed + epochs * posters * BACKWARD_COST / posters_per_second + 30
    else:
        seconds = epochs * posters * BACKWARD_COST * SCRATCH_COST / posters_per_second + 10
    return Estimate(seconds, f"backbone {backbone} measured here at {posters_per_second:.0f} posters/s")


def measure_posters_per_second(
    image_size: tuple[int, int], sample_paths: Sequence[str], cache_dir, backbone: str = DEFAULT_BACKBONE
) -> float:
    """Embed a few real posters with the frozen `backbone` and time it (after one warm-up batch)."""
    import numpy as np
    from PIL import Image

    from core.backbone import load_pretrained
    from core.training.pipeline import resize_posters

    images = []
    for path in sample_paths:
        with Image.open(path) as image:
            images.append(np.asarray(image.convert("RGB")))
    batch = resize_posters(images, image_size)
    model = load_pretrained((*image_size, 3), cache_dir=cache_dir, spec=BACKBONES[backbone])
    model.predict(batch[:2], verbose=0)
    started = time.perf_counter()
    model.predict(batch, verbose=0)
    return len(batch) / (time.perf_counter() - started)
