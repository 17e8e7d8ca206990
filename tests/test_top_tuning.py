"""Tuning the backbone's top blocks on cached maps (`--tune-top-blocks K`): the cut backbone computes what
the whole one does, a tuned run saves one model from pixels to genres that scores what it reported, and its
maps are computed once; prediction, the evidence maps and the exports read that model as any other."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.config import Settings
from core.model.backbones import LITE0
from core.model.cached_maps import activation_key
from core.model.features import FEATURES_MODEL, make_feature_extractor
from core.model.top_blocks import entry_shape, frozen_columns, make_activation_extractor, make_top
from core.serving.explain import make_explainer
from core.serving.export import portable_model
from core.serving.predict import load_run_model, predict_images, preprocess_images
from core.training import metrics
from core.training import run_folder as rf
from core.training.config import ConfigError, make_config
from core.training.top_tuning import _training_dataset
from tests.test_training import SIZE, TINY, _model_scores_on_test, _run


@pytest.fixture(scope="module")
def settings(fixture_data, tmp_path_factory) -> Settings:
    work = tmp_path_factory.mktemp("top-tuning")
    return Settings(data_dir=fixture_data.settings.data_dir, cache_dir=work / "cache", runs_dir=work / "runs")


@pytest.mark.parametrize("blocks", [1, 2, 3])
def test_the_frozen_columns_and_the_top_on_the_cached_map_give_the_whole_backbones_features(fixture_data, blocks):
    weights_dir = fixture_data.settings.weights_dir
    whole = make_feature_extractor(SIZE, weights_dir)
    pixels = np.random.default_rng(blocks).uniform(0, 255, size=(3, *SIZE, 3)).astype(np.float32)
    expected = whole(pixels, training=False).numpy()
    flat = make_activation_extractor(SIZE, weights_dir, "lite0", blocks)(pixels).numpy()
    maps = flat.reshape((3, *entry_shape(LITE0, SIZE, blocks)))
    top = make_top(LITE0, SIZE, blocks, whole)
    columns = frozen_columns(LITE0, blocks)
    cut = np.concatenate([expected[:, :columns], top(maps, training=False).numpy()], axis=1)
    np.testing.assert_allclose(cut, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"tune_top_blocks": 7}, "tune_top_blocks must be a whole number from 0 to 6"),
        ({"tune_top_blocks": 2, "flip_tta": True}, "the plain view"),
        ({"tune_top_blocks": 2, "multi_scale": "48x32"}, "one size"),
        ({"tune_top_blocks": 1, "tune_learning_rate": 0}, "tune_learning_rate must be a number above 0"),
    ],
)
def test_settings_that_cannot_tune_the_top_blocks_are_refused_with_the_reason(overrides, message):
    with pytest.raises(ConfigError, match=message):
        make_config("fast", **{**TINY, **overrides})


@pytest.mark.slow
def test_a_run_that_tunes_its_top_blocks_saves_one_model_that_scores_from_pixels_what_it_reported(
    settings, fixture_data, tmp_path
):
    overrides = {"tune_top_blocks": 2, "tune_epochs": 3, "head_ensemble": 2, "refit": True, "epochs": 3}
    overrides["temporal_test_from"] = 2004  # the fixture's years leave a temporal twin something to learn from then
    result, run_dir = _run(settings, tmp_path, "tuned", **overrides)
    assert result.state == "finished", result.error
    phases = [record["phase"] for record in rf.read_history(run_dir)]
    assert phases.count("tuning the top 2 blocks") == 3
    log = (run_dir / rf.LOG_FILE).read_text()
    assert "temporal twin tuning the top 2 blocks" in log
    assert "tuning kept epoch" in log or "tuning never beat the frozen backbone" in log
    # The maps are kept as float16, under the key of the layer they leave.
    key_dir = settings.embeddings_dir / activation_key(SIZE, 2).folder_name
    stored = [np.load(chunk) for chunk in key_dir.glob("*.npy")]
    assert stored and all(chunk.dtype == np.float16 for chunk in stored)
    # One model from pixels to genres: the tuned blocks sit inside the whole backbone, the rest is pretrained.
    loaded = load_run_model(run_dir)
    saved = loaded.model.get_layer(FEATURES_MODEL)
    pretrained = make_feature_extractor(SIZE, fixture_data.settings.weights_dir)
    for name, changed in (("block13_project_conv", False), ("block14_project_conv", True), ("head_conv", True)):
        difference = np.abs(saved.get_layer(name).get_weights()[0] - pretrained.get_layer(name).get_weights()[0])
        assert (difference.max() > 0) == changed, name
    # Its scores from pixels are what the run reported from the cached float16 maps, but for their rounding.
    config = make_config("fast", **{**TINY, **overrides})
    scores, labels = _model_scores_on_test(run_dir, settings, config)
    reported = rf.read_metrics(run_dir)["test"]["summary"]["map"]
    assert metrics.mean_average_precision(labels, scores) == pytest.approx(reported, abs=5e-3)
    # The evidence maps and the exports read it as any run's model.
    poster = np.random.default_rng(1).integers(0, 256, size=(90, 60, 3), dtype=np.uint8)
    genre = loaded.vocabulary.genres[0]
    explanation = make_explainer(loaded).explain(poster, [genre])
    np.testing.assert_allclose(explanation.scores, predict_images(loaded, [poster])[0], rtol=1e-4, atol=1e-5)
    assert explanation.maps[genre].shape[:2] == poster.shape[:2]
    batch = preprocess_images([poster], SIZE)
    np.testing.assert_allclose(portable_model(loaded)(batch).numpy(), loaded.serve(batch).numpy(), atol=1e-5)
    timing = json.loads((run_dir / rf.METRICS_FILE).read_text())["timing"]
    assert timing["tuning_s"] > 0 and "maps_s" in timing
    # A second run with the same cut reads the maps instead of computing them.
    again, again_dir = _run(settings, tmp_path, "again", **{**overrides, "temporal_twin": False, "seed": 8})
    assert again.state == "finished", again.error
    assert "maps entering the top 2 blocks: 0 computed" in (again_dir / rf.LOG_FILE).read_text()


def test_tuning_batches_hold_every_poster_once_with_its_labels_and_keep_the_maps_out_of_the_graph() -> None:
    """The maps are gathered per batch: a dataset built from the arrays would copy them into its graph, where
    one tensor may not pass 2 GB, which some 58,000 training posters reach."""
    posters = 300
    maps = np.random.default_rng(0).standard_normal((posters, 6, 4, 32)).astype(np.float16)
    columns = np.arange(posters, dtype=np.float32)[:, None]  # each poster's number, to follow it
    labels = (np.arange(posters)[:, None] % 2).astype(np.float32)
    dataset = _training_dataset(maps, columns, labels, batch=64, seed=3)
    seen, mirrored = [], 0
    for (batch_maps, batch_columns), batch_labels in dataset:
        numbers = batch_columns.numpy()[:, 0].astype(int)
        for number, shown, label in zip(numbers, batch_maps.numpy(), batch_labels.numpy(), strict=True):
            own = maps[number].astype(np.float32)
            assert np.array_equal(shown, own) or np.array_equal(shown, own[:, ::-1])
            mirrored += not np.array_equal(shown, own)
            assert label[0] == number % 2
        seen.extend(numbers)
    assert sorted(seen) == list(range(posters)) and seen != list(range(posters))  # each once, shuffled
    assert 0.3 < mirrored / posters < 0.7
    assert len(dataset._as_serialized_graph().numpy()) < maps.nbytes / 10
