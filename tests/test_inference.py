"""The frozen backbone's inference by OpenVINO: the same numbers as Keras, Keras again where OpenVINO fails,
and the compiled models kept under the cache, where Clear caches removes them."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from core.config import Settings
from core.data.catalog_build import clear_caches
from core.model import inference
from core.model.embeddings import embed_posters
from core.model.features import make_feature_extractor
from core.model.inference import KERAS, OPENVINO, Inference
from core.model.pipeline import make_poster_dataset
from core.serving.predict import LoadedModel, load_run_model, predict_images, preprocess_images
from tests.conftest import FixtureData
from tests.test_poster_reader import save_run

IMAGE_SIZE = (64, 48)  # height, width: small, so that two engines compile in seconds
TOLERANCE = 1e-4  # features reach about 30, so this is a relative 3e-6


def _without_openvino(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise RuntimeError("no CPU plugin")

    monkeypatch.setattr(inference, "compile_openvino", refuse)


@pytest.fixture(scope="module")
def poster_paths(fixture_data: FixtureData) -> list[str]:
    return sorted(str(path) for path in fixture_data.settings.data_dir.rglob("*.jpg"))[:12]


@pytest.fixture(scope="module")
def features(fixture_data: FixtureData):
    return make_feature_extractor(IMAGE_SIZE, fixture_data.settings.weights_dir)


def test_openvino_and_keras_give_the_same_poster_features(
    features, poster_paths: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    posters = np.concatenate([batch.numpy() for batch in make_poster_dataset(poster_paths, IMAGE_SIZE, 8)])
    compiled = Inference(lambda batch: features(batch, training=False), IMAGE_SIZE)
    assert compiled.engine == OPENVINO
    by_openvino = np.concatenate([vectors for (vectors,) in compiled.map([posters[:5], posters[5:]])])
    by_keras = features(posters, training=False).numpy()
    assert by_openvino.shape == by_keras.shape == (len(poster_paths), features.output_shape[-1])
    np.testing.assert_allclose(by_openvino, by_keras, rtol=0, atol=TOLERANCE)


def test_each_batch_gets_back_its_own_posters_outputs_in_order_an_empty_one_included() -> None:
    # OpenVINO takes one poster a request: a batch's outputs are put back together from its posters'.
    import tensorflow as tf

    compiled = Inference(lambda batch: (tf.reduce_mean(batch, axis=(1, 2)), batch[:, 0, 0, :] * 2), (4, 3))
    assert compiled.engine == OPENVINO
    posters = np.random.default_rng(3).uniform(0, 255, (7, 4, 3, 3)).astype(np.float32)
    batches = [posters[:3], posters[3:3], posters[3:4], posters[4:]]
    outputs = list(compiled.map(batches))
    assert [(means.shape, corners.shape) for means, corners in outputs] == [
        ((len(batch), 3), (len(batch), 3)) for batch in batches
    ]
    for batch, (means, corners) in zip(batches, outputs, strict=True):
        np.testing.assert_allclose(means, batch.mean(axis=(1, 2)), rtol=1e-5)
        np.testing.assert_allclose(corners, batch[:, 0, 0, :] * 2, rtol=1e-6)


def _chunk_engines(embeddings_dir: Path) -> set[str]:
    return {json.loads(index.read_text())["engine"] for index in embeddings_dir.rglob("*.json")}


def test_the_store_filled_by_openvino_holds_the_vectors_keras_would_have_written(
    fixture_data: FixtureData, features, poster_paths: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights, data_root = fixture_data.settings.weights_dir, fixture_data.settings.data_dir
    fast = embed_posters(poster_paths, IMAGE_SIZE, tmp_path / "ov" / "embeddings", weights, features=features,
                         data_root=data_root)  # fmt: skip
    assert _chunk_engines(tmp_path / "ov" / "embeddings") == {OPENVINO}
    with monkeypatch.context() as patched:
        _without_openvino(patched)
        slow = embed_posters(poster_paths, IMAGE_SIZE, tmp_path / "tf" / "embeddings", weights, features=features,
                             data_root=data_root)  # fmt: skip
    assert _chunk_engines(tmp_path / "tf" / "embeddings") == {KERAS}
    assert fast.computed == slow.computed == len(poster_paths)
    np.testing.assert_allclose(fast.vectors, slow.vectors, rtol=0, atol=TOLERANCE)


@pytest.mark.slow
def test_a_prediction_by_openvino_matches_the_run_models_own(
    fixture_data: FixtureData, tmp_path: Path, poster_paths: list[str]
) -> None:
    loaded = save_run(tmp_path / "run", fixture_data.settings.weights_dir, IMAGE_SIZE, "fast", False)
    posters = [np.asarray(batch.numpy(), np.uint8) for batch in make_poster_dataset(poster_paths, IMAGE_SIZE, 1)]
    scores = predict_images(loaded, [poster[0] for poster in posters])
    assert loaded.inference.engine == OPENVINO
    expected = loaded.model.predict(np.concatenate(posters).astype(np.float32), verbose=0)
    np.testing.assert_allclose(scores, expected, rtol=0, atol=TOLERANCE)


@pytest.mark.slow
def test_a_model_openvino_cannot_compile_runs_on_keras_after_one_log_line(
    fixture_data: FixtureData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    loaded: LoadedModel = save_run(tmp_path / "run", fixture_data.settings.weights_dir, IMAGE_SIZE, "fast", True)
    _without_openvino(monkeypatch)
    posters = np.random.default_rng(5).integers(0, 256, size=(3, 90, 60, 3), dtype=np.uint8)
    with caplog.at_level(logging.WARNING, logger=inference.__name__):
        first, again = predict_images(loaded, list(posters)), predict_images(loaded, list(posters[:1]))
    assert loaded.inference.engine == KERAS
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1 and "no CPU plugin" in warnings[0] and "Keras" in warnings[0]
    np.testing.assert_allclose(again[0], first[0], rtol=0, atol=1e-6)
    expected = loaded.serve(preprocess_images(list(posters), loaded.image_size)).numpy()
    np.testing.assert_allclose(first, expected, rtol=0, atol=1e-6)


@pytest.mark.slow
def test_compiled_models_are_kept_under_the_cache_and_cleared_with_it(
    fixture_data: FixtureData, tmp_path: Path
) -> None:
    settings = Settings(fixture_data.settings.data_dir, tmp_path / "cache", tmp_path / "runs")
    save_run(tmp_path / "run", fixture_data.settings.weights_dir, IMAGE_SIZE, "fast", False)
    predict_images(load_run_model(tmp_path / "run", settings.compiled_models_dir), [np.zeros((90, 60, 3), np.uint8)])
    assert settings.compiled_models_dir == tmp_path / "cache" / "openvino"
    assert any(path.is_file() for path in settings.compiled_models_dir.rglob("*"))
    assert settings.compiled_models_dir in clear_caches(settings)
    assert not settings.compiled_models_dir.exists()
