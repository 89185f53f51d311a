"""The chunked planner: which output slabs run, and how much memory each needs.

Pure Python over the sampling tables: from the tables, the dtypes, the backend's
answers to two questions (:meth:`~gpuresample.backends.base.Backend.threads` is
folded into its :meth:`~gpuresample.backends.base.Backend.scratch_bytes`) and a
memory budget, :func:`plan_slabs` decides the slabs along axis 0 (output rows
``[start, stop)``) and the peak memory they need. It never imports a backend: the
backend is an argument. Running a plan is :mod:`gpuresample.executor`'s job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .display import format_bytes
from .tables import SamplingTables

#: Fraction of the device's free memory the planner leaves unused: room for the
#: CUDA context, CuPy's memory pool rounding and other users of the card.
DEVICE_SAFETY_FRACTION = 0.15
#: Slab budget when streaming to or from a host array-like (Zarr, memmap) on the CPU.
DEFAULT_STREAM_BYTES = 1 << 30
#: Device backends stage host data in double buffers (copy-in, compute, copy-out overlap).
DEVICE_BUFFERS = 2


@dataclass(frozen=True)
class Chunking:
    """Slabs along axis 0 and the memory they need.

    Attributes
    ----------
    slabs : tuple of (start, stop)
        Output rows of each slab, in order, covering the output.
    peak_bytes : int
        The most memory any slab needs at once (input block, output block, scratch).
    budget : int or None
        The budget planned against (None: no limit).
    """

    slabs: tuple
    peak_bytes: int
    budget: int | None

    @property
    def count(self) -> int:
        return len(self.slabs)


def slab_bytes(tables: SamplingTables, in_dtype, out_dtype, input_shape, backend, staged: bool = False) -> int:
    """Peak bytes one block needs: input block, output block and the backend's scratch.

    ``tables`` are the block's tables (``SamplingTables.slab``). ``staged`` counts
    double-buffered input, output and scratch (a device backend fed from the host).
    """
    in_dtype, out_dtype = np.dtype(in_dtype), np.dtype(out_dtype)
    first, stop = tables.input_rows
    in_block = (stop - first) * math.prod(input_shape[1:]) * in_dtype.itemsize
    out_block = math.prod(tables.output_shape) * out_dtype.itemsize
    scratch = backend.scratch_bytes(tables, in_dtype, out_dtype)
    copies = DEVICE_BUFFERS if staged else 1
    return copies * (in_block + out_block + scratch)


def plan_slabs(tables: SamplingTables, in_dtype, out_dtype, input_shape, budget: int | None, backend,
               staged: bool = False, first_row: int = 0) -> Chunking:
    """Split output rows ``[first_row, n_out)`` along axis 0 into slabs within ``budget``.

    Every slab has the same number of output rows (the last may be shorter); that
    number is the largest whose every slab fits. Raises ``MemoryError`` when even
    one output row does not fit.
    """
    n_out = tables.axes[0].n_out

    def peak_for(rows_per_slab):
        slabs = tuple((s, min(s + rows_per_slab, n_out)) for s in range(first_row, n_out, rows_per_slab))
        peak = max(slab_bytes(tables.slab(a, b), in_dtype, out_dtype, input_shape, backend, staged)
                   for a, b in slabs)
        return slabs, peak

    slabs, peak = peak_for(n_out - first_row)
    if budget is None or peak <= budget:
        return Chunking(slabs, peak, budget)
    one_slabs, one_peak = peak_for(1)
    if one_peak > budget:
        raise MemoryError(
            f"max_memory/free memory of {format_bytes(budget)} is too small: even one output row along "
            f"axis 0 needs {format_bytes(one_peak)}; raise max_memory or free device memory")
    lo, hi = 1, n_out - first_row  # lo fits, hi does not
    best = (one_slabs, one_peak)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        candidate = peak_for(mid)
        if candidate[1] <= budget:
            lo, best = mid, candidate
        else:
            hi = mid
    return Chunking(best[0], best[1], budget)


__all__ = ["Chunking", "slab_bytes", "plan_slabs", "DEVICE_SAFETY_FRACTION", "DEFAULT_STREAM_BYTES",
           "DEVICE_BUFFERS"]
