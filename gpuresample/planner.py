"""The chunked planner: which output slabs run, and how much memory each needs.

Pure Python over the sampling tables: from the tables, the dtypes, the backend's
answers about memory (:meth:`~gpuresample.backends.base.Backend.scratch_bytes` per block,
:meth:`~gpuresample.backends.base.Backend.prepass_bytes` per plan, each counting its
threads' scratch) and a memory budget, :func:`plan_slabs` decides the slabs along axis 0 (output rows
``[start, stop)``) and the peak memory they need. It never imports a backend: the
backend is an argument. Running a plan is :mod:`gpuresample.executor`'s job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .display import format_bytes
from .tables import CUBIC_PAD, SamplingTables, gaussian_radius

#: Fraction of the device's free memory the planner leaves unused: room for the
#: CUDA context, CuPy's memory pool rounding and other users of the card.
DEVICE_SAFETY_FRACTION = 0.15
#: Slab budget when streaming to or from a host array-like (Zarr, memmap) on the CPU.
DEFAULT_STREAM_BYTES = 1 << 30
#: Device backends stage host data in double buffers (copy-in, compute, copy-out overlap).
DEVICE_BUFFERS = 2
#: Staged runs (host data through a device) hold their slabs' pinned copies on the host:
#: at most this fraction of the input plus output bytes ...
HOST_STAGING_FRACTION = 0.05
#: ... or this many bytes, whichever is larger (docs/guide/chunked.md, "Host memory").
HOST_STAGING_MIN_BYTES = 2 << 30
#: Rows of cubic taps around a coefficient (a slab's table also depends on where it is
#: when its taps reach the edge pads).
CUBIC_TAP_REACH = 4


def host_staging_limit(input_bytes: int, output_bytes: int) -> int:
    """Most host bytes a staged run's pinned buffers may take: max(2 GiB, 5% of input + output)."""
    return max(HOST_STAGING_MIN_BYTES, int(HOST_STAGING_FRACTION * (input_bytes + output_bytes)))


def pinned_bytes(tables: SamplingTables, in_dtype, out_dtype, input_shape) -> int:
    """Host bytes a staged slab's pinned buffers take: ``DEVICE_BUFFERS`` input and output blocks."""
    first, stop = tables.input_rows
    in_block = (stop - first) * math.prod(input_shape[1:]) * np.dtype(in_dtype).itemsize
    return DEVICE_BUFFERS * (in_block + math.prod(tables.output_shape) * np.dtype(out_dtype).itemsize)


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
               staged: bool = False, first_row: int = 0, rows_in_place: bool = False) -> Chunking:
    """Split output rows ``[first_row, n_out)`` along axis 0 into slabs within ``budget``.

    Every slab has the same number of output rows (the last may be shorter); that
    number is the largest whose every slab fits. Staged slabs must also keep their
    pinned host buffers within :func:`host_staging_limit`. ``rows_in_place``: a cubic
    pre-pass reads the input's rows where they are (no row buffers). Raises ``MemoryError``
    when even one output row does not fit, naming the smallest budget that does.
    """
    n_out = tables.output_shape[0]
    per_axis = isinstance(tables, SamplingTables)  # else an oblique target's matrix (onto.AffineSampling)
    host_limit = None
    if staged:
        host_limit = host_staging_limit(math.prod(input_shape) * np.dtype(in_dtype).itemsize,
                                        math.prod(tables.output_shape) * np.dtype(out_dtype).itemsize)

    def peak_for(rows_per_slab):
        slabs = tuple((s, min(s + rows_per_slab, n_out)) for s in range(first_row, n_out, rows_per_slab))
        distinct = _distinct_slabs(tables.axes[0], slabs) if per_axis else slabs
        per_slab = [tables.slab(a, b) for a, b in distinct]
        peak = max(slab_bytes(t, in_dtype, out_dtype, input_shape, backend, staged) for t in per_slab)
        whole = len(slabs) == 1 and first_row == 0
        if not whole:  # plan-wide work (the cubic pre-pass): held while each slab runs, or alone
            held, alone = backend.prepass_bytes(tables, in_dtype, input_shape, staged, rows_in_place)
            peak = max(peak + held, alone)
        if host_limit is not None and max(pinned_bytes(t, in_dtype, out_dtype, input_shape)
                                          for t in per_slab) > host_limit:
            return slabs, math.inf  # pinned host buffers beyond the host limit: never fits
        return slabs, peak

    slabs, peak = peak_for(n_out - first_row)
    if host_limit is not None and budget is None and peak == math.inf:
        budget = slab_bytes(tables, in_dtype, out_dtype, input_shape, backend, staged)
    if budget is None or peak <= budget:
        return Chunking(slabs, peak, budget)
    # The largest fitting power of two first, then the largest fitting row count above it.
    lo, best = None, None
    for rows in (1 << k for k in range((n_out - first_row).bit_length())):
        if rows >= n_out - first_row:
            break
        candidate = peak_for(rows)
        if candidate[1] <= budget:
            lo, best = rows, candidate
    if best is None:
        one_peak = peak_for(1)[1]
        if one_peak == math.inf:
            raise MemoryError(
                f"one output row's pinned host buffers exceed the staging limit of {format_bytes(host_limit)}")
        raise MemoryError(
            f"max_memory/free memory of {format_bytes(budget)} is too small: even one output row along "
            f"axis 0 needs at least {format_bytes(one_peak)} ({one_peak} bytes); raise max_memory or free "
            "device memory")
    hi = min(2 * lo, n_out - first_row)  # lo fits, hi does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        candidate = peak_for(mid)
        if candidate[1] <= budget:
            lo, best = mid, candidate
        else:
            hi = mid
    return Chunking(best[0], best[1], budget)


#: Slab counts up to which every slab is measured; beyond, one slab per kind (see
#: :func:`_distinct_slabs`), so planning is not O(output rows) Python calls per try.
MEASURE_EVERY_SLAB = 64


def _edge_rows(table) -> int:
    """Rows from either end of a table's index range within which a slab's table also depends
    on where it is (cubic edge pads, anti-aliasing margins clipped at the volume's edge).

    Elsewhere a slab's table is fixed by its index pattern relative to its lowest row.
    """
    return CUBIC_PAD + CUBIC_TAP_REACH + gaussian_radius(table.sigma) + 1


def _distinct_slabs(table, slabs) -> list:
    """One slab of each kind among ``slabs``: slabs of one kind get equal tables up to an
    offset of input rows, so they need the same bytes and one stands for all.

    A kind is the slab's row count and index pattern relative to its lowest row, plus that
    lowest and highest row when the slab lies within :func:`_edge_rows` of either end.
    ``tests/test_robustness.py`` checks the slabs chosen against measuring every slab.
    """
    if len(slabs) <= MEASURE_EVERY_SLAB:
        return list(slabs)
    rows = slabs[0][1] - slabs[0][0]
    full = [slab for slab in slabs if slab[1] - slab[0] == rows]
    first = full[0][0]
    index = table.index[first:first + len(full) * rows].reshape(len(full), rows * table.taps)
    low, high = index.min(axis=1), index.max(axis=1)
    edge = _edge_rows(table)
    near = (low < edge) | (high > table.index.max() - edge)
    keys = np.concatenate([np.where(near, low, -1)[:, None], np.where(near, high, -1)[:, None],
                           index - low[:, None]], axis=1)
    _, representatives = np.unique(keys, axis=0, return_index=True)
    return [full[k] for k in sorted(representatives)] + [slab for slab in slabs if slab[1] - slab[0] != rows]


__all__ = ["Chunking", "slab_bytes", "plan_slabs", "DEVICE_SAFETY_FRACTION", "DEFAULT_STREAM_BYTES",
           "DEVICE_BUFFERS", "host_staging_limit", "pinned_bytes"]
