"""provenance.json: what a run was made from (catalog, split, packages, device, backbone weights, commit),
so that a figure can be traced back and a run reproduced."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from typing import Any

import tensorflow as tf

from core.cluster import this_cluster
from core.config import PROJECT_ROOT, Settings
from core.model.backbone import cached_weights_path
from core.model.backbones import BACKBONES
from core.model.embeddings import features_id
from core.model.features import feature_layers
from core.training.config import TrainingConfig
from core.training.data import TrainingData, split_path
from core.training.split import PARTS


def _package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("tensorflow", "tensorflow-cpu", "keras", "numpy", "pandas", "scikit-learn", "pillow", "h5py"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    versions["iterative-stratification"] = _version_or_none("iterative-stratification")
    return versions


def _version_or_none(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def provenance(
    config: TrainingConfig, settings: Settings, data: TrainingData, strategy: tf.distribute.Strategy
) -> dict[str, Any]:
    """The provenance record of a run about to train under `strategy`."""
    uses_backbone = config.mode != "scratch"
    spec = BACKBONES[config.backbone]
    weights = cached_weights_path(settings.weights_dir, spec)
    return {
        "catalog_fingerprint": data.catalog_fingerprint,
        "data_dir": str(settings.data_dir),
        "split": {
            "split_id": data.split.split_id,
            "seed": data.split.seed,
            "fractions": dict(zip(PARTS, data.split.fractions, strict=True)),
            "path": str(split_path(settings)),
            "catalog_changes": data.split.changes.describe(),
        },
        "packages": _package_versions(),
        "device": {
            # By its public name: TensorFlow's class behind MultiWorkerMirroredStrategy is CollectiveAllReduceStrategy.
            "strategy": "MultiWorkerMirroredStrategy"
            if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            else type(strategy).__name__,
            "replicas": strategy.num_replicas_in_sync,
            "workers": this_cluster().count,  # the machines (TF_CONFIG's workers) that trained it together
            "gpus": [device.name for device in tf.config.list_logical_devices("GPU")],
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "hostname": platform.node(),
        },
        "backbone": {
            "name": spec.title,
            "weights_package": spec.requirement,
            "weights_sha256": spec.sha256,
            "keras_weights_file": weights.name,
            "features_id": features_id(spec.name),
            "feature_layers": list(feature_layers(spec)),
            "extra_backbones": [
                {
                    "name": BACKBONES[name].title,
                    "weights_sha256": BACKBONES[name].sha256,
                    "features_id": features_id(name),
                }
                for name in config.extra_backbones
            ],
        }
        if uses_backbone
        else None,
        "git_commit": _git_commit(),
        "command": [sys.executable, *sys.argv],
    }
