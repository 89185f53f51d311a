"""The executor: runs a planned :class:`~gpuresample.job.Job` slab by slab on its backend.

Each slab's input rows are read, resampled by the backend and written into the
output. Host data on a device backend (``job.staged``) goes through the backend's
pipelined stager when it has one, else slab after slab with copies in between. On
running out of memory the remaining rows are replanned with half the failing slab's
size and the run resumes from the first unfinished slab; the :class:`Execution`
returned says so, and the job (the plan that was shown) is left as it was.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from ._cupy import is_device_array
from ._guards import available_host_bytes, check_output_fits
from .arrays import read_rows
from .display import format_bytes
from .interpolation import working_dtype
from .onto import apply_fill, output_view
from .planner import plan_slabs, slab_bytes
from .spline_states import slab_needs_states
from .tables import SamplingTables

#: How many times a slab that ran out of memory is retried with half the budget.
MAX_OOM_RETRIES = 4


@dataclass(frozen=True)
class Execution:
    """What running a job did.

    Attributes
    ----------
    result : array
        The result in the caller's kind (or the ``out`` given).
    chunkings : tuple of Chunking
        Per channel, the last plan it ran: the job's own, or after running out of memory
        the replan of the rows that remained.
    replans : tuple of str
        One line per out-of-memory replan (empty when the plan ran as shown).
    """

    result: object
    chunkings: tuple
    replans: tuple

    @property
    def replanned(self) -> bool:
        return bool(self.replans)


class Progress:
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

    def add(self, slabs: int) -> None:
        """``slabs`` more slabs than announced (a replan)."""
        self.total += slabs
        if self.bar is not None:
            self.bar.total = self.total
            self.bar.refresh()

    def update(self):
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        elif self.enabled:
            print(f"{self.desc}: slab {self.done}/{self.total}", file=sys.stderr, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def execute(job, progress: bool = False) -> Execution:
    """Run every channel of ``job`` on its backend; returns the result and what ran.

    ``out`` (the job's, else a new array: on the host for staged work, so results
    may exceed device memory) is undefined after an exception.
    """
    out = job.out
    if out is None:  # checked first: a plan of a huge target shows, running it says why it cannot
        on_device = job.backend.on_device and not job.staged
        check_output_fits(job.output_shape, job.out_dtype,
                          job.backend.free_bytes if on_device else available_host_bytes, on_device)
        out = np.empty(job.output_shape, job.out_dtype) if job.staged else job.backend.empty(
            job.output_shape, job.out_dtype)
    array = job.prepared.array
    chunkings, replans = [], []
    for c in range(job.channels):
        src = array if job.channel_axis is None else channel_view(array, job.channel_axis, c)
        dst = out if job.channel_axis is None else channel_view(out, job.channel_axis, c)
        desc = job.name if job.channels == 1 else f"{job.name}[{c}]"
        chunking, lines = _run_channel(job, src, output_view(dst, job.tables), progress, desc)
        apply_fill(dst, job.tables, job.fill)
        chunkings.append(chunking)
        replans += [f"{desc}: {line}" for line in lines]
    result = out if job.out is not None else job.prepared.restore(out)
    return Execution(result, tuple(chunkings), tuple(replans))


def _run_channel(job, source, out, progress: bool, desc: str):
    """One channel through the job's slabs, replanning on ``MemoryError``; returns
    ``(chunking used last, replan notes)``.

    ``MemoryError`` is NumPy's, or CuPy's ``OutOfMemoryError`` (which derives from it).
    After ``MAX_OOM_RETRIES`` a ``MemoryError`` says how much the failing slab needed.
    """
    backend, tables = job.backend, job.tables
    chunking = job.chunking
    slabs = list(chunking.slabs)
    budget = chunking.budget if chunking.budget is not None else chunking.peak_bytes
    retries, notes = 0, []
    bar = Progress(progress, len(slabs), desc)
    pipeline = backend.staged_pipeline(source, out) if job.staged else None
    per_slab = slab_tables(job, source)
    try:
        while slabs:
            done = [slabs[0][0]]  # output rows [.., done[0]) are written
            try:
                if pipeline is not None:
                    _run_pipelined(pipeline, tables, slabs, bar, done, per_slab)
                else:
                    _run_serial(job, source, out, slabs, bar, done, per_slab)
                slabs = []
            except MemoryError as exc:
                retries += 1
                start = done[0]
                stop = next(b for a, b in slabs if a <= start < b)
                failed = slab_bytes(tables.slab(start, stop), job.in_dtype, out.dtype, job.source.shape, backend,
                                    job.staged)
                budget = min(budget, failed) // 2
                give_up = MemoryError(
                    f"out of memory on backend {backend.name!r} after {retries} retries with smaller "
                    f"slabs; the slab at output rows {start}:{stop} needed about {format_bytes(failed)}: {exc}")
                if retries > MAX_OOM_RETRIES:
                    raise give_up from exc
                replanned = None
                for attempt in (budget, failed - 1):  # half the size, else anything smaller
                    try:
                        replanned = plan_slabs(tables, job.in_dtype, out.dtype, job.source.shape, attempt, backend,
                                               job.staged, first_row=start, rows_in_place=job.rows_in_place)
                        break
                    except MemoryError:
                        continue
                if replanned is None:
                    raise give_up from exc
                chunking = replanned
                budget = chunking.budget
                remaining = sum(1 for a, _ in slabs if a >= start)
                slabs = list(chunking.slabs)
                bar.add(len(slabs) - remaining)
                notes.append(f"out of memory at output rows {start}:{stop} ({format_bytes(failed)}); rows "
                             f"{start}: replanned into {len(slabs)} slabs of at most {format_bytes(chunking.peak_bytes)}")
    finally:
        bar.close()
    return chunking, notes


def slab_tables(job, source):
    """``tables_of(start, stop)``: a slab's tables; cubic slabs carry axis 0's prefilter states.

    The states are computed when a slab asks, from checkpoints of one streamed pre-pass over
    ``source`` made at the first such slab (see :mod:`gpuresample.spline_states`), so every
    slab's coefficients equal the whole run's and the memory held does not grow with the slabs.
    """
    from .backends._spline_states import SlabStates

    states = []

    def tables_of(start: int, stop: int):
        tables = job.tables.slab(start, stop)
        if not (isinstance(tables, SamplingTables) and slab_needs_states(tables)):
            return tables
        if not states:
            smooth, to_host = executor_smoothing(job.backend, job.prepared.on_gpu, job.in_dtype)
            states.append(SlabStates(job.tables, source, job.backend.threads(), smooth, to_host))
        return states[0].attach(tables)

    return tables_of


def executor_smoothing(backend, on_gpu: bool, in_dtype):
    """``(smooth, to_host)`` for :func:`states_for_slabs` with ``backend``'s own anti-aliasing.

    The states must come from the very values the backend's slabs filter, so the block
    is smoothed where and as the backend smooths its slabs (:meth:`Backend.smooth`).
    """
    work = working_dtype(in_dtype)

    def smooth(block, block_tables):
        if backend.on_device and not on_gpu:
            block = backend.from_host(np.asarray(block))
        return backend.smooth(block, block_tables, work)

    return smooth, backend.to_host


def _run_serial(job, source, out, slabs, bar, done, per_slab) -> None:
    for start, stop in slabs:  # a slab's tables (and states) are let go before the next slab's are made
        run_slab(job.backend, source, job.prepared.on_gpu, job.staged, per_slab(start, stop), out, start, stop)
        done[0] = stop
        bar.update()


def _run_pipelined(pipeline, tables, slabs, bar, done, per_slab) -> None:
    try:
        pipeline.run(tables, slabs, on_slab_done=bar.update, slab_tables=per_slab)
    finally:
        if pipeline.done_until is not None:
            done[0] = pipeline.done_until


def run_slab(backend, source, on_gpu: bool, staged: bool, tables, out, start: int, stop: int) -> None:
    """One slab: read its input rows, compute, and write output rows ``[start, stop)``.

    ``staged``: host data on a device backend; the block is copied to the device and
    the result back into ``out``.
    """
    first, last = tables.input_rows
    block = read_rows(source, first, last, on_gpu)
    target = out[start:stop]
    if staged:
        block = backend.from_host(block)
    elif _writable_in_place(backend, out, target):
        backend.resample_block(block, tables, target if on_gpu else np.asarray(target))  # memmap: in place
        return
    result = backend.empty(tables.output_shape, out.dtype)
    backend.resample_block(block, tables, result)
    out[start:stop] = result if is_device_array(out) else backend.to_host(result)


def _writable_in_place(backend, out, target) -> bool:
    """Whether the backend can write straight into this slab of ``out``."""
    if backend.on_device:
        return is_device_array(out) and target.flags.c_contiguous
    return isinstance(out, np.ndarray) and target.flags.c_contiguous


def channel_view(array, axis: int, index: int):
    """Channel ``index`` along ``axis``: a view of NumPy/CuPy arrays, a lazy slice of array-likes."""
    if hasattr(array, "ndim") and not isinstance(array, np.ndarray) and not is_device_array(array):
        key = [slice(None)] * array.ndim
        key[axis] = index
        return _LazyChannel(array, tuple(key), axis)
    return array[(slice(None),) * axis + (index,)]


class _LazyChannel:
    """One channel of a host array-like (e.g. Zarr), sliced only when rows are read or written."""

    def __init__(self, array, key, axis):
        self.array, self.key, self.axis = array, key, axis
        self.dtype = array.dtype
        self.shape = tuple(n for i, n in enumerate(array.shape) if i != axis)

    def _rows(self, rows):
        """The array's key for ``rows`` along the first spatial axis, or a tuple of spatial keys."""
        key = list(self.key)
        spatial = [i for i in range(len(key)) if i != self.axis]
        for axis, part in zip(spatial, rows if isinstance(rows, tuple) else (rows,)):
            key[axis] = part
        return tuple(key)

    def __getitem__(self, rows):
        return self.array[self._rows(rows)]

    def __setitem__(self, rows, value):
        self.array[self._rows(rows)] = value


__all__ = ["execute", "Execution", "run_slab", "slab_tables", "executor_smoothing", "channel_view", "Progress", "MAX_OOM_RETRIES"]
