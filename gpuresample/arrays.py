"""Array kinds: NumPy, CuPy, DLPack tensors (torch, ...), and host array-likes.

Data is brought to the kind a backend computes on (NumPy for the CPU, CuPy for the
GPU) without copies where DLPack allows, and results go back to the caller's kind.
CuPy is imported only when data is on a GPU or ``device="cuda"`` is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from . import _cupy
from ._cupy import _module_root, is_cupy

#: ``__dlpack_device__()`` device types (DLPack's DLDeviceType).
DLPACK_CPU = 1
DLPACK_CUDA = 2
DEVICE_NAMES = (None, "cpu", "cuda")


@dataclass
class Prepared:
    """Data in the kind a backend computes on, and how to give a result back."""

    array: Any               # numpy.ndarray, cupy.ndarray, or a host array-like (sliced lazily)
    on_gpu: bool
    restore: Callable        # result (numpy or cupy) -> the caller's kind
    compute_on_gpu: bool = False  # host data to be staged through the GPU (device="cuda")

    def __post_init__(self):
        self.compute_on_gpu = self.compute_on_gpu or self.on_gpu


def prepare(data, device=None) -> Prepared:
    """Bring ``data`` to NumPy or CuPy (zero-copy where possible).

    ``device=None`` keeps data where it is; ``"cuda"`` computes host data on the GPU,
    staged slab by slab (results come back to the host kind); ``"cpu"`` moves GPU data
    to the host.
    """
    if device not in DEVICE_NAMES:
        raise ValueError(f"device={device!r} is not a device; allowed: None, 'cpu', 'cuda'")
    refuse_masked(data)
    data = native_order(data)
    if is_cupy(data):
        if device == "cpu":
            return Prepared(data.get(), False, lambda r: r)
        return Prepared(data, True, lambda r: r)
    if isinstance(data, np.ndarray):
        if device == "cuda":  # stays on the host; slabs are staged through the device
            _cupy.import_cupy()
            return Prepared(data, False, lambda r: r, compute_on_gpu=True)
        return Prepared(data, False, lambda r: r)
    if hasattr(data, "__dlpack__") and hasattr(data, "__dlpack_device__"):
        return _prepare_dlpack(data, device)
    if hasattr(data, "shape") and hasattr(data, "dtype") and hasattr(data, "__getitem__"):
        if device == "cuda":
            _cupy.import_cupy()
            return Prepared(data, False, lambda r: r, compute_on_gpu=True)
        return Prepared(data, False, lambda r: r)
    raise TypeError(
        f"data must be a NumPy or CuPy array, a DLPack tensor (torch, ...) or an array-like "
        f"with shape, dtype and slicing; got {type(data).__name__}")


def _prepare_dlpack(data, device) -> Prepared:
    module = __import__(_module_root(data))
    from_dlpack = getattr(module, "from_dlpack", None)
    if from_dlpack is None and _module_root(data) == "torch":
        from torch.utils.dlpack import from_dlpack
    if from_dlpack is None:
        raise TypeError(f"cannot return results as {type(data).__name__}: its module has no from_dlpack")
    device_type = int(data.__dlpack_device__()[0])
    if device_type == DLPACK_CUDA and device != "cpu":
        cupy = _cupy.import_cupy()
        array = cupy.from_dlpack(data)
        return Prepared(array, True, lambda r: from_dlpack(r if is_cupy(r) else cupy.asarray(r)))
    if device_type == DLPACK_CUDA:  # device="cpu"
        cupy = _cupy.import_cupy()
        array = cupy.from_dlpack(data).get()
        return Prepared(array, False, lambda r: from_dlpack(r))
    if device_type != DLPACK_CPU:
        raise TypeError(f"{type(data).__name__} lives on DLPack device type {device_type}; "
                        "gpuresample takes CPU and CUDA data")
    host = _host_from_dlpack(data)
    if device == "cuda":
        cupy = _cupy.import_cupy()
        return Prepared(cupy.asarray(host), True, lambda r: from_dlpack(r.get() if is_cupy(r) else r))
    return Prepared(host, False, lambda r: from_dlpack(r))


def _host_from_dlpack(data) -> np.ndarray:
    if _module_root(data) == "torch" and getattr(data, "requires_grad", False):
        data = data.detach()
    try:
        return np.from_dlpack(data)
    except (BufferError, TypeError, RuntimeError):
        return np.asarray(data)  # e.g. torch bool tensors, which NumPy's DLPack import refuses


def refuse_masked(data, name: str = "data") -> None:
    """``TypeError`` for a ``numpy.ma.MaskedArray``: its mask would be silently dropped."""
    if isinstance(data, np.ma.MaskedArray):
        raise TypeError(
            f"{name} is a numpy.ma.MaskedArray; resampling would drop its mask. Pass "
            f"{name}.filled(value) (e.g. .filled(0), or .filled(np.nan) with a float dtype), and resample "
            "the mask itself (numpy.ma.getmaskarray) as a mask if you need it")


class NativeOrder:
    """A host array-like whose dtype has the other byte order (``>f4``), read in native order.

    Each read converts only the rows asked for, so a big-endian memmap (e.g. a NIfTI file
    nibabel maps) streams slab by slab without a whole converted copy.
    """

    def __init__(self, array):
        from ._validate import native
        self.array = array
        self.dtype = native(array.dtype)
        self.shape = tuple(array.shape)
        self.ndim = len(self.shape)

    def __getitem__(self, key):
        return np.asarray(self.array[key]).astype(self.dtype)

    def __array__(self, dtype=None, copy=None):
        """The whole array, converted (``np.asarray`` of this object)."""
        return np.asarray(self.array).astype(self.dtype if dtype is None else dtype)


def native_order(data):
    """``data`` in native byte order: NumPy arrays converted once, memmaps and array-likes per read."""
    dtype = getattr(data, "dtype", None)
    if not isinstance(dtype, np.dtype) or dtype.byteorder in ("=", "|") or is_cupy(data):
        return data
    from ._validate import native
    if isinstance(data, np.ndarray) and not isinstance(data, np.memmap):
        return data.astype(native(dtype))
    if hasattr(data, "shape") and hasattr(data, "__getitem__"):
        return NativeOrder(data)
    return data


def read_rows(array, start: int, stop: int, on_gpu: bool):
    """Rows ``[start, stop)`` along axis 0 as NumPy (host) or CuPy (GPU).

    What the read returns is checked against the rows asked for and ``array.shape``: an
    array-like that returns fewer (or other) rows is an error, never read out of bounds.
    """
    block = array[start:stop]
    if not (on_gpu or isinstance(block, np.ndarray)):
        block = np.asarray(block)
    check_rows(block, array, start, stop)
    return block


def check_rows(block, array, start: int, stop: int) -> None:
    """``ValueError`` unless ``block`` has the shape of rows ``[start, stop)`` of ``array``."""
    expected = (stop - start,) + tuple(array.shape[1:])
    if tuple(block.shape) != expected:
        raise ValueError(
            f"reading rows {start}:{stop} of the data ({type(array).__name__} of shape {tuple(array.shape)}) "
            f"returned shape {tuple(block.shape)}, expected {expected}: its __getitem__ does not match its "
            "shape")
