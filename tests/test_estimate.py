"""The one time estimate of a fast run: its plan before the run, refined from the run's own status.json as
it goes (fake status histories here, as the progress panel reads them every two seconds). None of it needs
TensorFlow."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.app import estimate, launch_estimate, remaining_time

START = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
CONFIG = {"epochs": 80, "patience": 20, "head_ensemble": 3, "refit": True, "temporal_twin": True}


def _plan(**changes) -> estimate.RunPlan:
    plan = estimate.plan_fast_run(CONFIG, posters_per_second=2.0, uncached=5729, training_posters=4000)
    return estimate.RunPlan(**{**plan.__dict__, **changes})


def _status(seconds: float, phase: str, batch: int | None, batches: int | None, epoch=None, epochs=None) -> dict:
    at = (START + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S%z")
    return {"started_at": START.strftime("%Y-%m-%dT%H:%M:%S%z"), "updated_at": at, "phase": phase,
            "batch": batch, "batches": batches, "epoch": epoch, "epochs": epochs}  # fmt: skip


def test_the_plan_counts_every_phase_of_a_default_fast_run() -> None:
    plan = _plan()
    assert plan.embedding_seconds == pytest.approx(5729 / 2.0)
    later = plan.heads_seconds() + plan.refit_seconds() + plan.twin_seconds
    assert plan.total_seconds > plan.embedding_seconds + later
    assert plan.twin_seconds > 0 and plan.refit_seconds() > 0


def test_an_embedding_phase_at_a_measured_rate_leaves_its_posters_at_that_rate_plus_the_later_phases() -> None:
    plan = _plan()  # the form measured 2 posters/s; the run does 3.5
    statuses = [_status(60 + t, "embedding", round(3.5 * t), 5729) for t in range(0, 540, 2)]
    left = remaining_time.time_left(plan, statuses)
    done = statuses[-1]["batch"]
    later = plan.heads_seconds() + plan.refit_seconds() + plan.twin_seconds + estimate.FINISH_SECONDS
    assert left.seconds == pytest.approx((5729 - done) / 3.5 + later, rel=0.02)
    assert left.step == f"posters {done:,} of 5,729"


def test_a_page_opened_mid_phase_shows_a_figure_from_its_first_status() -> None:
    left = remaining_time.time_left(_plan(), [_status(900, "embedding", 1888, 5729)])
    plan = _plan()  # one status gives no rate yet: the form's measured one stands
    later = plan.total_seconds - estimate.SETUP_SECONDS - plan.embedding_seconds
    assert left.seconds == pytest.approx((5729 - 1888) / 2.0 + later)
    assert left.step == "posters 1,888 of 5,729"


@pytest.mark.parametrize(
    "phase, epoch, epochs",
    [
        ("preparing", None, None),
        ("embedding", None, None),
        ("training", 3, 80),
        ("training head 2 of 3", 14, 80),
        ("training head 3 of 3", 80, 80),
        ("refit of head 1 of 3", 5, 17),
        ("refit of head 3 of 3", 17, 17),
        ("temporal twin embedding", None, None),
        ("temporal twin training", 1, 80),
        ("temporal twin refit of head 3 of 3", 2, 17),
    ],
)
def test_every_phase_has_a_figure_and_none_is_zero_before_the_run_ends(phase, epoch, epochs) -> None:
    batches = 5729 if "embedding" in phase else 32
    statuses = [_status(60 + t, phase, min(t, batches), batches, epoch, epochs) for t in range(0, 30, 2)]
    left = remaining_time.time_left(_plan(), statuses, now=START.timestamp() + 90)
    assert left.seconds > 0
    if "twin" not in phase:
        assert left.seconds >= _plan().twin_seconds  # the twin is still to come


def test_the_last_main_refit_still_counts_the_temporal_twin_after_it() -> None:
    plan = _plan()
    statuses = [_status(1800 + t, "refit of head 3 of 3", 32, 32, 17, 17) for t in range(0, 20, 2)]
    assert remaining_time.time_left(plan, statuses).seconds >= plan.twin_seconds


def test_a_head_says_its_epoch_of_the_expected_end_from_its_own_best_epoch() -> None:
    history = [{"phase": "training head 2 of 3", "phase_epoch": n, "val_map": 0.3 + 0.01 * min(n, 9), "seconds": 2.0}
               for n in range(1, 15)]  # fmt: skip
    status = _status(2000, "training head 2 of 3", 10, 32, 14, 80)
    left = remaining_time.time_left(_plan(), [status], history)
    assert left.step == "head 2 of 3, epoch 14 of ~29"  # best at epoch 9, patience 20
    assert left.seconds > (29 - 14) * 2.0


def test_the_epoch_time_the_run_shows_replaces_the_plans_for_the_phases_after() -> None:
    plan = _plan(epoch_seconds=0.5)
    slow = [_status(2000 + t, "training", 16, 32, 1 + t // 4, 80) for t in range(0, 40, 2)]
    fast_plan_left = remaining_time.time_left(plan, slow[-1:]).seconds
    assert remaining_time.time_left(plan, slow).seconds > 3 * fast_plan_left / 2  # 4 s an epoch, not 0.5


def test_phase_names_read_back() -> None:
    assert remaining_time.read_phase("temporal twin refit of head 2 of 3", 3) == remaining_time.Phase(
        "refit", True, 2, 3
    )
    assert remaining_time.read_phase("training", 3) == remaining_time.Phase("training", False, 1, 3)
    assert remaining_time.read_phase(None, 3).kind == "preparing"


def test_a_head_epoch_measured_here_now_outweighs_the_constant_and_an_earlier_runs() -> None:
    """A first run has no earlier run: without a measure its heads were costed at a constant three times
    this machine's real epoch time, and the form said 16 minutes for a 5.5-minute run."""
    guessed = estimate.plan_fast_run(CONFIG, posters_per_second=78.0, uncached=5729, training_posters=4000)
    measured = estimate.plan_fast_run(
        CONFIG, posters_per_second=78.0, uncached=5729, training_posters=4000, measured_epoch_seconds=0.6
    )
    assert guessed.epoch_seconds == pytest.approx(estimate.EPOCH_SECONDS_PER_1000 * 4)
    assert measured.epoch_seconds == 0.6
    assert measured.heads_seconds() == pytest.approx(guessed.heads_seconds() * 0.6 / guessed.epoch_seconds)


def test_a_launch_estimate_comes_back_as_saved_and_a_damaged_one_as_none(tmp_path: Path) -> None:
    plan = estimate.plan_fast_run(CONFIG, 40.0, 5729, 4000, None, 0.3)
    saved = estimate.Estimate(plan.total_seconds, plan.basis, plan)
    launch_estimate.save(tmp_path, saved)
    assert launch_estimate.read(tmp_path) == saved
    assert launch_estimate.read(tmp_path / "elsewhere") is None  # a run started from the command line

    record = json.loads((tmp_path / launch_estimate.ESTIMATE_FILE).read_text())
    for damaged in (
        b"{not json",
        json.dumps([record]).encode(),
        json.dumps({**record, "seconds": "five minutes"}).encode(),
        json.dumps({**record, "seconds": float("inf")}).encode(),
    ):
        (tmp_path / launch_estimate.ESTIMATE_FILE).write_bytes(damaged)
        assert launch_estimate.read(tmp_path) is None
    # A plan that no launch writes is left out; the figure stays.
    broken_plan = {**record, "plan": {**record["plan"], "posters_per_second": 0, "heads": "three"}}
    (tmp_path / launch_estimate.ESTIMATE_FILE).write_text(json.dumps(broken_plan))
    assert launch_estimate.read(tmp_path) == estimate.Estimate(saved.seconds, saved.basis, None)
