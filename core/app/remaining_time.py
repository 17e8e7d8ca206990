"""How long a running fast run still needs: the plan it started with (`core.app.estimate.RunPlan`),
refined from the run's own status.json as it goes.

The current phase is extrapolated from its own rate, and the phases still to come are added from the plan,
their epoch time corrected by what the run has shown. Apart from the estimate because it reads what a run
writes while it trains (its phase names, its statuses over time), which the plan never needs.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from core.app.estimate import FINISH_SECONDS, REFIT_COST, SETUP_SECONDS, TWIN_SHARE, RunPlan

# A rate is trusted once the run has shown this many seconds of a phase; before, the plan's rate stands.
MIN_OBSERVED_SECONDS = 10.0


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
