"""The backbone cut in two at the map entering its last K blocks: what lets a run adapt those blocks to posters
at the price of a head.

Everything below the cut stays frozen, so the map entering block `N - K` is the same for a poster in every
epoch: computed once (`core.model.embeddings.embed_activations`, float16 in the embeddings store under
that layer's key), it lets an epoch run only the K blocks, the head conv and the genre head. The poster
features keep their layout (`core.model.features.feature_layers`): the stages below the cut are the frozen
store's leading columns, the stages at and above it come from the trained top.

Layers keep the names of the whole backbone (`core.model.backbone.build_backbone_top`), so a trained top is
copied by name into a whole pretrained backbone and the run saves one model from pixels to genres.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras

from core.model.backbone import block_plan, build_backbone_top, entry_layer, load_pretrained
from core.model.backbones import BACKBONES, MAX_TUNED_BLOCKS, Backbone
from core.model.features import FEATURES_MODEL, feature_layers, make_feature_extractor


def first_tuned_block(spec: Backbone, blocks: int) -> int:
    """The number of the first of the last `blocks` blocks."""
    if not 1 <= blocks <= min(MAX_TUNED_BLOCKS, spec.block_count - 1):
        raise ValueError(f"blocks must be from 1 to {min(MAX_TUNED_BLOCKS, spec.block_count - 1)}, got {blocks}")
    return spec.block_count - blocks


def _block_of(layer_name: str) -> int | None:
    return int(layer_name[5:].split("_", 1)[0]) if layer_name.startswith("block") else None


def tuned_feature_layers(spec: Backbone, blocks: int) -> tuple[str, ...]:
    """The feature layers the trained top computes; the others lie below the cut and stay frozen."""
    first = first_tuned_block(spec, blocks)
    return tuple(name for name in feature_layers(spec) if (_block_of(name) or first) >= first)


def frozen_columns(spec: Backbone, blocks: int) -> int:
    """How many leading columns of the poster features lie below the cut (the frozen store has them)."""
    tuned = set(tuned_feature_layers(spec, blocks))
    widths = [stage.channels for stage in spec.stages[1:]]
    return sum(width for name, width in zip(feature_layers(spec), widths, strict=False) if name not in tuned)


def entry_shape(spec: Backbone, image_size: tuple[int, int], blocks: int) -> tuple[int, int, int]:
    """(height, width, channels) of the map entering the first tuned block, for posters at `image_size`."""
    first = first_tuned_block(spec, blocks)
    height, width = image_size
    for block in [b for b in block_plan(spec) if b.index < first]:
        height, width = -(-height // block.stride), -(-width // block.stride)
    height, width = -(-height // 2), -(-width // 2)  # the stem
    return height, width, block_plan(spec)[first - 1].stage.channels


def make_activation_extractor(
    image_size: tuple[int, int], weights_dir: Path, backbone_name: str, blocks: int
) -> keras.Model:
    """Raw RGB pixels at `image_size` → the frozen map entering the last `blocks` blocks, flattened (the store
    keeps one vector per poster)."""
    spec = BACKBONES[backbone_name]
    backbone = load_pretrained((*image_size, 3), include_top=False, cache_dir=weights_dir, spec=spec)
    entry = backbone.get_layer(entry_layer(spec, first_tuned_block(spec, blocks))).output
    flat = keras.layers.Flatten(name="entry_map")(entry)
    return keras.Model(backbone.input, flat, name=f"{backbone_name}_entry_of_top_{blocks}")


def make_top(
    spec: Backbone, image_size: tuple[int, int], blocks: int, weights_from: keras.Model, name: str = "tuned_top"
) -> keras.Model:
    """Entry map → the pooled features of the tuned layers, with `weights_from`'s weights (a whole backbone
    or a features model that holds its layers)."""
    trunk = build_backbone_top(spec, first_tuned_block(spec, blocks), entry_shape(spec, image_size, blocks))
    pooled = [
        keras.layers.GlobalAveragePooling2D(name=f"{layer}_mean")(trunk.get_layer(layer).output)
        for layer in tuned_feature_layers(spec, blocks)
    ]
    features = pooled[0] if len(pooled) == 1 else keras.layers.Concatenate(name="tuned_features")(pooled)
    top = keras.Model(trunk.input, features, name=name)
    copy_weights_by_name(weights_from, top)
    return top


def copy_weights_by_name(source: keras.Model, target: keras.Model, names: set[str] | None = None) -> int:
    """Copy into `target` the weights of each layer named in `names` (by default every weighted layer of
    `target`) from the layer of the same name in `source`; returns how many layers.

    Raises ValueError when one side lacks a layer: a top and its backbone must match layer for layer.
    """
    if names is None:
        names = {layer.name for layer in target.layers if layer.weights}
    for name in names:
        try:
            source_layer, target_layer = source.get_layer(name), target.get_layer(name)
        except ValueError as error:
            raise ValueError(f"{source.name} and {target.name} do not both have a layer {name!r}") from error
        target_layer.set_weights(source_layer.get_weights())
    return len(names)


def backbone_with_top(
    image_size: tuple[int, int], weights_dir: Path, backbone_name: str, top: keras.Model
) -> keras.Model:
    """The whole features model (`make_feature_extractor`'s layout) with `top`'s trained blocks in it."""
    features = make_feature_extractor(image_size, weights_dir, backbone_name)
    copy_weights_by_name(top, features, {layer.name for layer in top.layers if layer.weights})
    return features


def split_features(features: keras.Model, spec: Backbone, image_size: tuple[int, int], blocks: int):
    """A tuned run's features model as (below: pixels → [entry map, frozen columns], its tuned top), so that
    a reader can run the frozen part once and both the tuned and the pretrained top on its map."""
    entry = features.get_layer(entry_layer(spec, first_tuned_block(spec, blocks))).output
    tuned = set(tuned_feature_layers(spec, blocks))
    frozen = [features.get_layer(f"{name}_mean").output for name in feature_layers(spec) if name not in tuned]
    columns = frozen[0] if len(frozen) == 1 else keras.layers.Concatenate(name="frozen_columns")(frozen)
    below = keras.Model(features.input, [entry, columns], name=f"{FEATURES_MODEL}_below_the_cut")
    return below, make_top(spec, image_size, blocks, features)


def as_float_maps(vectors: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Stored flat maps back as (posters, height, width, channels) float16, as they are kept in memory."""
    return np.asarray(vectors, dtype=np.float16).reshape((len(vectors), *shape))
