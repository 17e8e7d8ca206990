"""What every training mode trains from, as one value: `ModeInputs`.

The trainer and the temporal twin build it once and hand it to the mode (`fast`, `fine-tune`, `scratch`),
so a mode's signature cannot drift from the others' and a new input reaches every mode in one place. It is
frozen: a step that needs another keeper of the best weights (an ensemble's later heads) takes a copy
made with `dataclasses.replace`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from core.config import Settings
from core.training.config import TrainingConfig
from core.training.data import TrainingData
from core.training.epochs import BestWeights, Progress, Trained


@dataclass(frozen=True)
class ModeInputs:
    """The run's data and settings, and where a mode reports its epochs and keeps its best weights."""

    data: TrainingData
    config: TrainingConfig
    settings: Settings
    pos_weight: np.ndarray  # per genre, the loss's weight on a positive label
    best: BestWeights  # the caller reads the best epoch from it after the mode returns
    progress: Progress
    strategy: tf.distribute.Strategy

    @property
    def global_batch(self) -> int:
        """Posters per step over all replicas: each replica takes `config.batch_size`."""
        return self.config.batch_size * self.strategy.num_replicas_in_sync


TrainMode = Callable[[ModeInputs], Trained]
