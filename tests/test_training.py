"""Training runs on the generated fixture: the embedding cache, complete run folders, stopping, failing,
reproducibility, every mode, and the `python -m core.train` command."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core import train as train_command
from core.config import Settings
from core.model import embeddings as embeddings_module
from core.model.backbones import BACKBONES
from core.model.embeddings import embed_images, embed_posters, poster_embeddings, vector_key
from core.model.features import FEATURE_DIM, FEATURES_MODEL, HEAD_MODEL
from core.model.pipeline import make_poster_dataset
from core.serving.explain import make_explainer
from core.serving.grad_cam import ExplainError
from core.serving.model_card import model_card
from core.serving.predict import decode_image_file, load_run_model
from core.training import fast as fast_mode
from core.training import metrics
from core.training import run_folder as rf
from core.training.config import ConfigError, make_config
from core.training.trainer import StopControl, prepare_data, train

SIZE = (64, 48)  # height, width in pixels: tiny, so that a run takes seconds
TINY = {"image_size": SIZE, "epochs": 2, "min_movies_per_genre": 5, "seed": 7, "batch_size": 16}


@pytest.fixture(scope="module")
def settings(fixture_data, tmp_path_factory) -> Settings:
    """The fixture dataset with this module's own caches, so nothing here touches another test's files."""
    work = tmp_path_factory.mktemp("training")
    return Settings(data_dir=fixture_data.settings.data_dir, cache_dir=work / "cache", runs_dir=work / "runs")


@pytest.fixture()
def signal_handlers():
    """Put back SIGTERM's and SIGINT's handlers after a test that installs the run's own."""
    saved = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


def _run(settings: Settings, tmp_path: Path, name: str = "run", stop: StopControl | None = None, **overrides):
    config = make_config(overrides.pop("mode", "fast"), **{**TINY, **overrides})
    run_dir = tmp_path / name
    return train(config, settings, run_dir, stop=stop), run_dir


def _model_scores_on_test(run_dir: Path, settings: Settings, config) -> tuple[np.ndarray, np.ndarray]:
    """The saved model's scores on the test posters (read through the training pipeline), and their labels."""
    test = prepare_data(config, settings).parts["test"]
    loaded = load_run_model(run_dir)
    images = make_poster_dataset(test.paths, loaded.image_size, 32)
    return np.concatenate([loaded.serve(batch).numpy() for batch in images]), test.labels


# --- the embedding cache -------------------------------------------------------------------------------


@pytest.mark.slow
def test_embeddings_are_computed_once_and_recomputed_only_for_a_changed_poster(settings, tmp_path, monkeypatch):
    source = sorted(settings.data_dir.rglob("*.jpg"))[:6]
    posters = []
    for number, path in enumerate(source):
        copy = tmp_path / "posters" / f"p{number}.jpg"
        copy.parent.mkdir(exist_ok=True)
        shutil.copy(path, copy)
        posters.append(str(copy))
    cache, root = tmp_path / "embeddings", tmp_path / "posters"
    first = embed_posters(posters[:4], SIZE, cache, settings.weights_dir, data_root=root)
    assert (first.computed, first.reused) == (4, 0)
    assert first.vectors.shape == (4, FEATURE_DIM)

    def no_model(*args, **kwargs):
        raise AssertionError("the backbone was needed although every poster was cached")

    monkeypatch.setattr(embeddings_module, "make_feature_extractor", no_model)
    again = embed_posters(posters[:4], SIZE, cache, settings.weights_dir, data_root=root)
    assert (again.computed, again.reused) == (0, 4)
    assert np.array_equal(again.vectors, first.vectors)
    monkeypatch.undo()

    # One poster replaced by another picture, two new ones: only those three are computed.
    Image.new("RGB", (60, 90), (0, 200, 0)).save(posters[1], "JPEG")
    os.utime(posters[1], ns=(1, 1))
    changed = embed_posters(posters, SIZE, cache, settings.weights_dir, data_root=root)
    assert (changed.computed, changed.reused) == (3, 3)
    assert np.array_equal(changed.vectors[[0, 2, 3]], first.vectors[[0, 2, 3]])
    assert not np.allclose(changed.vectors[1], first.vectors[1])

    # Another size or the mirrored view is a separate cache; the plain view above is reused.
    mirrored = poster_embeddings(posters, SIZE, cache, settings.weights_dir, flip_tta=True, data_root=root)
    assert (mirrored.computed, mirrored.reused) == (6, 6)
    assert sorted(folder.name for folder in cache.iterdir()) == sorted(
        vector_key(SIZE, view).folder_name for view in ("plain", "flip")
    )
    leftovers = [p for p in cache.rglob(".*") if p.name != ".filling.lock"]
    assert not leftovers  # no temporary file left behind

    # A poster deleted after it was embedded (before the catalog's next check): its cached vector is still
    # served, and a poster never embedded is counted missing; reading the cache never fails on either.
    Path(posters[0]).unlink()
    kept, missing = embeddings_module.cached_embeddings(posters, SIZE, cache, data_root=root)
    assert missing == 0 and np.array_equal(kept[0], changed.vectors[0])
    never = str(tmp_path / "never.jpg")
    assert embeddings_module.cached_embeddings([*posters, never], SIZE, cache, data_root=root) == (None, 1)


@pytest.mark.slow
def test_an_image_in_memory_embeds_like_its_cached_poster(settings, tmp_path):
    poster = str(sorted(settings.data_dir.rglob("*.jpg"))[0])
    cached = embed_posters([poster], SIZE, tmp_path, settings.weights_dir, data_root=settings.data_dir).vectors
    fresh = embed_images([decode_image_file(poster)], SIZE, settings.weights_dir)
    assert fresh.shape == cached.shape and np.allclose(fresh, cached, atol=1e-4)


# --- whole runs ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_fast_run_writes_a_complete_run_folder(settings, tmp_path):
    result, run_dir = _run(settings, tmp_path)
    assert result.state == "finished", result.error
    assert sorted(path.name for path in run_dir.iterdir()) == sorted(rf.RUN_FILES)

    status = rf.read_status(run_dir)
    assert set(status) == {
        "state", "pid", "pid_start_time", "started_at", "updated_at", "finished_at",
        "phase", "epoch", "epochs", "batch", "batches", "error", "model_saved",
    }  # fmt: skip
    assert status["state"] == "finished" and status["error"] is None and status["pid"] == os.getpid()
    assert status["model_saved"] is True
    assert status["pid_start_time"] == rf.process_start_time(os.getpid())
    assert rf.effective_state(status) == "finished"

    config = rf.read_config(run_dir)
    assert config["mode"] == "fast" and config["image_size"] == "64x48" and config["seed"] == 7
    genres = rf.read_genres(run_dir)
    assert genres["genres"] == ["Action", "Comedy", "Drama", "Horror", "Romance"]
    history = rf.read_history(run_dir)
    # The default fast run trains three heads, each choosing its own best epoch on validation.
    assert [record["epoch"] for record in history] == [1, 2, 3, 4, 5, 6]
    assert [(record["phase"], record["phase_epoch"]) for record in history] == [
        (phase, epoch) for phase in ("training", "training head 2 of 3", "training head 3 of 3") for epoch in (1, 2)
    ]
    assert {"loss", "val_loss", "val_map", "val_micro_f1", "val_macro_f1", "val_hit_at_3", "val_p_at_3"} <= set(
        history[0]
    )
    report = rf.read_metrics(run_dir)
    assert report["best_epoch"] in (1, 2) and report["stopped"] is False
    for part in ("validation", "test"):
        assert set(report[part]) == {"summary", "per_genre", "baselines"}
        assert set(report[part]["baselines"]) == {"nothing", "top3_frequent", "chance_map"}
    assert set(rf.read_thresholds(run_dir)) == set(genres["genres"])
    provenance = json.loads((run_dir / rf.PROVENANCE_FILE).read_text())
    assert provenance["split"]["split_id"] and provenance["catalog_fingerprint"]
    assert provenance["backbone"]["weights_sha256"] and provenance["packages"]["keras"]
    assert provenance["device"]["strategy"]

    # model.keras alone reproduces the test scores the metrics were computed from.
    scores, labels = _model_scores_on_test(run_dir, settings, make_config("fast", **TINY))
    assert metrics.mean_average_precision(labels, scores) == pytest.approx(report["test"]["summary"]["map"], abs=1e-4)
    assert (settings.cache_dir / "split.json").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["fast", "scratch"])
def test_the_same_seed_gives_the_same_test_metrics(settings, tmp_path, mode):
    first, _ = _run(settings, tmp_path, "first", mode=mode, epochs=3)
    second, _ = _run(settings, tmp_path, "second", mode=mode, epochs=3)
    assert first.state == second.state == "finished"
    for key, value in first.metrics["test"]["summary"].items():
        assert second.metrics["test"]["summary"][key] == pytest.approx(value, abs=1e-6), key


class _StopAfterFirstEpoch(StopControl):
    """Drops a STOP file, as the app does, as soon as the first epoch is in the history."""

    def requested(self) -> bool:
        if rf.read_history(self.run_dir):
            rf.request_stop(self.run_dir)
        return super().requested()


@pytest.mark.slow
def test_a_stop_file_ends_the_run_cleanly_with_the_best_model_so_far(settings, tmp_path):
    run_dir = tmp_path / "stopped"
    result, _ = _run(settings, tmp_path, "stopped", stop=_StopAfterFirstEpoch(run_dir), epochs=20)
    assert result.state == "stopped", result.error
    status = rf.read_status(run_dir)
    assert status["state"] == "stopped" and status["finished_at"] and status["model_saved"] is True
    history = rf.read_history(run_dir)
    # Asked during the second epoch: a head runs an epoch's steps in one call (a fraction of a second), so
    # that epoch ends, and the run with it.
    assert len(history) == 2 and [record["epoch"] for record in history] == [1, 2]
    assert rf.read_metrics(run_dir)["stopped"] is True
    assert load_run_model(run_dir).model is not None
    assert "Stop requested" in (run_dir / rf.LOG_FILE).read_text()


@pytest.mark.slow
def test_a_stop_before_the_first_epoch_saves_no_model(settings, tmp_path):
    run_dir = tmp_path / "early"
    run_dir.mkdir()
    rf.request_stop(run_dir)
    result, _ = _run(settings, tmp_path, "early")
    assert result.state == "stopped"
    status = rf.read_status(run_dir)
    assert status["state"] == "stopped" and "no model" in status["error"] and status["model_saved"] is False
    assert not (run_dir / rf.MODEL_FILE).exists()


@pytest.mark.slow
def test_an_error_during_training_fails_the_run_with_the_reason_and_the_traceback(settings, tmp_path, monkeypatch):
    def broken_head(*args, **kwargs):
        raise RuntimeError("the head would not build")

    monkeypatch.setattr(fast_mode, "make_head", broken_head)
    result, run_dir = _run(settings, tmp_path)
    assert result.state == "failed"
    status = rf.read_status(run_dir)
    assert status["state"] == "failed" and "the head would not build" in status["error"]
    assert "Traceback" in (run_dir / rf.LOG_FILE).read_text()
    assert not (run_dir / rf.MODEL_FILE).exists() and not (run_dir / rf.METRICS_FILE).exists()


@pytest.mark.parametrize(
    ("mode", "overrides", "expected"),
    [
        ("scratch", {}, {"training"}),
        ("fine-tune", {"head_epochs": 2, "epochs": 1, "unfreeze_blocks": 1}, {"training", "fine-tuning"}),
    ],
)
@pytest.mark.slow
def test_the_scratch_and_fine_tune_modes_train_from_pixels(settings, tmp_path, mode, overrides, expected):
    result, run_dir = _run(settings, tmp_path, mode=mode, **overrides)
    assert result.state == "finished", result.error
    assert {record["phase"] for record in rf.read_history(run_dir)} == expected
    scores, labels = _model_scores_on_test(run_dir, settings, make_config(mode, **{**TINY, **overrides}))
    assert metrics.mean_average_precision(labels, scores) == pytest.approx(
        rf.read_metrics(run_dir)["test"]["summary"]["map"], abs=1e-4
    )


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["lite1", "lite2"])
def test_a_larger_backbones_run_trains_saves_reloads_predicts_and_credits_that_backbone(settings, tmp_path, backbone):
    entry = BACKBONES[backbone]
    result, run_dir = _run(settings, tmp_path, backbone, backbone=backbone)
    assert result.state == "finished", result.error
    assert json.loads((run_dir / rf.PROVENANCE_FILE).read_text())["backbone"]["name"] == entry.title
    assert (settings.embeddings_dir / vector_key(SIZE, backbone=backbone).folder_name).is_dir()  # beside Lite0's
    scores, labels = _model_scores_on_test(run_dir, settings, make_config("fast", **{**TINY, "backbone": backbone}))
    assert metrics.mean_average_precision(labels, scores) == pytest.approx(
        rf.read_metrics(run_dir)["test"]["summary"]["map"], abs=1e-4
    )
    card = model_card(load_run_model(run_dir), "keras", settings)
    assert entry.credit in card and entry.pip_name in card
    assert BACKBONES["lite0"].pip_name not in card and "EfficientNet-Lite0" not in card


@pytest.mark.slow
def test_a_multi_scale_run_predicts_from_pixels_exactly_what_its_cached_two_size_features_gave(settings, tmp_path):
    result, run_dir = _run(settings, tmp_path, "multi", multi_scale="48x32")
    assert result.state == "finished", result.error
    assert json.loads((run_dir / rf.CONFIG_FILE).read_text())["multi_scale"] == "48x32"
    assert (settings.embeddings_dir / vector_key(SIZE, seen_at=(48, 32)).folder_name).is_dir()  # its own key
    # The test figures came from cached features (both sizes averaged); the saved model sees pixels only.
    scores, labels = _model_scores_on_test(run_dir, settings, make_config("fast", **{**TINY, "multi_scale": "48x32"}))
    assert metrics.mean_average_precision(labels, scores) == pytest.approx(
        rf.read_metrics(run_dir)["test"]["summary"]["map"], abs=1e-4
    )
    loaded = load_run_model(run_dir)
    with pytest.raises(ExplainError, match="two sizes"):
        make_explainer(loaded)


@pytest.mark.slow
def test_an_ensemble_of_refitted_heads_is_saved_as_one_head_and_scores_from_pixels_what_it_reported(settings, tmp_path):
    overrides = {"head_ensemble": 2, "refit": True, "epochs": 3, "temporal_test_from": 2004}
    result, run_dir = _run(settings, tmp_path, "ensemble", **overrides)
    assert result.state == "finished", result.error
    # Each head chose its own epochs on validation, under its own name in the history.
    history = rf.read_history(run_dir)
    assert {record["phase"] for record in history} == {"training", "training head 2 of 2"}
    # The refit trained each head on training + validation for exactly the epochs validation chose.
    data = prepare_data(make_config("fast", **{**TINY, **overrides}), settings)
    posters = len(data.parts["train"].ids) + len(data.parts["val"].ids)
    log = (run_dir / rf.LOG_FILE).read_text()
    for number, phase in ((1, "training"), (2, "training head 2 of 2")):
        best = max((r for r in history if r["phase"] == phase), key=lambda r: (r["val_map"], -r["phase_epoch"]))
        assert f"refit of head {number} of 2: {best['phase_epoch']} epochs on {posters} training + validation" in log
    # The saved model is one head averaging the two, and its scores from pixels are the reported ones.
    loaded = load_run_model(run_dir)
    ensemble = loaded.model.get_layer("genre_head")
    features = np.random.default_rng(0).normal(size=(4, ensemble.input_shape[-1])).astype(np.float32)
    inner = [ensemble.get_layer(f"genre_head_{number}") for number in (1, 2)]
    averaged = np.mean([head(features).numpy() for head in inner], axis=0)
    np.testing.assert_allclose(ensemble(features).numpy(), averaged, atol=1e-6)
    scores, labels = _model_scores_on_test(run_dir, settings, make_config("fast", **{**TINY, **overrides}))
    assert metrics.mean_average_precision(labels, scores) == pytest.approx(
        rf.read_metrics(run_dir)["test"]["summary"]["map"], abs=1e-4
    )
    # The temporal twin is trained the same way.
    assert "temporal twin refit of head 2 of 2" in log


@pytest.mark.slow
def test_an_ensemble_stopped_after_its_first_head_saves_that_head_where_the_poster_reader_looks(settings, tmp_path):
    stop = _StopAfterFirstEpoch(tmp_path / "stopped-ensemble")
    result, run_dir = _run(settings, tmp_path, "stopped-ensemble", stop=stop, head_ensemble=3, epochs=20)
    assert result.state == "stopped"
    assert {record["phase"] for record in rf.read_history(run_dir)} == {"training"}  # heads 2 and 3 never began
    loaded = load_run_model(run_dir)
    # Its head is under the usual name, where the one-pass poster reader (core.serving.poster_index) looks for it.
    assert {FEATURES_MODEL, HEAD_MODEL} <= {layer.name for layer in loaded.model.layers}
    scores, labels = _model_scores_on_test(run_dir, settings, make_config("fast", **TINY))
    assert metrics.mean_average_precision(labels, scores) == pytest.approx(
        rf.read_metrics(run_dir)["test"]["summary"]["map"], abs=1e-4
    )


@pytest.mark.slow
def test_refit_changes_the_saved_heads_but_not_what_validation_chose(settings, tmp_path):
    plain, plain_dir = _run(settings, tmp_path, "plain", epochs=3, refit=False)
    refit, refit_dir = _run(settings, tmp_path, "refit", epochs=3, refit=True)
    assert plain.state == refit.state == "finished"
    # Same seed: the same best epoch and the same thresholds, chosen before the refit ...
    assert refit.metrics["best_epoch"] == plain.metrics["best_epoch"]
    assert rf.read_thresholds(refit_dir) == rf.read_thresholds(plain_dir)
    assert refit.metrics["validation"]["summary"] == plain.metrics["validation"]["summary"]
    # ... and other test scores, because the saved head learnt from the validation posters too.
    config = make_config("fast", **TINY)
    plain_scores, _ = _model_scores_on_test(plain_dir, settings, config)
    refit_scores, _ = _model_scores_on_test(refit_dir, settings, config)
    assert np.abs(plain_scores - refit_scores).max() > 1e-3


@pytest.mark.parametrize(
    ("mode", "overrides", "message"),
    [
        ("fine-tune", {"head_ensemble": 2}, "fast-mode settings"),
        ("scratch", {"refit": True}, "fast-mode settings"),
        ("fast", {"head_ensemble": 0}, "head_ensemble must be a whole number from 1 to 16"),
        ("fast", {"refit": "yes"}, "refit must be true or false"),
    ],
)
def test_ensembles_and_refits_outside_the_fast_mode_or_out_of_range_are_refused(mode, overrides, message):
    with pytest.raises(ConfigError, match=message):
        make_config(mode, **overrides)


@pytest.mark.parametrize(
    ("mode", "multi_scale", "message"),
    [
        ("fast", "64x48", "smaller than the image size"),
        ("fast", "80x32", "smaller than the image size"),
        ("fine-tune", "48x32", "fast-mode setting"),
        ("fast", "48", "image size must look like"),
    ],
)
def test_a_second_size_that_is_not_smaller_or_not_in_fast_mode_is_refused(mode, multi_scale, message):
    with pytest.raises(ConfigError, match=message):
        make_config(mode, image_size=SIZE, multi_scale=multi_scale)


# --- the command ---------------------------------------------------------------------------------------


def _command_line(settings: Settings) -> list[str]:
    return ["--data-dir", str(settings.data_dir), "--cache-dir", str(settings.cache_dir), "--quiet"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--mode", "turbo"], "unknown mode 'turbo'"),
        (["--image-size", "320"], "image size must look like 320x224"),
        (["--epochs", "0"], "epochs must be a whole number from 1"),
        (["--epochs", "two"], "--epochs must be a whole number"),
        (["--min-movies-per-genre", "1000"], "at least 2 are needed"),
    ],
)
def test_invalid_settings_fail_the_run_with_a_clear_error(settings, tmp_path, capsys, arguments, message):
    run_dir = tmp_path / "bad"
    code = train_command.main([*arguments, "--run-dir", str(run_dir), *_command_line(settings)])
    assert code == train_command.EXIT_BAD_CONFIG
    status = rf.read_status(run_dir)
    assert status["state"] == "failed" and message in status["error"]
    assert message in capsys.readouterr().err
    assert not (run_dir / rf.MODEL_FILE).exists() and not (run_dir / rf.HISTORY_FILE).exists()


@pytest.mark.slow
def test_the_command_trains_into_a_new_folder_of_the_runs_dir(settings, tmp_path, capsys, signal_handlers):
    runs_dir = tmp_path / "runs"
    arguments = ["--image-size", "64x48", "--epochs", "2", "--min-movies-per-genre", "5", "--runs-dir", str(runs_dir)]
    code = train_command.main([*arguments, *_command_line(settings)])
    assert code == 0
    (run_dir,) = [path for path in runs_dir.iterdir() if path.is_dir()]  # beside it: the runs folder's lock file
    assert rf.read_status(run_dir)["state"] == "finished"
    assert "-fast-" in run_dir.name


def test_a_folder_that_holds_a_run_is_not_reused(settings, tmp_path, capsys):
    run_dir = tmp_path / "used"
    run_dir.mkdir()
    (run_dir / rf.METRICS_FILE).write_text("{}")
    code = train_command.main(["--run-dir", str(run_dir), *_command_line(settings)])
    assert code == train_command.EXIT_BAD_CONFIG
    assert "already holds a run" in capsys.readouterr().err
    assert not (run_dir / rf.STATUS_FILE).exists()


def test_sigterm_asks_for_a_clean_stop_and_a_second_one_interrupts(tmp_path):
    """In a process of its own, as a run has: the full suite's pytest process died of a segmentation fault
    when it signalled itself here, with the native threads of the libraries earlier tests had loaded."""
    script = textwrap.dedent(
        f"""
        import os, signal
        from core.training.stop import StopControl

        stop = StopControl({str(tmp_path)!r})
        stop.install_signal_handlers()
        assert not stop.requested()
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested() and stop.reason() == "SIGTERM received", stop.reason()
        try:
            os.kill(os.getpid(), signal.SIGTERM)  # a second one does not wait for the end of the batch
        except KeyboardInterrupt:
            print("interrupted")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=Path(__file__).parent.parent, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.strip() == "interrupted", done.stderr[-2000:]


@pytest.mark.slow
def test_the_fine_tune_mode_trains_under_a_mirrored_strategy(settings, tmp_path):
    """What a multi-GPU box runs, simulated with two logical CPU devices (in a fresh process: devices are
    fixed once TensorFlow starts)."""
    script = textwrap.dedent(
        f"""
        import tensorflow as tf
        from pathlib import Path
        from core.config import Settings
        from core.training import trainer
        from core.training.config import ConfigError, make_config

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        trainer.pick_strategy = lambda *_: tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        settings = Settings(Path({str(settings.data_dir)!r}), Path({str(settings.cache_dir)!r}), Path("unused"))
        config = make_config("fine-tune", image_size=(64, 48), epochs=1, head_epochs=2, unfreeze_blocks=1,
                             min_movies_per_genre=5)
        result = trainer.train(config, settings, Path({str(tmp_path / "mirrored")!r}))
        assert result.state == "finished", result.error
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=Path(__file__).parent.parent, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    provenance = json.loads((tmp_path / "mirrored" / rf.PROVENANCE_FILE).read_text())
    assert provenance["device"]["strategy"] == "MirroredStrategy" and provenance["device"]["replicas"] == 2
    assert rf.read_status(tmp_path / "mirrored")["state"] == "finished"
