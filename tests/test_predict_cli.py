"""Prediction from a finished run: the reusable API and `python -m core.predict`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from core import predict as predict_command
from core.config import Settings
from core.model.pipeline import make_poster_dataset
from core.serving import predict
from core.training import run_folder as rf
from core.training.config import make_config
from core.training.trainer import train

# Every test here reads a run that the module's first fixture trains: the slow tier.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run_dir(fixture_data, tmp_path_factory) -> Path:
    """A finished tiny fast run on the fixture, with this module's own caches."""
    work = tmp_path_factory.mktemp("predict")
    settings = Settings(data_dir=fixture_data.settings.data_dir, cache_dir=work / "cache", runs_dir=work / "runs")
    config = make_config("fast", image_size=(64, 48), epochs=2, min_movies_per_genre=5, seed=3)
    result = train(config, settings, work / "run")
    assert result.state == "finished", result.error
    return work / "run"


@pytest.fixture(scope="module")
def loaded(run_dir) -> predict.LoadedModel:
    return predict.load_run_model(run_dir)


@pytest.fixture()
def posters(fixture_data) -> list[Path]:
    return sorted(fixture_data.settings.data_dir.rglob("*.jpg"))


def _good_poster(posters: list[Path]) -> Path:
    for path in posters:
        try:
            predict.decode_image_file(path)
        except predict.ImageDecodeError:
            continue
        return path
    raise AssertionError("the fixture has no readable poster")


def test_a_loaded_run_knows_its_genres_thresholds_and_image_size(loaded, run_dir):
    assert loaded.image_size == (64, 48)
    assert loaded.genres == tuple(rf.read_genres(run_dir)["genres"])
    assert loaded.thresholds.shape == (len(loaded.genres),)
    assert dict(zip(loaded.genres, loaded.thresholds, strict=True)) == rf.read_thresholds(run_dir)


def test_predict_images_gives_one_probability_per_genre_for_any_image_size(loaded):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in ((450, 300, 3), (90, 60, 3), (40, 200, 3))]
    scores = predict.predict_images(loaded, images)
    assert scores.shape == (3, len(loaded.genres)) and scores.dtype == np.float32
    assert ((scores >= 0) & (scores <= 1)).all()
    assert np.allclose(predict.predict_images(loaded, images[:1]), scores[:1], atol=1e-6)  # batch-independent
    top = predict.top_genres(loaded, scores[0])
    assert len(top) == 3 and top[0][1] >= top[1][1] >= top[2][1]
    assert predict.predict_images(loaded, []).shape == (0, len(loaded.genres))


def test_predict_images_refuses_what_is_not_an_rgb_uint8_image(loaded):
    with pytest.raises(ValueError, match="RGB uint8"):
        predict.predict_images(loaded, [np.zeros((10, 10), dtype=np.uint8)])
    with pytest.raises(ValueError, match="RGB uint8"):
        predict.predict_images(loaded, [np.zeros((10, 10, 3), dtype=np.float32)])


def test_serving_scores_match_the_training_pipeline(loaded, posters):
    """Pillow decoding + `resize_poster` at serving vs TensorFlow decoding + the same resize in training."""
    chosen = [path for path in posters[:12] if path.stat().st_size > 0][:6]
    readable = []
    for path in chosen:
        try:
            readable.append((path, predict.decode_image_file(path)))
        except predict.ImageDecodeError:
            continue
    served = predict.predict_images(loaded, [pixels for _, pixels in readable])
    batch = next(iter(make_poster_dataset([str(path) for path, _ in readable], loaded.image_size, 32)))
    trained = loaded.serve(batch).numpy()
    assert np.abs(served - trained).max() < 1e-5


def test_an_unfinished_run_cannot_be_loaded(tmp_path, run_dir):
    partial = tmp_path / "partial"
    shutil.copytree(run_dir, partial)
    (partial / rf.MODEL_FILE).unlink()
    with pytest.raises(predict.RunModelError, match=r"no model\.keras"):
        predict.load_run_model(partial)
    with pytest.raises(predict.RunModelError, match="no run folder"):
        predict.load_run_model(tmp_path / "missing")


def test_the_command_predicts_the_good_image_and_reports_the_broken_one(run_dir, posters, tmp_path, capsys):
    folder = tmp_path / "posters"
    folder.mkdir()
    shutil.copy(_good_poster(posters), folder / "good poster.jpg")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    (folder / "empty.png").write_bytes(b"")
    output = tmp_path / "scores.json"
    code = predict_command.main(["--run", str(run_dir), str(folder), "--json", str(output)])
    captured = capsys.readouterr()
    assert code == 0
    assert "good poster.jpg" in captured.out and "top 3:" in captured.out
    assert "broken.jpg" in captured.err and "empty.png" in captured.err and "0 bytes" in captured.err
    assert "broken.jpg" not in captured.out
    scores = json.loads(output.read_text())
    genres = rf.read_genres(run_dir)["genres"]
    assert list(scores) == ["good poster"]
    assert sorted(scores["good poster"]) == sorted(genres)
    assert all(0.0 <= p <= 1.0 for p in scores["good poster"].values())


def test_the_command_fails_when_no_image_or_no_run_can_be_read(run_dir, tmp_path, capsys):
    bad = tmp_path / "notes.txt"
    bad.write_text("not a poster")
    assert predict_command.main(["--run", str(run_dir), str(bad)]) == 1
    assert predict_command.main(["--run", str(tmp_path / "nowhere"), str(bad)]) == 2
    assert "no run folder" in capsys.readouterr().err


def test_a_folder_streams_in_batches_with_the_scores_each_poster_gets_alone(loaded, run_dir, posters, tmp_path, capsys):
    folder = tmp_path / "many"
    folder.mkdir()
    readable = [path for path in posters if _decodes(path)][:40]  # more than one batch of PREDICT_BATCH
    for number, path in enumerate(readable):
        shutil.copy(path, folder / f"p{number:03d}{path.suffix}")
    (folder / "p017-broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a JPEG")  # mid-stream: skipped, order kept
    output = tmp_path / "many.json"
    assert predict_command.main(["--run", str(run_dir), str(folder), "--json", str(output)]) == 0
    captured = capsys.readouterr()
    assert (
        "p017-broken.jpg" in captured.err and f"predicted {len(readable)} of {len(readable) + 1} files" in captured.err
    )
    streamed = json.loads(output.read_text())
    assert list(streamed) == [f"p{number:03d}" for number in range(len(readable))]
    for number, path in enumerate(readable):
        alone = predict.predict_images(loaded, [predict.decode_image_file(path)])[0]
        np.testing.assert_allclose([streamed[f"p{number:03d}"][genre] for genre in loaded.genres], alone, atol=1e-5)


def _decodes(path: Path) -> bool:
    try:
        predict.decode_image_file(path)
    except predict.ImageDecodeError:
        return False
    return True
