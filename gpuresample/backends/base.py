"""The narrow protocol every backend implements, and the helpers they share.

A backend does arithmetic only: it receives a block of input rows and the sampling
tables for a block of output rows (see :mod:`gpuresample.tables`) and fills an
output block. It never computes geometry and never decides chunking.
"""

from __future__ import annotations

import numpy as np

from ..interpolation import Interpolation, working_dtype
from ..tables import AxisTable, SamplingTables, as_3d


class BackendUnavailable(RuntimeError):
    """A named backend cannot run here; the message says why."""


class Backend:
    """Base class: name, availability and the block operation."""

    name = "?"
    #: True when the backend computes on a GPU.
    on_device = False

    def unavailable_reason(self) -> str | None:
        """None when this backend can run here, else why not."""
        raise NotImplementedError

    def resample_block(self, source, tables: SamplingTables, out) -> None:
        """Fill ``out`` (shape ``tables.output_shape``) from ``source``.

        ``source`` holds input rows ``tables.input_rows`` along axis 0 and whole
        other axes. Both arrays are of this backend's kind.
        """
        raise NotImplementedError

    def free_bytes(self) -> int | None:
        """Free memory where this backend computes, or None when unknown."""
        return None

    def staged_pipeline(self, source, out):
        """An object running slabs of host ``source`` into host ``out`` with copies and
        compute overlapped (``run(tables, slabs, on_slab_done)``, ``done_until``), or None:
        then the executor stages slabs one after another."""
        return None

    def covers(self, interpolation) -> bool:
        """Whether this backend implements ``interpolation`` (auto dispatch asks)."""
        return True

    def empty(self, shape, dtype):
        """A new uninitialised array of this backend's kind."""
        return np.empty(shape, dtype)

    def to_host(self, array) -> np.ndarray:
        """A NumPy copy (or view) of an array of this backend's kind."""
        if hasattr(array, "__cuda_array_interface__"):
            return array.get()
        return np.asarray(array)

    def from_host(self, array):
        """A host block in this backend's kind (copied to the device for GPU backends)."""
        return np.asarray(array)


class DeviceBackend(Backend):
    """What the GPU backends share: CuPy arrays, device memory, the pipelined stager.

    CuPy is imported when an operation needs it, never at import time.
    """

    on_device = True

    def free_bytes(self) -> int | None:
        return free_device_bytes()

    def staged_pipeline(self, source, out):
        """Pinned buffers and two streams: copies overlap compute (see ``_staging``)."""
        from ._staging import StagedPipeline
        return StagedPipeline(self, source, out)

    def empty(self, shape, dtype):
        from ..arrays import import_cupy
        return import_cupy().empty(shape, dtype)

    def to_host(self, array) -> np.ndarray:
        return array.get() if hasattr(array, "get") else np.asarray(array)

    def from_host(self, array):
        import cupy
        return cupy.asarray(array)


def free_device_bytes() -> int | None:
    """Free memory on the current device, counting what CuPy's pool holds but does not use."""
    from ..arrays import import_cupy
    try:
        cupy = import_cupy()
    except BackendUnavailable:
        return None
    free, _ = cupy.cuda.runtime.memGetInfo()
    return int(free) + int(cupy.get_default_memory_pool().free_bytes())


def integer_limits(dtype) -> tuple:
    """``(round_to_int, lo, hi)`` for writing a float result into ``dtype``."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return True, 0.0, 1.0
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return True, float(info.min), float(info.max)
    return False, 0.0, 0.0


def weights_for(table: AxisTable, work) -> np.ndarray:
    """The table's weights in the working dtype (label tables stay float64)."""
    return np.ascontiguousarray(table.weight, dtype=work)


def uses_label_arithmetic(tables: SamplingTables) -> bool:
    return tables.interpolation is Interpolation.LABEL


__all__ = [
    "Backend", "BackendUnavailable", "DeviceBackend", "free_device_bytes", "as_3d", "integer_limits", "weights_for",
    "working_dtype", "uses_label_arithmetic",
]
