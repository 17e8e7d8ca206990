"""The losses for the genres' imbalance: the asymmetric loss and the effective-number weights behave as their
papers say, agree with their NumPy twin (the validation loss in history.json), and a run trains with them."""

from __future__ import annotations

import numpy as np
import pytest

from core.config import Settings
from core.model.features import positive_weights
from core.model.losses import ASYMMETRIC_MARGIN, AsymmetricLoss, WeightedBinaryCrossentropy, genre_loss, loss_value
from core.serving.predict import load_run_model
from core.training import run_folder as rf
from core.training.config import ConfigError, make_config
from tests.test_training import _run


def _labels(positives: list[int], movies: int = 1000) -> np.ndarray:
    labels = np.zeros((movies, len(positives)))
    for genre, count in enumerate(positives):
        labels[:count, genre] = 1
    return labels


def test_effective_number_weights_lie_between_sqrt_and_balanced_as_the_many_negatives_count_for_less():
    labels = _labels([500, 200, 50, 10])
    sqrt, balanced = (positive_weights(labels, name, 1e9) for name in ("sqrt", "balanced"))
    effective = positive_weights(labels, "effective-number", 1e9)
    assert effective[0] == pytest.approx(1.0)  # as many positives as negatives: no weight either way
    assert np.all(sqrt[1:] < effective[1:]) and np.all(effective[1:] < balanced[1:])
    # (1 − β^990) / (1 − β^10) with β = 0.999, by hand.
    assert effective[3] == pytest.approx((1 - 0.999**990) / (1 - 0.999**10), rel=1e-5)
    assert positive_weights(labels, "effective-number", 5.0).max() == 5.0  # capped like the others


def test_the_asymmetric_loss_keeps_positives_whole_and_drops_easy_negatives():
    weights = np.ones(3, dtype=np.float32)
    asymmetric, bce = AsymmetricLoss(weights), WeightedBinaryCrossentropy(weights)
    positives = np.ones((1, 3), np.float32)
    scores = np.array([[0.2, 0.6, 0.9]], np.float32)
    assert float(asymmetric(positives, scores)) == pytest.approx(float(bce(positives, scores)), rel=1e-5)
    negatives = np.zeros((1, 3), np.float32)
    easy = np.full((1, 3), ASYMMETRIC_MARGIN * 0.9, np.float32)  # below the margin: no loss at all
    assert float(asymmetric(negatives, easy)) == 0.0
    # A confident mistake on a negative still costs, far less than cross-entropy charges, but not nothing.
    hard = np.full((1, 3), 0.9, np.float32)
    assert 0 < float(asymmetric(negatives, hard)) < float(bce(negatives, hard))


@pytest.mark.parametrize("name", ["bce", "asymmetric"])
def test_the_numpy_twin_gives_the_loss_keras_trains_with(name):
    rng = np.random.default_rng(4)
    labels = (rng.random((32, 5)) < 0.3).astype(np.float32)
    scores = rng.random((32, 5)).astype(np.float32)
    weights = rng.uniform(1, 4, size=5).astype(np.float32)
    keras_value = float(genre_loss(name, weights)(labels, scores))
    assert loss_value(name, labels, scores, weights) == pytest.approx(keras_value, rel=1e-4)


def test_an_unknown_loss_is_refused_with_the_choices():
    with pytest.raises(ConfigError, match="loss must be one of bce, asymmetric"):
        make_config("fast", loss="focal")


@pytest.mark.slow
def test_a_run_trains_with_the_asymmetric_loss_and_effective_number_weights(fixture_data, tmp_path):
    settings = Settings(data_dir=fixture_data.settings.data_dir, cache_dir=tmp_path / "cache", runs_dir=tmp_path)
    result, run_dir = _run(settings, tmp_path, "asl", loss="asymmetric", pos_weighting="effective-number")
    assert result.state == "finished", result.error
    config = rf.read_json(run_dir / rf.CONFIG_FILE, {})
    assert (config["loss"], config["pos_weighting"]) == ("asymmetric", "effective-number")
    log = (run_dir / rf.LOG_FILE).read_text()
    assert "loss asymmetric; positive weights effective-number (" in log
    assert all(np.isfinite(record["val_loss"]) for record in rf.read_history(run_dir))
    # Its model loads where the app loads models (a compiled head inside it names its loss).
    assert load_run_model(run_dir).vocabulary.genres
