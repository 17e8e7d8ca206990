"""The training losses for genres learned one yes/no question each, and the weights they give rare genres.

Most genres are rare: a poster is Drama about half the time, Sport or War a few times in a hundred, so a
model can score well on the loss by saying no to the rare ones. Two remedies from the literature, beside
plain binary cross-entropy with per-genre positive weights (`WeightedBinaryCrossentropy`):

- **Asymmetric loss** (Ridnik et al., ICCV 2021, "Asymmetric Loss For Multi-Label Classification"): the many
  easy negatives are down-weighted by a focusing factor p^γ− and the lowest-scored ones dropped outright by a
  margin m (p − m, floored at 0), while positives keep their full cross-entropy (γ+ = 0). The paper's values,
  γ− = 4 and m = 0.05, are used as they are.
- **Class-balanced weights** (Cui et al., CVPR 2019): the positive term weighted by the effective numbers of
  a genre's negatives and positives, `pos_weighting="effective-number"` (`core.model.features.positive_weights`).
"""

from __future__ import annotations

import keras
import numpy as np

ASYMMETRIC_GAMMA_NEGATIVE = 4.0
ASYMMETRIC_MARGIN = 0.05
_EPSILON = 1e-7  # keeps log(0) out of the loss; far below any probability the thresholds look at
# Registered under this package, so a saved model whose compiled head names its loss loads anywhere this module
# is imported (core.model.features imports it).
_PACKAGE = "poster_genres"


class _PositiveWeightedLoss(keras.losses.Loss):
    """−mean over genres of [w_g · y · log p + (1 − y) · negative(p)]: what both losses share, the per-genre
    weight on the positive term included; each says what a negative costs."""

    default_name = "genre_loss"

    def __init__(self, pos_weight, name: str | None = None, **kwargs):
        super().__init__(name=name or self.default_name, **kwargs)
        self.pos_weight = [float(w) for w in np.asarray(pos_weight, dtype=np.float64).ravel()]

    def negative(self, p):
        raise NotImplementedError

    def call(self, y_true, y_pred):
        y_true = keras.ops.cast(y_true, y_pred.dtype)
        p = keras.ops.clip(y_pred, _EPSILON, 1.0 - _EPSILON)
        weight = keras.ops.convert_to_tensor(self.pos_weight, dtype=y_pred.dtype)
        terms = weight * y_true * keras.ops.log(p) + (1.0 - y_true) * self.negative(p)
        return -keras.ops.mean(terms, axis=-1)

    def get_config(self):
        return {**super().get_config(), "pos_weight": self.pos_weight}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class WeightedBinaryCrossentropy(_PositiveWeightedLoss):
    """Binary cross-entropy with one weight on the positive term per genre.

    loss = -mean over genres of [w_g · y · log p + (1 − y) · log(1 − p)]. Weights above 1 make a missed
    rare genre cost more; weights of 1 give plain binary cross-entropy.
    """

    default_name = "weighted_binary_crossentropy"

    def negative(self, p):
        return keras.ops.log(1.0 - p)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class AsymmetricLoss(_PositiveWeightedLoss):
    """Ridnik et al.'s asymmetric loss on sigmoid probabilities, with the same per-genre positive weights
    as the cross-entropy: −mean over genres of [w·y·log p + (1 − y)·p_m^γ−·log(1 − p_m)], p_m = max(p − m, 0)."""

    default_name = "asymmetric_loss"

    def negative(self, p):
        shifted = keras.ops.maximum(p - ASYMMETRIC_MARGIN, 0.0)
        return keras.ops.power(shifted, ASYMMETRIC_GAMMA_NEGATIVE) * keras.ops.log(1.0 - shifted)


def genre_loss(name: str, pos_weight: np.ndarray) -> keras.losses.Loss:
    """The loss a run trains with (`TrainingConfig.loss`)."""
    if name == "bce":
        return WeightedBinaryCrossentropy(pos_weight)
    if name == "asymmetric":
        return AsymmetricLoss(pos_weight)
    raise ValueError(f"unknown loss {name!r}; expected bce or asymmetric")


def loss_value(name: str, labels: np.ndarray, scores: np.ndarray, pos_weight: np.ndarray) -> float:
    """The training loss on scores already computed (NumPy twin of `genre_loss`, for the validation loss)."""
    p = np.clip(np.asarray(scores, dtype=np.float64), _EPSILON, 1 - _EPSILON)
    labels = np.asarray(labels, dtype=np.float64)
    if name == "asymmetric":
        shifted = np.maximum(p - ASYMMETRIC_MARGIN, 0.0)
        negative = shifted**ASYMMETRIC_GAMMA_NEGATIVE * np.log(1 - shifted)
    else:
        negative = np.log(1 - p)
    terms = pos_weight * labels * np.log(p) + (1 - labels) * negative
    return float(-terms.mean())
