"""A run's TensorBoard log: what `tensorboard --logdir runs` reads from a finished run's folder."""

from __future__ import annotations

import json

import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from core.training import run_folder as rf


@pytest.fixture(scope="module")
def board(tiny_model) -> EventAccumulator:
    events = EventAccumulator(str(tiny_model.run_dir / rf.TENSORBOARD_DIR), size_guidance={"tensors": 0})
    return events.Reload()


def _series(board: EventAccumulator, tag: str) -> dict[int, float]:
    return {event.step: float(tf.make_ndarray(event.tensor_proto)) for event in board.Tensors(tag)}


def test_every_epoch_of_the_history_is_a_point_of_the_loss_and_validation_curves(tiny_model, board):
    history = json.loads((tiny_model.run_dir / rf.HISTORY_FILE).read_text())

    for name in ("loss", "val_loss", "val_map", "val_hit_at_3"):
        expected = {record["epoch"]: record[name] for record in history}
        assert _series(board, f"epoch/{name}") == pytest.approx(expected, abs=1e-6), name


def test_the_end_of_the_run_logs_each_parts_figures_and_per_genre_ap(tiny_model, board):
    metrics = json.loads((tiny_model.run_dir / rf.METRICS_FILE).read_text())
    best = metrics["best_epoch"]

    assert _series(board, "test/map") == pytest.approx({best: metrics["test"]["summary"]["map"]})
    for row in metrics["test"]["per_genre"]:
        assert _series(board, f"test/ap/{row['genre']}") == pytest.approx({best: row["ap"]})


def test_the_settings_are_logged_for_the_hparams_plugin(tiny_model, board):
    config = json.loads((tiny_model.run_dir / rf.CONFIG_FILE).read_text())
    [content] = board.PluginTagToContent("hparams").values()
    start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info

    assert start.group_name == tiny_model.run_id
    assert start.hparams["mode"].string_value == "fast"
    assert start.hparams["epochs"].number_value == config["epochs"]
    assert start.hparams["image_size"].string_value == config["image_size"]
