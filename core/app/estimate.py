"""How long a run will take on this machine, from what was measured here, not from constants.

One estimate serves the Start form, the banners and the running run's panel. Before a fast run starts it
is a `RunPlan`: the posters the backbone must still embed at the rate measured here under the current load
(`measure_posters_per_second`), then the heads, their refit and the temporal twin, costed in head epochs
(an earlier run's epoch time and early-stopping point where there is one). While the run goes, `time_left`
refines it from the run's own status.json: the current phase is extrapolated from its own rate, and the
phases still to come are added from the plan, their epoch time corrected by what the run has shown.
Both follow the run's own backbone: a larger one costs more per poster, so another backbone's run or
throughput would promise too little.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from core.app.runs import RunView
from core.model.backbones import BACKBONES, DEFAULT_BACKBONE

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
    """Read, resize and embed a few real posters with the frozen `backbone`, under whatever load the machine
    has now, and time it as a run's embedding does it (decoding included).

    The warm-up batch has the timed batch's shape: a smaller one left the timed call to trace the model
    again, a once-only cost that was counted as if every batch paid it.
    """
    import numpy as np
    from PIL import Image

    from core.model.backbone import load_pretrained
    from core.model.pipeline import resize_posters

    def read_batch() -> np.ndarray:
        images = []
        for path in sample_paths:
            with Image.open(path) as image:
                images.append(np.asarray(image.convert("RGB")))
        return resize_posters(images, image_size)

    model = load_pretrained((*image_size, 3), cache_dir=cache_dir, spec=BACKBONES[backbone])
    model.predict(read_batch(), batch_size=len(sample_paths), verbose=0)
    started = time.perf_counter()
    model.predict(read_batch(), batch_size=len(sample_paths), verbose=0)
    return len(sample_paths) / (time.perf_counter() - started)


def latest_fast_run(runs: Sequence[RunView], backbone: str) -> RunView | None:
    """The newest finished fast run of `backbone`: its head epochs cost what this run's will."""
    for run in runs:  # newest first
        same_backbone = run.config.get("backbone", DEFAULT_BACKBONE) == backbone
        if run.state == "finished" and run.config.get("mode") == "fast" and same_backbone:
            return run
    return None


def plan_for(settings, catalog, config: Mapping, runs: Sequence[RunView], posters_per_second: float) -> RunPlan:
    """The plan of a fast run with `config` on `catalog` as it stands: its posters not yet in the embeddings
    store, its training part's size, and the newest finished fast run's epochs."""
    from core.model.embeddings import cached_embeddings
    from core.training.split import DEFAULT_FRACTIONS

    size = tuple(int(side) for side in str(config["image_size"]).split("x"))
    paths = list(catalog.usable_movies()["poster_path"])
    uncached = 0
    views = ("plain", "flip") if config.get("flip_tta") else ("plain",)
    backbone = str(config.get("backbone", DEFAULT_BACKBONE))
    for view in views[:1]:  # a flipped view is counted as a second pass of the same posters
        _, uncached = cached_embeddings(
            paths, size, settings.embeddings_dir, view, backbone, data_root=catalog.data_root
        )
    return plan_fast_run(
        config,
        posters_per_second,
        uncached,
        round(len(paths) * DEFAULT_FRACTIONS[0]),
        latest_fast_run(runs, backbone),
    )


# --- A fast run, phase by phase ------------------------------------------------------------------------------

# What a fast run costs besides embedding and head epochs, in seconds on two loaded cores: the process's start
# (TensorFlow, the catalog, the split), the twin's own data, and the final evaluation and save.
SETUP_SECONDS = 45.0
TWIN_SETUP_SECONDS = 15.0
FINISH_SECONDS = 15.0
# One head epoch over the training part's cached features, with its validation scoring, on two loaded cores,
# per 1,000 training posters: what a run with no earlier run to learn from assumes until its first epochs.
EPOCH_SECONDS_PER_1000 = 0.5
# The twin trains on the movies before its cut year only: about this share of the drawn split's training part.
TWIN_SHARE = 0.8
# A refit epoch goes over training + validation: about this many times a training epoch.
REFIT_COST = 1.25
# A rate is trusted once the run has shown this many seconds of a phase; before, the plan's rate stands.
MIN_OBSERVED_SECONDS = 10.0


@dataclass(frozen=True)
class RunPlan:
    """A fast run's work as the estimate sees it before it starts; `total_seconds` is the form's figure."""

    posters_to_embed: int  # uncached posters × views
    posters_per_second: float
    heads: int
    refit: bool
    twin: bool
    epochs: int  # the most epochs a head may train
    expected_epochs: int  # where early stopping is expected to end a head
    epoch_seconds: float  # one head epoch

    @property
    def basis(self) -> str:
        return (
            f"{self.posters_to_embed:,} posters to embed at {self.posters_per_second:.1f} posters/s (measured here "
            f"now), then {self.heads} head(s) of ~{self.expected_epochs} epochs at {self.epoch_seconds:.1f} s"
            + (", their refit" if self.refit else "")
            + (" and the temporal twin" if self.twin else "")
        )

    @property
    def embedding_seconds(self) -> float:
        return self.posters_to_embed / self.posters_per_second

    @property
    def refit_epochs(self) -> int:
        """A refit trains for the head's best epoch count: the expected end less the patience waited."""
        return max(1, round(self.expected_epochs * 0.5))

    def heads_seconds(self, from_head: int = 1) -> float:
        """Heads `from_head`..`heads`, each to its expected end."""
        return max(0, self.heads - from_head + 1) * self.expected_epochs * self.epoch_seconds

    def refit_seconds(self, from_head: int = 1) -> float:
        if not self.refit:
            return 0.0
        return max(0, self.heads - from_head + 1) * self.refit_epochs * self.epoch_seconds * REFIT_COST

    @property
    def twin_seconds(self) -> float:
        if not self.twin:
            return 0.0
        return TWIN_SETUP_SECONDS + TWIN_SHARE * (self.heads_seconds() + self.refit_seconds())

    @property
    def total_seconds(self) -> float:
        return (
            SETUP_SECONDS
            + self.embedding_seconds
            + self.heads_seconds()
            + self.refit_seconds()
            + self.twin_seconds
            + FINISH_SECONDS
        )


def plan_fast_run(
    config: Mapping,
    posters_per_second: float,
    uncached: int,
    training_posters: int,
    earlier: RunView | None = None,
) -> RunPlan:
    """The plan of a fast run with `config` (a config.json's fields): `uncached` posters to embed per view at
    the measured rate, and head epochs costed from `earlier` (a finished fast run of the same backbone) when
    given, else from EPOCH_SECONDS_PER_1000."""
    epochs = int(config.get("epochs", 80))
    patience = int(config.get("patience", 20))
    epoch_seconds = EPOCH_SECONDS_PER_1000 * max(training_posters, 1) / 1000
    expected = min(epochs, 2 * patience)
    if earlier is not None:
        seconds = _epoch_seconds(earlier)
        if seconds is not None:
            epoch_seconds = seconds
        per_head = _epochs_per_head(earlier.history)
        if per_head:
            expected = min(epochs, round(statistics.median(per_head)))
    views = 2 if config.get("flip_tta") else 1
    return RunPlan(
        posters_to_embed=uncached * views,
        posters_per_second=max(posters_per_second, 1e-3),
        heads=int(config.get("head_ensemble", 1) or 1),
        refit=bool(config.get("refit")),
        twin=bool(config.get("temporal_twin", True)),
        epochs=epochs,
        expected_epochs=max(1, expected),
        epoch_seconds=max(epoch_seconds, 1e-3),
    )


def _epochs_per_head(history: Sequence[Mapping]) -> list[int]:
    """How many epochs each head of a run trained, from its history.json records."""
    last: dict[str, int] = {}
    for record in history:
        phase, number = record.get("phase"), record.get("phase_epoch")
        if isinstance(phase, str) and isinstance(number, int):
            last[phase] = max(number, last.get(phase, 0))
    return list(last.values())


@dataclass(frozen=True)
class Phase:
    """A status.json phase read back: which part of the run, which head of how many."""

    kind: str  # preparing, embedding, training, refit, evaluating, saving
    twin: bool
    head: int = 1
    heads: int = 1


_HEAD = re.compile(r"head (\d+) of (\d+)")


def read_phase(text: str | None, heads: int) -> Phase:
    """The phase names the trainer writes: "training", "training head 2 of 3", "refit of head 1 of 3",
    each prefixed "temporal twin " in the twin."""
    text = (text or "preparing").strip()
    twin = text.startswith("temporal twin")
    rest = text.removeprefix("temporal twin").strip() or "preparing"
    kind = rest.split()[0]
    found = _HEAD.search(rest)
    head, count = (int(found[1]), int(found[2])) if found else (1, heads)
    return Phase(kind, twin, head, count)


@dataclass(frozen=True)
class TimeLeft:
    seconds: float
    step: str  # where the run is, in its own units: "posters 1,888 of 5,729", "head 2 of 3, epoch 14 of ~40"


def _seconds(value: object) -> float | None:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z").timestamp()
        except ValueError:
            return None
    return None


def _position(status: Mapping) -> float | None:
    """How far into its phase a status is: posters while embedding, epochs (with the batch's share) after."""
    batch, batches, epoch = status.get("batch"), status.get("batches"), status.get("epoch")
    if isinstance(epoch, int):
        share = batch / batches if isinstance(batch, int) and isinstance(batches, int) and batches else 0.0
        return epoch - 1 + min(1.0, share)
    return float(batch) if isinstance(batch, int) else None


def _observed_rate(statuses: Sequence[Mapping]) -> float | None:
    """Units of the latest status's phase per second, over the statuses of that same phase."""
    latest = statuses[-1]
    same = [status for status in statuses if status.get("phase") == latest.get("phase")]
    points = [(_seconds(status.get("updated_at")), _position(status)) for status in same]
    points = [(at, where) for at, where in points if at is not None and where is not None]
    if len(points) < 2:
        return None
    (first_at, first), (last_at, last) = points[0], points[-1]
    if last_at - first_at < MIN_OBSERVED_SECONDS or last <= first:
        return None
    return (last - first) / (last_at - first_at)


def _best_epoch_end(history: Sequence[Mapping], phase: str | None, patience: int) -> int | None:
    """Where early stopping will end the phase as the history stands: its best epoch plus the patience."""
    scored = [record for record in history if record.get("phase") == phase and isinstance(record.get("val_map"), float)]
    if not scored:
        return None
    best = max(scored, key=lambda record: record["val_map"])
    return int(best.get("phase_epoch", 0)) + patience


def time_left(
    plan: RunPlan,
    statuses: Sequence[Mapping],
    history: Sequence[Mapping] = (),
    patience: int = 20,
    now: float | None = None,
) -> TimeLeft:
    """The time a running fast run still needs, from the statuses seen so far (oldest first, the latest last).

    The current phase goes at its own observed rate (the plan's until it has shown MIN_OBSERVED_SECONDS); the
    phases after it are the plan's, with the head epoch time the run has shown. Never zero before the run's
    last phase has ended: a finished head still has the others, the refit and the twin after it.
    """
    status = statuses[-1] if statuses else {}
    phase = read_phase(status.get("phase"), plan.heads)
    rate = _observed_rate(statuses) if statuses else None
    where = _position(status) or 0.0
    epoch_seconds = plan.epoch_seconds
    records = [record["seconds"] for record in history if isinstance(record.get("seconds"), int | float)]
    if records:
        epoch_seconds = statistics.median(records)
    if phase.kind in ("training", "refit") and rate:
        epoch_seconds = 1 / rate / (REFIT_COST if phase.kind == "refit" else 1.0)
        if phase.twin:
            epoch_seconds /= TWIN_SHARE
    seen = replace(plan, epoch_seconds=epoch_seconds)
    share = TWIN_SHARE if phase.twin else 1.0
    twin_after = seen.twin_seconds if not phase.twin else 0.0
    if phase.kind == "preparing":
        started = _seconds(status.get("started_at"))
        spent = (now if now is not None else time.time()) - started if started else 0.0
        left = max(SETUP_SECONDS - spent, SETUP_SECONDS * 0.1) + seen.total_seconds - SETUP_SECONDS
        return TimeLeft(left, "starting")
    if phase.kind == "embedding":
        total = status.get("batches") if isinstance(status.get("batches"), int) else plan.posters_to_embed
        per_second = rate or plan.posters_per_second
        current = max(0.0, total - where) / per_second
        later = seen.heads_seconds() + seen.refit_seconds() + twin_after
        if phase.twin:
            later = share * (seen.heads_seconds() + seen.refit_seconds())
        return TimeLeft(current + later + FINISH_SECONDS, f"posters {int(where):,} of {total:,}")
    if phase.kind == "training":
        epoch = int(status.get("epoch") or 1)
        expected = _best_epoch_end(history, status.get("phase"), patience) if not phase.twin else None
        expected = min(plan.epochs, max(epoch, expected or plan.expected_epochs))
        current = max(0.0, expected - where) * epoch_seconds * share
        later = share * (seen.heads_seconds(phase.head + 1) + seen.refit_seconds()) + twin_after
        step = f"head {phase.head} of {phase.heads}, epoch {epoch} of ~{expected}"
        return TimeLeft(current + later + FINISH_SECONDS, ("temporal twin: " if phase.twin else "") + step)
    if phase.kind == "refit":
        epoch = int(status.get("epoch") or 1)
        epochs = int(status.get("epochs") or plan.refit_epochs)
        current = max(0.0, epochs - where) * epoch_seconds * REFIT_COST * share
        later = share * seen.refit_seconds(phase.head + 1) + twin_after
        step = f"refit of head {phase.head} of {phase.heads}, epoch {epoch} of {epochs}"
        return TimeLeft(current + later + FINISH_SECONDS, ("temporal twin: " if phase.twin else "") + step)
    return TimeLeft(FINISH_SECONDS * 0.5, phase.kind)
