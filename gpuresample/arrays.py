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


def read_rows(array, start: int, stop: int, on_gpu: bool):
    """Rows ``[start, stop)`` along axis 0 as NumPy (host) or CuPy (GPU)."""
    block = array[start:stop]
    if on_gpu or isinstance(block, np.ndarray):
        return block
    return np.asarray(block)
