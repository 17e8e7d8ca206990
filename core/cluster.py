"""This process's place among the workers of a `TF_CONFIG` (TensorFlow's own cluster format).

Read without loading TensorFlow, so the training and embedding commands can tell a chief from a worker
before anything heavy starts. Embedding (`core.model.embedding_shards`) and training
(`core.training.worker_loop`) share out their work among the same workers.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Cluster:
    """This process's place among the workers: `index` of `count`, the chief being 0."""

    index: int = 0
    count: int = 1

    @property
    def is_chief(self) -> bool:
        return self.index == 0


def cluster_from_tf_config(text: str | None) -> Cluster:
    """The cluster of a `TF_CONFIG` value (TensorFlow's own format), a single process without one.

    A "chief" task, when the cluster names one, is index 0 and the workers follow; otherwise worker 0 is the
    chief, as `MultiWorkerMirroredStrategy` has it.
    """
    if not text:
        return Cluster()
    config = json.loads(text)
    cluster, task = config.get("cluster", {}), config.get("task", {})
    chiefs, workers = list(cluster.get("chief", [])), list(cluster.get("worker", []))
    kind, number = task.get("type", "worker"), int(task.get("index", 0))
    if kind not in ("chief", "worker"):
        raise ValueError(f"TF_CONFIG's task type {kind!r} is neither a chief nor a worker")
    index = number if kind == "chief" else len(chiefs) + number
    count = len(chiefs) + len(workers)
    if not 0 <= index < count:
        raise ValueError(f"TF_CONFIG's task {kind} {number} is not in its cluster of {count}")
    return Cluster(index, count)


def this_cluster() -> Cluster:
    """The cluster of this process's `TF_CONFIG` environment variable (ValueError names what is wrong)."""
    return cluster_from_tf_config(os.environ.get("TF_CONFIG"))
