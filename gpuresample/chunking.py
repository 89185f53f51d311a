"""The chunked planner and the executor that runs a plan on any backend.

The planner is pure Python: from the sampling tables, the dtypes and a memory
budget it decides the slabs along axis 0 (output rows ``[start, stop)``) and the
peak memory each needs. The executor runs the slabs in order on a backend,
writing each into the output, and on running out of memory replans the rest with
half the budget and resumes from the first unfinished slab.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np

from .arrays import read_rows
from .tables import SamplingTables

#: Fraction of the device's free memory the planner leaves unused: room for the
#: CUDA context, CuPy's memory pool rounding and other users of the card.
DEVICE_SAFETY_FRACTION = 0.15
#: Slab budget when streaming to or from a host array-like (Zarr, memmap) on the CPU.
DEFAULT_STREAM_BYTES = 1 << 30
#: How many times a slab that ran out of memory is retried with half the budget.
MAX_OOM_RETRIES = 4
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


def slab_bytes(tables: SamplingTables, in_dtype, out_dtype, input_shape, threads: int = 1,
               staged: bool = False, scratch=None) -> int:
    """Peak bytes one block needs: input block, output block and every scratch buffer.

    ``tables`` are the block's tables (``SamplingTables.rows``). ``staged`` counts
    double-buffered input and output blocks (a device backend fed from the host).
    ``scratch(tables, in_dtype, out_dtype)``, when given, is the backend's own count of
    its scratch bytes (GPU backends); otherwise the CPU backend's buffers are counted.
    """
    in_dtype, out_dtype = np.dtype(in_dtype), np.dtype(out_dtype)
    first, stop = tables.input_rows
    other_in = math.prod(input_shape[1:])
    in_values = (stop - first) * other_in
    out_values = math.prod(tables.output_shape)
    in_block = in_values * in_dtype.itemsize
    out_block = out_values * out_dtype.itemsize
    if staged:
        in_block *= DEVICE_BUFFERS
        out_block *= DEVICE_BUFFERS
    if scratch is not None:
        return in_block + out_block + (DEVICE_BUFFERS if staged else 1) * scratch(tables, in_dtype, out_dtype)
    return in_block + out_block + _cpu_scratch_bytes(tables, in_dtype, out_dtype, threads)


def _cpu_scratch_bytes(tables, in_dtype, out_dtype, threads) -> int:
    """The CPU backend's own count of the buffers it allocates for a block."""
    from .backends.cpu import scratch_bytes  # imports Numba: only when a plan needs it

    return scratch_bytes(tables, in_dtype, out_dtype, threads)


def plan_slabs(tables: SamplingTables, in_dtype, out_dtype, input_shape, budget: int | None,
               threads: int = 1, staged: bool = False, first_row: int = 0, scratch=None) -> Chunking:
    """Split output rows ``[first_row, n_out)`` along axis 0 into slabs within ``budget``.

    Every slab has the same number of output rows (the last may be shorter); that
    number is the largest whose every slab fits. Raises ``MemoryError`` when even
    one output row does not fit.
    """
    n_out = tables.axes[0].n_out

    def peak_for(rows_per_slab):
        slabs = tuple((s, min(s + rows_per_slab, n_out)) for s in range(first_row, n_out, rows_per_slab))
        whole = len(slabs) == 1 and first_row == 0
        peak = max(
            slab_bytes(tables if whole else tables.rows(a, b), in_dtype, out_dtype, input_shape, threads, staged,
                       scratch)
            for a, b in slabs)
        return slabs, peak

    slabs, peak = peak_for(n_out - first_row)
    if budget is None or peak <= budget:
        return Chunking(slabs, peak, budget)
    one_slabs, one_peak = peak_for(1)
    if one_peak > budget:
        raise MemoryError(
            f"max_memory/free memory of {_fmt_bytes(budget)} is too small: even one output row along "
            f"axis 0 needs {_fmt_bytes(one_peak)}; raise max_memory or free device memory")
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


def _fmt_bytes(n) -> str:
    from .display import format_bytes
    return format_bytes(n)


class _Progress:
    """tqdm when installed, else one line per slab on stderr; nothing when disabled."""

    def __init__(self, enabled: bool, total: int, desc: str):
        self.bar = None
        self.enabled = enabled
        self.total = total
        self.done = 0
        self.desc = desc
        if enabled:
            try:
                from tqdm.auto import tqdm
                self.bar = tqdm(total=total, desc=desc, unit="slab")
            except ImportError:
                pass

    def update(self):
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        elif self.enabled:
            print(f"{self.desc}: slab {self.done}/{self.total}", file=sys.stderr, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def execute(backend, source, on_gpu: bool, tables: SamplingTables, chunking: Chunking, out,
            in_dtype, input_shape, threads: int = 1, staged: bool = False,
            progress: bool = False, desc: str = "resample", scratch=None) -> Chunking:
    """Run ``chunking`` on ``backend``, writing every slab into ``out``.

    Host data on a device backend that offers a pipeline (``backend.staged_pipeline``)
    runs with copies and compute overlapped; otherwise slabs run one after another.
    On ``MemoryError`` (NumPy's, or CuPy's ``OutOfMemoryError``, which derives from
    it) the remaining rows are replanned with half the failing slab's size and the run
    resumes from the first unfinished slab; after ``MAX_OOM_RETRIES`` a ``MemoryError``
    says how much was needed. ``out`` is undefined after an exception.
    Returns the chunking actually used last.
    """
    slabs = list(chunking.slabs)
    budget = chunking.budget if chunking.budget is not None else chunking.peak_bytes
    retries = 0
    bar = _Progress(progress, len(slabs), desc)
    pipeline = backend.staged_pipeline(source, out) if staged and not on_gpu else None
    try:
        while slabs:
            done = [slabs[0][0]]  # output rows [.., done[0]) are written
            try:
                if pipeline is not None:
                    _run_pipelined(pipeline, tables, slabs, bar, done)
                else:
                    _run_serial(backend, source, on_gpu, tables, slabs, out, bar, done)
                slabs = []
            except MemoryError as exc:
                retries += 1
                start = done[0]
                stop = next(b for a, b in slabs if a <= start < b)
                failed = slab_bytes(_rows(tables, start, stop), in_dtype, out.dtype, input_shape, threads, staged,
                                    scratch)
                budget = min(budget, failed) // 2
                give_up = MemoryError(
                    f"out of memory on backend {backend.name!r} after {retries} retries with smaller "
                    f"slabs; the slab at output rows {start}:{stop} needed about {_fmt_bytes(failed)}: {exc}")
                if retries > MAX_OOM_RETRIES:
                    raise give_up from exc
                chunking = None
                for attempt in (budget, failed - 1):  # half the size, else anything smaller
                    try:
                        chunking = plan_slabs(tables, in_dtype, out.dtype, input_shape, attempt, threads,
                                              staged, first_row=start, scratch=scratch)
                        break
                    except MemoryError:
                        continue
                if chunking is None:
                    raise give_up from exc
                budget = chunking.budget
                remaining = sum(1 for a, _ in slabs if a >= start)
                slabs = list(chunking.slabs)
                bar.total += len(slabs) - remaining
    finally:
        bar.close()
    return chunking


def _rows(tables: SamplingTables, start: int, stop: int) -> SamplingTables:
    return tables if (start, stop) == (0, tables.axes[0].n_out) else tables.rows(start, stop)


def _run_serial(backend, source, on_gpu, tables, slabs, out, bar, done) -> None:
    for start, stop in slabs:
        run_block(backend, source, on_gpu, _rows(tables, start, stop), out, start, stop)
        done[0] = stop
        bar.update()


def _run_pipelined(pipeline, tables, slabs, bar, done) -> None:
    try:
        pipeline.run(tables, slabs, on_slab_done=bar.update)
    finally:
        if pipeline.done_until is not None:
            done[0] = pipeline.done_until


def run_block(backend, source, on_gpu, tables, out, start, stop) -> None:
    """One slab: read its input rows, compute, and write output rows ``[start, stop)``.

    Host data on a device backend is staged: the block is copied to the device and
    the result back into ``out``.
    """
    first, last = tables.input_rows
    block = read_rows(source, first, last, on_gpu)
    target = out[start:stop]
    if backend.on_device and not on_gpu:
        block = backend.from_host(block)
    elif _writable_in_place(backend, out, target):
        backend.resample_block(block, tables, target if on_gpu else np.asarray(target))  # memmap: in place
        return
    result = backend.empty(tables.output_shape, out.dtype)
    backend.resample_block(block, tables, result)
    out[start:stop] = result if _is_device_array(out) else backend.to_host(result)


def _writable_in_place(backend, out, target) -> bool:
    """Whether the backend can write straight into this slab of ``out``."""
    if backend.on_device:
        return _is_device_array(out) and target.flags.c_contiguous
    return isinstance(out, np.ndarray) and target.flags.c_contiguous


def _is_device_array(array) -> bool:
    return hasattr(array, "__cuda_array_interface__")
