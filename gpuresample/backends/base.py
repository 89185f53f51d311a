"""The narrow protocol every backend implements.

A backend does arithmetic only: it receives a block of input rows and the sampling
tables for a block of output rows (see :mod:`gpuresample.tables`) and fills an
output block. It never computes geometry and never decides chunking; the planner
asks it about memory (:meth:`Backend.scratch_bytes` per block, :meth:`Backend.prepass_bytes`
per plan; both count its threads' scratch) and the executor calls :meth:`Backend.resample_block` once per slab.
"""

from __future__ import annotations

import numpy as np

from .. import _cupy
from .._cupy import BackendUnavailable
from ..spline_states import prepass_held_and_peak
from ..tables import SamplingTables


class Backend:
    """Base class: name, availability, the planner's questions and the block operation."""

    name = "?"
    #: True when the backend computes on a GPU (host data is then staged through it).
    on_device = False

    def unavailable_reason(self) -> str | None:
        """None when this backend can run here, else why not."""
        raise NotImplementedError

    def covers(self, interpolation) -> bool:
        """Whether this backend implements ``interpolation`` (auto dispatch asks)."""
        return True

    def threads(self) -> int:
        """Threads one block runs on (the planner counts per-thread scratch with it)."""
        return 1

    def scratch_bytes(self, tables: SamplingTables, in_dtype, out_dtype) -> int:
        """Bytes :meth:`resample_block` allocates for one block besides its input and output."""
        return 0

    def prepass_bytes(self, tables: SamplingTables, in_dtype, input_shape, staged: bool = False,
                      rows_in_place: bool = False) -> tuple:
        """``(held, peak)``: bytes of this backend's memory that a chunked run's plan-wide work
        (the cubic prefilter's pre-pass) keeps while each slab runs, and takes at most at once
        between slabs; ``(0, 0)`` when none (the default). ``staged``: host data on a device
        backend; ``rows_in_place``: the pre-pass reads the input's rows where they are."""
        return 0, 0

    def free_bytes(self) -> int | None:
        """Free memory where this backend computes, or None when unknown."""
        return None

    def smooth(self, block, tables: SamplingTables, work):
        """The anti-aliasing this backend applies to a block before sampling it: the Gaussian
        tables of :func:`~gpuresample.tables.smoothing_passes` through its own separable passes
        (margins cropped), as an array of its kind in the working dtype ``work``; the block
        itself when no axis is smoothed. The cubic pre-pass smooths with it, so its states
        come from the very values the backend's slabs filter."""
        raise NotImplementedError

    def resample_block(self, source, tables: SamplingTables, out) -> None:
        """Fill ``out`` (shape ``tables.output_shape``) from ``source``.

        ``source`` holds input rows ``tables.input_rows`` along axis 0 and whole
        other axes. Both arrays are of this backend's kind.
        """
        raise NotImplementedError

    def staged_pipeline(self, source, out):
        """An object running slabs of host ``source`` into host ``out`` with copies and
        compute overlapped (``run(tables, slabs, on_slab_done)``, ``done_until``), or None:
        then the executor stages slabs one after another."""
        return None

    def empty(self, shape, dtype):
        """A new uninitialised array of this backend's kind."""
        return np.empty(shape, dtype)

    def to_host(self, array) -> np.ndarray:
        """A NumPy copy (or view) of an array of this backend's kind."""
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

    def prepass_bytes(self, tables: SamplingTables, in_dtype, input_shape, staged: bool = False,
                      rows_in_place: bool = False) -> tuple:
        """Data on the device (not anti-aliased) has its pre-pass run there as whole-array
        operations; staged data, or smoothed blocks brought back, run it on the host (outside
        the device's budget)."""
        if staged or any(t.sigma > 0 for t in getattr(tables, "axes", ())):
            return 0, 0
        return prepass_held_and_peak(tables, in_dtype, input_shape, 1, in_place=True, whole_arrays=True)

    def staged_pipeline(self, source, out):
        """Pinned buffers and two streams: copies overlap compute (see ``_staging``)."""
        from ._staging import StagedPipeline
        return StagedPipeline(self, source, out)

    def empty(self, shape, dtype):
        return _cupy.import_cupy().empty(shape, dtype)

    def to_host(self, array) -> np.ndarray:
        return array.get() if hasattr(array, "get") else np.asarray(array)

    def from_host(self, array):
        return _cupy.import_cupy().asarray(array)


def free_device_bytes() -> int | None:
    """Free memory on the current device, counting what CuPy's pool holds but does not use."""
    try:
        cupy = _cupy.import_cupy()
    except BackendUnavailable:
        return None
    free, _ = cupy.cuda.runtime.memGetInfo()
    return int(free) + int(cupy.get_default_memory_pool().free_bytes())


__all__ = ["Backend", "BackendUnavailable", "DeviceBackend", "free_device_bytes"]
