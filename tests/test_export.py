"""A run exported as a model to take away: each format reloads and scores posters as the run did."""

from __future__ import annotations

import ast
import errno
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from core import export as export_command
from core.config import DATA_DIR_ENV
from core.data.catalog_build import open_catalog
from core.model.features import HorizontalFlip
from core.model.pipeline import resize_posters
from core.serving import export
from core.serving.model_card import usage_code
from core.serving.predict import decode_image_file
from core.training import run_folder as rf

POSTERS = 20


@pytest.fixture(scope="module")
def run_scores(tiny_model) -> tuple[list[str], np.ndarray]:
    """Posters of the run's test part, and the scores the saved model gave them (the validation scores are
    those of the heads before their refit, which chose the thresholds, not the saved model's)."""
    catalog = open_catalog(tiny_model.settings)
    with np.load(tiny_model.run_dir / rf.PREDICTIONS_FILE) as saved:
        ids = list(saved["test_ids"])[:POSTERS]
        scores = saved["test_scores"][:POSTERS]
    assert len(ids) >= 10
    return [catalog.movie(str(imdb_id))["poster_path"] for imdb_id in ids], scores


def _export(tiny_model, fmt: str, out: Path) -> export.ExportedRun:
    return export.export_run(tiny_model.run_dir, fmt, out, tiny_model.settings)


@pytest.mark.parametrize("fmt", ["savedmodel", "tflite"])
def test_savedmodel_and_tflite_exports_reload_and_score_posters_as_the_run_did(tiny_model, run_scores, fmt, tmp_path):
    exported = _export(tiny_model, fmt, tmp_path / fmt)
    paths, expected = run_scores
    pixels = resize_posters([decode_image_file(path) for path in paths], exported.image_size)

    scores = export.load_exported(exported)(pixels)

    np.testing.assert_allclose(scores, expected, atol=export.tolerance(fmt), rtol=0)
    assert sorted(path.name for path in (tmp_path / fmt).iterdir()) == sorted(path.name for path in exported.files)


def test_the_keras_export_loads_without_this_project_and_its_card_scores_poster_files(tiny_model, run_scores, tmp_path):
    out = tmp_path / "keras"
    exported = _export(tiny_model, "keras", out)
    paths, expected = run_scores
    card = (out / export.CARD_FILE).read_text(encoding="utf-8")
    (tmp_path / "score.py").write_text(usage_code(card), encoding="utf-8")

    # -I: no project folder, PYTHONPATH or user site on the path; only the export's own files are at hand.
    done = subprocess.run(
        [sys.executable, "-I", str(tmp_path / "score.py"), *paths], cwd=out, capture_output=True, text=True, timeout=600
    )

    assert done.returncode == 0, done.stderr[-2000:]
    printed = [ast.literal_eval(line.split(" ", 1)[1].split(" predicted:")[0]) for line in done.stdout.splitlines()]
    scores = np.array([[row[genre] for genre in exported.genres] for row in printed])
    np.testing.assert_allclose(scores, expected, atol=export.tolerance("keras"), rtol=0)
    assert json.loads((out / export.GENRES_FILE).read_text())["genres"] == rf.read_genres(tiny_model.run_dir)["genres"]
    assert json.loads((out / export.THRESHOLDS_FILE).read_text()) == rf.read_thresholds(tiny_model.run_dir)


def test_the_model_card_gives_the_data_years_metrics_beside_baselines_and_the_backbone_licence(tiny_model, tmp_path):
    exported = _export(tiny_model, "keras", tmp_path / "card")
    card = (exported.out_dir / export.CARD_FILE).read_text(encoding="utf-8")
    years = sorted(movie.year for movie in tiny_model.usable_movies())

    assert f"{years[0]}–" in card and f"–{years[-1]}" in card
    assert "### test (" in card and "### validation (" in card
    assert "predict nothing" in card and "always the 3 most frequent training genres" in card
    for genre in exported.genres:
        assert f"| {genre} |" in card
    assert "Apache License 2.0" in card and "Mingxing Tan and Quoc V. Le" in card


def test_an_export_never_overwrites_and_refuses_a_run_without_a_model(tiny_model, tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    with pytest.raises(export.ExportError, match="not empty"):
        _export(tiny_model, "keras", taken)
    assert [path.name for path in taken.iterdir()] == ["notes.txt"]

    with pytest.raises(export.ExportError, match="unknown format 'onnx'"):
        _export(tiny_model, "onnx", tmp_path / "onnx")

    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / rf.CONFIG_FILE).write_text(json.dumps({"image_size": "64x48"}))
    assert export_command.main(["--run", str(unfinished), "--format", "keras", "--out", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()


def test_the_mirror_of_a_flip_averaging_model_becomes_an_exact_built_in_one():
    import keras

    pixels = keras.Input((6, 4, 3), name="pixels")
    mirrored = HorizontalFlip(name="mirror")(pixels)
    outputs = keras.layers.Dense(2, name="genres")(keras.layers.Flatten()(mirrored))
    model = keras.Model(pixels, outputs)
    loaded = type("Loaded", (), {"model": model, "image_size": (6, 4)})()
    batch = np.random.default_rng(1).uniform(0, 255, (3, 6, 4, 3)).astype(np.float32)

    portable = export.portable_model(loaded)

    assert not any(isinstance(layer, HorizontalFlip) for layer in portable._flatten_layers())
    np.testing.assert_array_equal(portable.predict(batch, verbose=0), model.predict(batch, verbose=0))


# --- the destination, checked before the model is loaded ------------------------------------------------


@pytest.fixture
def no_model_load(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A dataset folder in the environment, and a model loader that fails the test if it is reached."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    monkeypatch.setenv(DATA_DIR_ENV, str(data_dir))

    def load(run_dir):
        raise AssertionError("the model was loaded before the destination was checked")

    monkeypatch.setattr(export, "load_run_model", load)
    return data_dir


def _refused(capsys: pytest.CaptureFixture[str], out: Path, tmp_path: Path) -> str:
    code = export_command.main(["--run", str(tmp_path / "run"), "--format", "keras", "--out", str(out)])
    [line] = capsys.readouterr().err.splitlines()
    assert code == 2 and line.startswith("error: ")
    return line


def test_an_export_to_a_place_that_cannot_hold_a_folder_is_refused_before_loading_the_model(
    no_model_load: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("mine")

    assert "cannot be written" in _refused(capsys, Path("/proc/poster-export"), tmp_path)
    assert "is a file" in _refused(capsys, tmp_path / "notes.txt" / "export", tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_an_export_into_the_dataset_folder_is_refused_even_through_a_link(
    no_model_load: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "link").symlink_to(no_model_load)

    assert "inside the dataset folder" in _refused(capsys, no_model_load / "models", tmp_path)
    assert "inside the dataset folder" in _refused(capsys, tmp_path / "link" / "models", tmp_path)
    assert "inside the dataset folder" in _refused(capsys, tmp_path / "elsewhere" / ".." / "data", tmp_path)
    assert list(no_model_load.iterdir()) == []


@pytest.mark.parametrize("given", ["new folder", "empty folder"])
def test_a_disk_that_fills_up_mid_export_leaves_no_half_written_export(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str], given: str
) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    loaded = SimpleNamespace(image_size=(8, 6), genres=("Drama",), thresholds=(0.5,))

    def save(path: Path) -> None:
        Path(path).write_bytes(b"half a model")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(export, "load_run_model", lambda run_dir: loaded)
    monkeypatch.setattr(export, "portable_model", lambda loaded: SimpleNamespace(save=save))
    out = tmp_path / "exports" / "model"
    if given == "empty folder":
        out.mkdir(parents=True)

    line = _refused(capsys, out, tmp_path)

    assert "No space left on device" in line
    if given == "empty folder":
        assert list(out.iterdir()) == []
    else:
        assert not (tmp_path / "exports").exists()
