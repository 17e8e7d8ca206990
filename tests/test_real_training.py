"""The default fast run on the real posters: it must clearly beat what a model that never looks can do."""

from __future__ import annotations

import pytest

from core.training import run_folder as rf
from core.training.config import make_config
from core.training.trainer import train

# How far the model must beat the three-most-frequent-genres ranking on the test part (fractions of 1).
HIT_AT_3_MARGIN = 0.03
P_AT_3_MARGIN = 0.03
MAP_OVER_CHANCE = 2.5


@pytest.mark.real_data
@pytest.mark.slow
def test_the_default_fast_run_beats_the_baselines_on_the_test_part(real_settings, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("real-run") / "fast"
    # Without its temporal twin, which would train the three heads and their refit once more on the same
    # cached features (minutes on a bare machine); the twin is trained and checked on the generated fixture.
    result = train(make_config("fast", seed=42, temporal_twin=False), real_settings, run_dir)
    assert result.state == "finished", result.error
    assert rf.effective_state(rf.read_status(run_dir)) == "finished"

    test = rf.read_metrics(run_dir)["test"]
    summary, baselines = test["summary"], test["baselines"]
    frequent = baselines["top3_frequent"]
    assert summary["n_movies"] > 800
    assert summary["hit_at_3"] >= frequent["hit_at_3"] + HIT_AT_3_MARGIN, (summary, frequent)
    assert summary["p_at_3"] >= frequent["p_at_3"] + P_AT_3_MARGIN, (summary, frequent)
    assert summary["map"] >= MAP_OVER_CHANCE * baselines["chance_map"], (summary, baselines["chance_map"])
    assert summary["micro_f1"] > baselines["nothing"]["micro_f1"]
    assert summary["micro_f1"] > frequent["micro_f1"]
