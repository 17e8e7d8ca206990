"""Read a PyTorch state dict (`.pth`) into NumPy arrays, without PyTorch and without trusting the pickle.

A `.pth` file is a pickle, and unpickling runs whatever callables the file names: loading one with plain
`pickle.load` is running code from a download. This reader only lets through the few globals a state dict
of plain tensors needs, each mapped to a harmless stand-in, and refuses anything else before it runs.

Both of PyTorch's layouts are read:
- the legacy one (before PyTorch 1.6): five pickles in a row (magic number, protocol version, system
  info, the state dict, the list of storage keys), then each storage's raw bytes after an 8-byte count;
- the zip one: `<archive>/data.pkl` plus one entry `<archive>/data/<key>` per storage.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

# The first pickle of a legacy file is this number; its second is the protocol version below.
_LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL_VERSION = 1001

# PyTorch's typed storages, by the name they are pickled under, and the NumPy type of their elements.
_STORAGE_DTYPES: dict[str, np.dtype] = {
    "DoubleStorage": np.dtype("<f8"),
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("<i1"),
    "ByteStorage": np.dtype("<u1"),
    "BoolStorage": np.dtype("?"),
}


class WeightFileError(Exception):
    """A weight file is missing, altered, truncated or not the kind of file it should be."""


class UnsafePickleError(WeightFileError):
    """The pickle inside a weight file asks for something a plain state dict never needs."""


@dataclass(frozen=True)
class _StorageType:
    """Stands in for `torch.FloatStorage` and friends: only the element type matters here."""

    name: str
    dtype: np.dtype


@dataclass(frozen=True)
class _StorageRef:
    """A storage the pickle points at; its bytes are read after the pickle (legacy) or beside it (zip)."""

    key: str
    dtype: np.dtype
    numel: int
    # Very old files pickle views into a storage: (offset, length) in elements within the root storage.
    view: tuple[int, int] | None = None


@dataclass(frozen=True)
class _TensorRef:
    """What `_rebuild_tensor_v2` would have built: a strided window onto a storage."""

    storage: _StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(
    storage: _StorageRef,
    storage_offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    requires_grad: bool = False,
    backward_hooks: object = None,
    metadata: object = None,
) -> _TensorRef:
    if not isinstance(storage, _StorageRef):
        raise WeightFileError(f"a tensor in the file is built from {type(storage).__name__}, not a storage")
    return _TensorRef(storage, int(storage_offset), tuple(map(int, size)), tuple(map(int, stride)))


def _rebuild_parameter(data: _TensorRef, requires_grad: bool = False, backward_hooks: object = None) -> Any:
    # A Parameter is a tensor with a training flag; the flag means nothing to a NumPy array.
    return data


# Every global a state dict of plain tensors may name, and what this reader gives back for it.
_ALLOWED_GLOBALS: dict[tuple[str, str], object] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(name, dtype) for name, dtype in _STORAGE_DTYPES.items()},
}


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the allowed globals and hands storages to a callback."""

    def __init__(self, file: IO[bytes], storage_ref: Any = None) -> None:
        super().__init__(file)
        self._storage_ref = storage_ref

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refused to load the global {module}.{name}: a PyTorch state dict only needs "
                "collections.OrderedDict, torch._utils._rebuild_tensor_v2 and torch.*Storage; "
                "this file may run code when loaded and is not read"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        if self._storage_ref is None:
            raise WeightFileError(f"unexpected reference to external data in the file: {pid!r}")
        return self._storage_ref(pid)


def _restricted_load(file: IO[bytes], storage_ref: Any = None) -> Any:
    try:
        return _RestrictedUnpickler(file, storage_ref).load()
    except (WeightFileError, MemoryError):
        raise
    except Exception as error:
        raise WeightFileError(f"the pickle in the weight file is damaged: {error}") from error


def _storage_type_of(value: object) -> _StorageType:
    if not isinstance(value, _StorageType):
        raise WeightFileError(f"expected a storage type in a storage reference, got {value!r}")
    return value


def _legacy_storage_ref(pid: Any) -> _StorageRef:
    # Legacy: ('storage', storage_type, root_key, location, numel, view_metadata).
    if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
        raise UnsafePickleError(f"refused a persistent reference that is not a storage: {pid!r}")
    _, storage_type, key, _location, numel, view_metadata = pid
    view = None
    if view_metadata is not None:
        _view_key, view_offset, view_size = view_metadata
        view = (int(view_offset), int(view_size))
    return _StorageRef(str(key), _storage_type_of(storage_type).dtype, int(numel), view)


def _zip_storage_ref(pid: Any) -> _StorageRef:
    # Zip: ('storage', storage_type, key, location, numel).
    if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
        raise UnsafePickleError(f"refused a persistent reference that is not a storage: {pid!r}")
    _, storage_type, key, _location, numel = pid
    return _StorageRef(str(key), _storage_type_of(storage_type).dtype, int(numel))


def _tensor_to_array(ref: _TensorRef, storages: dict[str, np.ndarray], name: str) -> np.ndarray:
    """Copy a strided window out of a storage, after checking it stays inside the storage."""
    storage = storages.get(ref.storage.key)
    if storage is None:
        raise WeightFileError(f"tensor {name!r} points at storage {ref.storage.key!r}, which is not in the file")
    if ref.storage.view is not None:
        view_offset, view_size = ref.storage.view
        storage = storage[view_offset : view_offset + view_size]
    if len(ref.shape) != len(ref.stride) or ref.offset < 0 or min((*ref.shape, *ref.stride), default=0) < 0:
        raise WeightFileError(f"tensor {name!r} has an invalid layout {ref.shape} / {ref.stride}")
    if 0 in ref.shape:
        return np.zeros(ref.shape, dtype=storage.dtype)
    last = ref.offset + sum((size - 1) * step for size, step in zip(ref.shape, ref.stride, strict=True))
    if last >= storage.size:
        raise WeightFileError(f"tensor {name!r} reaches past the end of its storage")
    window = np.lib.stride_tricks.as_strided(
        storage[ref.offset :],
        shape=ref.shape,
        strides=tuple(step * storage.itemsize for step in ref.stride),
        writeable=False,
    )
    # Many converted checkpoints keep transposed (non-contiguous) views; the copy makes them plain arrays.
    return np.array(window, order="C", copy=True)


def _materialise(state: Any, storages: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    if not isinstance(state, dict):
        raise WeightFileError(f"expected a state dict (name → tensor), the file holds a {type(state).__name__}")
    arrays: dict[str, np.ndarray] = {}
    for name, value in state.items():
        if not isinstance(value, _TensorRef):
            raise WeightFileError(f"entry {name!r} of the state dict is a {type(value).__name__}, not a tensor")
        arrays[str(name)] = _tensor_to_array(value, storages, str(name))
    return arrays


def _read_exactly(file: IO[bytes], count: int, what: str) -> bytes:
    # Checked against the file's size first, so a forged count cannot make the reader allocate gigabytes.
    remaining = os.fstat(file.fileno()).st_size - file.tell()
    if not 0 <= count <= remaining:
        raise WeightFileError(f"the weight file ends early while reading {what}")
    return file.read(count)


def _read_legacy(file: IO[bytes]) -> dict[str, np.ndarray]:
    if _restricted_load(file) != _LEGACY_MAGIC_NUMBER:
        raise WeightFileError("not a PyTorch weight file (wrong magic number)")
    protocol = _restricted_load(file)
    if protocol != _LEGACY_PROTOCOL_VERSION:
        raise WeightFileError(f"unsupported PyTorch file protocol version {protocol}")
    system_info = _restricted_load(file)
    if not (isinstance(system_info, dict) and system_info.get("little_endian", True)):
        raise WeightFileError("the weight file was written on a big-endian machine, which is not supported")

    refs: dict[str, _StorageRef] = {}

    def remember(pid: Any) -> _StorageRef:
        ref = _legacy_storage_ref(pid)
        refs.setdefault(ref.key, _StorageRef(ref.key, ref.dtype, ref.numel))
        return ref

    state = _restricted_load(file, remember)
    keys = _restricted_load(file)
    if not (isinstance(keys, list) and all(isinstance(key, str) for key in keys)):
        raise WeightFileError("the list of storages after the state dict is damaged")

    storages: dict[str, np.ndarray] = {}
    for key in keys:
        ref = refs.get(key)
        if ref is None:
            raise WeightFileError(f"the file holds storage {key!r}, which no tensor uses")
        (numel,) = struct.unpack("<q", _read_exactly(file, 8, f"the size of storage {key!r}"))
        if numel != ref.numel:
            raise WeightFileError(f"storage {key!r} holds {numel} elements, the pickle says {ref.numel}")
        raw = _read_exactly(file, numel * ref.dtype.itemsize, f"storage {key!r}")
        storages[key] = np.frombuffer(raw, dtype=ref.dtype)
    return _materialise(state, storages)


def _read_zip(archive: zipfile.ZipFile) -> dict[str, np.ndarray]:
    pickles = [name for name in archive.namelist() if name.endswith("/data.pkl") and name.count("/") == 1]
    if len(pickles) != 1:
        raise WeightFileError("not a PyTorch weight file (the zip has no single <archive>/data.pkl)")
    prefix = pickles[0].removesuffix("data.pkl")
    byteorder_entry = prefix + "byteorder"
    if byteorder_entry in archive.namelist() and archive.read(byteorder_entry).strip() != b"little":
        raise WeightFileError("the weight file was written on a big-endian machine, which is not supported")

    refs: dict[str, _StorageRef] = {}

    def remember(pid: Any) -> _StorageRef:
        ref = _zip_storage_ref(pid)
        refs.setdefault(ref.key, ref)
        return ref

    state = _restricted_load(io.BytesIO(archive.read(pickles[0])), remember)
    storages: dict[str, np.ndarray] = {}
    for key, ref in refs.items():
        try:
            entry = archive.getinfo(f"{prefix}data/{key}")
        except KeyError:
            raise WeightFileError(f"storage {key!r} is missing from the weight file") from None
        # Checked before reading, so a forged entry cannot inflate into more than the pickle announced.
        if entry.file_size != ref.numel * ref.dtype.itemsize:
            raise WeightFileError(f"storage {key!r} has {entry.file_size} bytes, expected {ref.numel} elements")
        storages[key] = np.frombuffer(archive.read(entry), dtype=ref.dtype)
    return _materialise(state, storages)


def read_state_dict(path: Path) -> dict[str, np.ndarray]:
    """Read a PyTorch state dict file into `{name: array}`, in the file's order, refusing unsafe pickles.

    Raises `UnsafePickleError` when the pickle names any global outside the short allowed list, and
    `WeightFileError` when the file is missing, truncated or not a state dict of tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightFileError(f"weight file not found: {path}")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return _read_zip(archive)
    with path.open("rb") as file:
        return _read_legacy(file)
