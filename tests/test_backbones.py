"""The backbone registry: every place that varies by backbone (config checks, command line, model card, time
estimate, requirements) follows the run's own entry, and none of it needs Keras."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from core.app import estimate
from core.app.runs import RunView
from core.config import PROJECT_ROOT, Settings
from core.model.backbones import BACKBONES, DEFAULT_BACKBONE, LITE0, LITE2
from core.serving.model_card import model_card
from core.training import run_folder as rf
from core.training.config import ConfigError, make_config


def test_naming_and_checking_backbones_loads_no_keras():
    # The command line's --help and the config's checks answer in a fraction of a second only without Keras.
    code = (
        "import sys, core.model.backbones, core.training.config, core.train, core.app.estimate, core.serving.model_card; "
        "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_each_entry_is_one_consistent_record():
    assert DEFAULT_BACKBONE in BACKBONES
    for name, entry in BACKBONES.items():
        assert entry.name == name and re.fullmatch(r"[0-9a-f]{64}", entry.sha256)
        assert entry.block_count == entry.stage_ends[-1] + 1
        assert entry.package == entry.pip_name.replace("-", "_") and entry.requirement.startswith(entry.pip_name + "==")
        assert entry.credit.startswith(entry.title.split(" (")[0]) and entry.licence
    assert len({entry.sha256 for entry in BACKBONES.values()}) == len(BACKBONES)


@pytest.mark.parametrize(
    ("entry", "widths", "repeats"),
    [
        (LITE0, (16, 24, 40, 80, 112, 192, 320), (1, 2, 2, 3, 3, 4, 1)),
        (LITE2, (16, 24, 48, 88, 120, 208, 352), (1, 3, 3, 4, 4, 5, 1)),
    ],
)
def test_each_backbones_stage_table_is_the_one_its_weight_file_holds(entry, widths, repeats):
    # The tables are scaled from Lite0's by width and depth; a rounding slip would build a model the weights misfit.
    assert tuple(stage.channels for stage in entry.stages) == widths
    assert tuple(stage.repeats for stage in entry.stages) == repeats
    assert entry.resource == ("models", f"efficientnet-{entry.name}-{entry.sha256[:8]}.pth")


@pytest.mark.parametrize("requirements", ["requirements.txt", "requirements-gpu.txt"])
def test_the_requirements_pin_every_backbones_weights_and_no_other(requirements):
    lines = (PROJECT_ROOT / requirements).read_text(encoding="utf-8").splitlines()
    pinned = {line.strip() for line in lines if "pytorch-model" in line and not line.lstrip().startswith("#")}
    assert pinned == {entry.requirement for entry in BACKBONES.values()}


def test_unfreeze_blocks_may_reach_the_chosen_backbones_block_count_and_no_further():
    for entry in BACKBONES.values():
        assert make_config("fine-tune", backbone=entry.name, unfreeze_blocks=entry.block_count).unfreeze_blocks == (
            entry.block_count
        )
        with pytest.raises(ConfigError, match=rf"from 0 to {entry.block_count} \({entry.name} has"):
            make_config("fine-tune", backbone=entry.name, unfreeze_blocks=entry.block_count + 1)
    assert LITE2.block_count > LITE0.block_count  # so the bound truly differs between them


def test_an_unknown_backbone_is_refused_with_the_registrys_names():
    with pytest.raises(ConfigError, match=", ".join(BACKBONES)):
        make_config("fast", backbone="resnet50")


def test_the_command_help_lists_every_backbone_with_its_block_count():
    done = subprocess.run(
        [sys.executable, "-m", "core.train", "--help"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    help_text = " ".join(done.stdout.split())  # argparse wraps lines
    for entry in BACKBONES.values():
        assert f"{entry.name} ({entry.block_count} blocks, {entry.native_size} px native)" in help_text


def _card(tmp_path: Path, config: dict, backbone_provenance: dict | None) -> str:
    """The model card of a run folder holding what a finished run writes about its settings and origin."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / rf.CONFIG_FILE).write_text(json.dumps(config))
    (run_dir / rf.PROVENANCE_FILE).write_text(json.dumps({"backbone": backbone_provenance}))
    loaded = types.SimpleNamespace(run_dir=run_dir, config=config, image_size=(64, 48), genres=("Drama", "Comedy"))
    settings = Settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", runs_dir=tmp_path)
    return model_card(loaded, "keras", settings)


@pytest.mark.parametrize("entry", list(BACKBONES.values()), ids=list(BACKBONES))
def test_the_model_card_credits_the_runs_own_backbone_and_its_wheel(tmp_path, entry):
    config = make_config("fast", backbone=entry.name).to_json()
    card = _card(tmp_path, config, {"name": entry.title, "weights_sha256": entry.sha256})
    credit = card.split("## Backbone, licence and credit", 1)[1].split("##", 1)[0]
    assert entry.credit in credit and f"`{entry.pip_name}` version {entry.pip_version}" in credit
    assert entry.licence in credit
    for other in BACKBONES.values():
        if other is not entry:
            assert other.pip_name not in credit and other.credit not in credit


def test_the_model_card_of_a_run_from_before_the_backbone_setting_credits_the_default(tmp_path):
    config = make_config("fast").to_json()
    del config["backbone"]
    card = _card(tmp_path, config, {"name": LITE0.title})
    assert LITE0.credit in card and LITE0.pip_name in card


def test_the_model_card_of_a_scratch_run_credits_no_backbone(tmp_path):
    card = _card(tmp_path, make_config("scratch").to_json(), None)
    assert "trained from scratch" in card and not any(entry.pip_name in card for entry in BACKBONES.values())


def _finished(run_id: str, backbone: str, per_epoch: float, mode: str = "fast") -> RunView:
    return RunView(
        run_id=run_id,
        path=Path("/nowhere") / run_id,
        state="finished",
        status={"state": "finished"},
        config={"mode": mode, "image_size": "64x48", "backbone": backbone},
        metrics={"timing": {"total_s": 100.0, "training_s": 6.0}},
        history=[{"epoch": n, "seconds": per_epoch} for n in (1, 2, 3)],
    )


def test_a_lite2_estimate_comes_from_a_lite2_run_never_from_a_lite0_one():
    newest_first = [_finished("lite0-run", "lite0", 2.0), _finished("lite2-run", "lite2", 5.0)]
    lite2 = estimate.estimate_from_runs(newest_first, "fast", "64x48", epochs=10, backbone="lite2")
    assert lite2 is not None and "lite2-run" in lite2.basis
    lite0 = estimate.estimate_from_runs(newest_first, "fast", "64x48", epochs=10, backbone="lite0")
    assert lite0 is not None and "lite0-run" in lite0.basis
    assert estimate.estimate_from_runs(newest_first[:1], "fast", "64x48", epochs=10, backbone="lite2") is None
    # The scratch mode has no backbone: any scratch run of the same size tells its time.
    scratch = estimate.estimate_from_runs([_finished("cnn", "lite0", 3.0, "scratch")], "scratch", "64x48", 10, "lite2")
    assert scratch is not None


def test_a_throughput_estimate_says_which_backbone_was_measured():
    found = estimate.estimate_from_throughput(40.0, "fast", 100, 5, uncached=100, backbone="lite2")
    assert "backbone lite2 measured here at 40 posters/s" in found.basis
