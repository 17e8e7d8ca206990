"""How long a run will take on this machine, from what was measured here, not from constants.

One estimate serves the Start form and the banners; the running run's panel refines it
(`core.app.remaining_time`). Before a fast run starts it is a `RunPlan`: the posters the backbone must
still embed at the rate measured here under the current load, then the heads, their refit and the temporal
twin, costed in head epochs of the time measured here too (`core.app.machine_speed`), as many as an earlier
run's heads trained where there is one. It follows the run's own backbone: a larger one costs more per
poster, so another backbone's run or throughput would promise too little.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from core.app.runs import RunView
from core.model.backbones import DEFAULT_BACKBONE

# Training a network costs about three forward passes per image (forward, backward, update); the
# scratch CNN is far smaller than the backbone. Both factors only scale a throughput measured here.
BACKWARD_COST = 3.0
SCRATCH_COST = 0.25


@dataclass(frozen=True)
class Estimate:
    seconds: float
    basis: str  # what the figure was derived from, in plain words
    plan: RunPlan | None = None  # a fast run's, phase by phase (the panel refines it as the run goes)


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


def latest_fast_run(runs: Sequence[RunView], backbone: str) -> RunView | None:
    """The newest finished fast run of `backbone`: its head epochs cost what this run's will."""
    for run in runs:  # newest first
        same_backbone = run.config.get("backbone", DEFAULT_BACKBONE) == backbone
        if run.state == "finished" and run.config.get("mode") == "fast" and same_backbone:
            return run
    return None


def plan_for(
    settings,
    catalog,
    config: Mapping,
    runs: Sequence[RunView],
    posters_per_second: float,
    epoch_seconds: float | None = None,
) -> RunPlan:
    """The plan of a fast run with `config` on `catalog` as it stands: its posters not yet in the embeddings
    store, its training part's size, the newest finished fast run's epochs, and a head epoch's time
    (`measure_head_epoch_seconds` here now, when given)."""
    from core.model.embeddings import cached_embeddings

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
        training_posters(len(paths)),
        latest_fast_run(runs, backbone),
        epoch_seconds,
    )


def training_posters(usable: int) -> int:
    """The posters of a run's training part, for `usable` movies (the drawn split's first fraction)."""
    from core.training.split import DEFAULT_FRACTIONS

    return round(usable * DEFAULT_FRACTIONS[0])


# --- A fast run, phase by phase ------------------------------------------------------------------------------

# What a fast run costs besides embedding and head epochs, in seconds on two loaded cores: the process's start
# (TensorFlow, the catalog, the split), the twin's own data, and the final evaluation and save.
SETUP_SECONDS = 45.0
TWIN_SETUP_SECONDS = 15.0
FINISH_SECONDS = 15.0
# One head epoch over the training part's cached features, with its validation scoring, on two loaded cores,
# per 1,000 training posters: what a run with no earlier run to learn from assumes until its first epochs.
EPOCH_SECONDS_PER_1000 = 0.5
# The backbone's rate assumed for a run started with no estimate (from the command line) while it works, since
# measuring then would read the run's own load: Lite0 here on a loaded machine. Its progress replaces it at once.
UNMEASURED_POSTERS_PER_SECOND = 20.0
# The twin trains on the movies before its cut year only: about this share of the drawn split's training part.
TWIN_SHARE = 0.8
# A refit epoch goes over training + validation: about this many times a training epoch.
REFIT_COST = 1.25


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
    measured_epoch_seconds: float | None = None,
) -> RunPlan:
    """The plan of a fast run with `config` (a config.json's fields): `uncached` posters to embed per view at
    the measured rate, head epochs of `measured_epoch_seconds` (else `earlier`'s, a finished fast run of the
    same backbone, else EPOCH_SECONDS_PER_1000), as many as `earlier` trained (else twice the patience)."""
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
    if measured_epoch_seconds is not None:  # the load now says more than an earlier run's
        epoch_seconds = measured_epoch_seconds
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
