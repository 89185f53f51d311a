"""CuPy, imported only when needed, and the error saying why a backend cannot run.

The lowest layer of the package: it imports nothing from gpuresample, so the array
kinds (:mod:`gpuresample.arrays`) and the backends can both use it without importing
each other. Importing gpuresample never imports CuPy; :func:`import_cupy` does, on
first use, and reports a missing CuPy or device as :class:`BackendUnavailable`.
"""

from __future__ import annotations


class BackendUnavailable(RuntimeError):
    """A named backend cannot run here; the message says why."""


def _module_root(obj) -> str:
    return type(obj).__module__.split(".")[0]


def is_cupy(obj) -> bool:
    """Whether ``obj`` is a CuPy array (checked without importing CuPy)."""
    return _module_root(obj) == "cupy" and hasattr(obj, "__cuda_array_interface__")


def is_device_array(obj) -> bool:
    """Whether ``obj`` lives in GPU memory (CUDA array interface: CuPy, Numba, torch CUDA...)."""
    return hasattr(obj, "__cuda_array_interface__")


def import_cupy():
    """CuPy with a usable device, else ``BackendUnavailable`` saying why."""
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


__all__ = ["BackendUnavailable", "import_cupy", "is_cupy", "is_device_array"]
