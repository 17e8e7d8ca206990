"""The frozen map entering a backbone's last K blocks, per poster, kept in the embeddings store.

What `core.training.top_tuning` trains on: computed once per backbone, image size and cut, under the key of
the layer the map leaves (`VectorKey.layer`), with the same store, locks and checkpoints as the pooled
features (`core.model.embeddings`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from core.model.backbone import entry_layer
from core.model.backbones import BACKBONES, DEFAULT_BACKBONE
from core.model.embedding_store import EmbeddingStore, VectorKey
from core.model.embeddings import EmbeddingResult, Progress, embed_missing, features_id
from core.model.top_blocks import entry_shape, first_tuned_block, make_activation_extractor


def activation_key(image_size: tuple[int, int], blocks: int, backbone: str = DEFAULT_BACKBONE) -> VectorKey:
    """The store's key for the frozen map entering the last `blocks` blocks, named after the layer it leaves."""
    spec = BACKBONES[backbone]
    return VectorKey(
        features_id(backbone), tuple(image_size), "plain", entry_layer(spec, first_tuned_block(spec, blocks))
    )


def embed_activations(
    paths: Sequence[str],
    image_size: tuple[int, int],
    embeddings_dir: Path,
    weights_dir: Path,
    blocks: int,
    backbone: str = DEFAULT_BACKBONE,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    *,
    data_root: Path,
) -> EmbeddingResult:
    """The frozen map entering the last `blocks` blocks of each poster, flattened, float16, from the store
    where it is up to date (computed once per backbone, size and cut, as `embed_posters` computes features).

    Float16 halves the store (5,745 Lite0 maps at 384×256: 12×8×192 values each, 0.2 GB); the maps are
    post-ReLU6 activations and residual sums of a few units, where float16 keeps three significant digits.
    """
    key = activation_key(image_size, blocks, backbone)
    dim = int(np.prod(entry_shape(BACKBONES[backbone], image_size, blocks)))
    store = EmbeddingStore(embeddings_dir, data_root)
    found, missing = store.lookup(key, paths, dim, np.float16)
    computed = 0
    if missing:
        with store.filling(key, progress, should_stop) as publish:
            found, missing = store.lookup(key, paths, dim, np.float16)
            computed = len(missing)
            if missing:
                extractor = make_activation_extractor(image_size, weights_dir, backbone, blocks)
                found.update(embed_missing(store, key, paths, missing, image_size, extractor,
                                           progress=progress, publish=publish, should_stop=should_stop,
                                           dtype=np.float16))  # fmt: skip
    vectors = np.stack([found[i] for i in range(len(paths))]) if paths else np.zeros((0, dim), np.float16)
    return EmbeddingResult(vectors, computed=computed, reused=len(paths) - computed)
