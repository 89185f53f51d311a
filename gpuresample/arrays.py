"""Array kinds: NumPy, CuPy, DLPack tensors (torch, ...), and host array-likes.

Data is brought to the kind a backend computes on (NumPy for the CPU, CuPy for the
GPU) without copies where DLPack allows, and results go back to the caller's kind.
CuPy is imported only when data is on a GPU or ``device="cuda"`` is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

#: ``__dlpack_device__()`` device types (DLPack's DLDeviceType).
DLPACK_CPU = 1
DLPACK_CUDA = 2
DEVICE_NAMES = (None, "cpu", "cuda")


def _module_root(obj) -> str:
    return type(obj).__module__.split(".")[0]


def is_cupy(obj) -> bool:
    return _module_root(obj) == "cupy" and hasattr(obj, "__cuda_array_interface__")


def import_cupy():
    """CuPy with a usable device, else ``BackendUnavailable`` saying why."""
    from .backends.base import BackendUnavailable

    try:
        import cupy
    except ImportError as exc:
        raise BackendUnavailable(
            "CuPy is not installed (pip install 'gpuresample[cuda12]' or '[cuda13]')") from exc
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDA driver missing or broken
        raise BackendUnavailable(f"CuPy is installed but no CUDA device is usable: {exc}") from exc
    if count < 1:
        raise BackendUnavailable("CuPy is installed but sees no CUDA device")
    return cupy


@dataclass
class Prepared:
    """Data in the kind a backend computes on, and how to give a result back."""

    array: Any               # numpy.ndarray, cupy.ndarray, or a host array-like (sliced lazily)
    on_gpu: bool
    restore: Callable        # result (numpy or cupy) -> the caller's kind
    kind: str                # "numpy", "cupy", "dlpack:<module>", "array-like"
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
            return Prepared(data.get(), False, lambda r: r, "numpy")
        return Prepared(data, True, lambda r: r, "cupy")
    if isinstance(data, np.ndarray):
        if device == "cuda":  # stays on the host; slabs are staged through the device
            import_cupy()
            return Prepared(data, False, lambda r: r, "numpy", compute_on_gpu=True)
        return Prepared(data, False, lambda r: r, "numpy")
    if hasattr(data, "__dlpack__") and hasattr(data, "__dlpack_device__"):
        return _prepare_dlpack(data, device)
    if hasattr(data, "shape") and hasattr(data, "dtype") and hasattr(data, "__getitem__"):
        if device == "cuda":
            import_cupy()
            return Prepared(data, False, lambda r: r, "array-like", compute_on_gpu=True)
        return Prepared(data, False, lambda r: r, "array-like")
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
        cupy = import_cupy()
        array = cupy.from_dlpack(data)
        return Prepared(array, True, lambda r: from_dlpack(r if is_cupy(r) else cupy.asarray(r)),
                        f"dlpack:{module.__name__}")
    if device_type == DLPACK_CUDA:  # device="cpu"
        cupy = import_cupy()
        array = cupy.from_dlpack(data).get()
        return Prepared(array, False, lambda r: from_dlpack(r), f"dlpack:{module.__name__}")
    if device_type != DLPACK_CPU:
        raise TypeError(f"{type(data).__name__} lives on DLPack device type {device_type}; "
                        "gpuresample takes CPU and CUDA data")
    host = _host_from_dlpack(data)
    if device == "cuda":
        cupy = import_cupy()
        return Prepared(cupy.asarray(host), True, lambda r: from_dlpack(r.get() if is_cupy(r) else r),
                        f"dlpack:{module.__name__}")
    return Prepared(host, False, lambda r: from_dlpack(r), f"dlpack:{module.__name__}")


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
