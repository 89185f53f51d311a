"""Cubic across slabs, the computing half: the pre-pass and a slab's prefilter on the CPU.

See :mod:`gpuresample.spline_states` for the method. :class:`Checkpoints` runs the
whole line's recursion (float64) over axis 0 once and gives any window's states from its
checkpoints: with the compiled CPU loops, or as whole-array operations (:func:`array_loops`,
the recursion ``_array`` runs for its prefilter: on a device, and on the host where the
compiled loops are missing), which give the same states bit for bit; :class:`SlabStates` reads the input for it (smoothed with the backend's
own anti-aliasing when asked) and attaches a slab's states when the slab runs;
:func:`boundary_states` and :func:`states_for_slabs` give many at once; :func:`filter_axis0`
is the compiled CPU path's slab prefilter from those states (the array path continues the
recursion itself, ``_array.recursive_prefilter``).
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import partial
from types import SimpleNamespace

import numpy as np

from ..interpolation import working_dtype
from ..spline_states import (STATE_BLOCK, line_block, missing_states_error, plain_axis0,
                             segment_rows, slab_needs_states, smoothing_tables, with_states)
from ..spline_states import array_segment_rows
from ..tables import CUBIC_POLE, AxisTable, SamplingTables, pole_powers
from .._cupy import import_cupy, is_cupy
from . import _array, _loops


def boundary_states(read_rows, table: AxisTable, windows, elements: int, threads: int, flat=None,
                    read_dtype=np.float64, loops=None, rows_per_segment=None) -> tuple:
    """The whole line's recursion states at each window's edges, for every line.

    Parameters
    ----------
    read_rows : callable
        ``read_rows(start, stop)``: input rows ``[start, stop)`` along axis 0 (smoothed
        when anti-aliasing), as an array of ``(stop - start, elements)`` values whose
        float64 is the working dtype's value (the input's own dtype is fine: every
        working dtype holds its input exactly).
    table : AxisTable
        The whole volume's cubic table along axis 0.
    windows : sequence of (first, stop)
        Kept rows of each slab in the whole extended line (``AxisTable.kept_window``).
    elements : int
        Lines (the product of the other input axes).
    threads : int
        Threads to size the scratch for (at least the loops' thread count is used).
    flat : ndarray, optional
        The input as ``(rows, elements)`` already in memory: read in place.
    read_dtype : dtype
        The working dtype: rows read are held in a buffer of it (unless read in place).
    loops : optional
        The recursion's loops: the compiled CPU loops (default; :func:`array_loops` on NumPy
        where they are missing), or :func:`array_loops` for ``flat`` on a device
        (whole-array operations there; every array then lives on the device).
    rows_per_segment : int, optional
        Rows between checkpoints (default :func:`~gpuresample.spline_states.segment_rows`).

    Returns
    -------
    causal, anticausal : (len(windows), elements) float64 arrays
        The causal value at each window's first row, the anti-causal value at its last.
    """
    line = Checkpoints(read_rows, table, elements, threads, flat, read_dtype, loops, rows_per_segment)
    xp = line.xp
    causal = xp.empty((len(windows), elements), np.float64)
    anticausal = xp.empty((len(windows), elements), np.float64)
    for k, window in enumerate(windows):
        causal[k], anticausal[k] = line.states(*window)
    return causal, anticausal


class Checkpoints:
    """The whole line's recursion over axis 0, kept as checkpoints; any window's states on demand.

    Building runs the recursion once, streamed in segments of ``rows_per_segment`` rows
    (float64, exactly as the unchunked prefilter): the causal initial sum, the causal pass
    keeping the causal value at each segment's last row, and one backward pass keeping the
    anti-causal value at each segment's first row. :meth:`states` then gives a window's
    causal value at its first row (the causal recursion from the checkpoint before it) and
    anti-causal value at its last row (the segment holding it: its causal values again from
    the causal checkpoint, then the anti-causal recursion from the checkpoint after it).
    Every row is computed by the same operations, in the same order, as in one pass over the
    whole line, so the states are that pass's bit for bit, in any order of windows.

    Holds ``2 * (segments - 1) + 1`` float64 planes (the checkpoints and the initial sum),
    whatever the number of windows; a call reads at most two segments of rows.
    """

    def __init__(self, read_rows, table: AxisTable, elements: int, threads: int, flat=None,
                 read_dtype=np.float64, loops=None, rows_per_segment=None):
        if loops is None:
            loops = _loops.current() or array_loops(np)
        self.loops = loops
        self.array = hasattr(loops, "xp")  # whole-array operations, not the compiled loops
        self.xp = loops.xp if self.array else np
        self.read_rows, self.flat, self.elements = read_rows, flat, elements
        self.n_ext = n_ext = table.extended_length
        self.pad_before, self.length = table.pad_before, table.source_length
        self.read_itemsize = 0 if flat is not None else np.dtype(read_dtype).itemsize
        self.read_dtype = read_dtype
        if not self.array:
            self.threads = max(threads, _loops.threads())  # the loops index scratch by their thread id
        if rows_per_segment is None:
            rows_per_segment = (array_segment_rows(n_ext) if self.array else
                                segment_rows(n_ext, elements, self.threads, self.read_itemsize))
        self.rows = rows = max(1, min(int(rows_per_segment), n_ext))
        self.segments = -(-n_ext // rows)
        with np.errstate(all="ignore"):  # NaN and inf travel silently through NumPy arrays, as through the loops
            self._build()

    def _segment(self, s) -> tuple:
        return s * self.rows, min((s + 1) * self.rows, self.n_ext)

    def _lines(self, rows: int):
        """The compiled loops' per-thread scratch for segments of ``rows`` rows (None for whole arrays)."""
        if self.array:
            return None
        return np.empty((self.threads, rows, line_block(self.elements)), np.float64)

    def _rows_of(self, extended, buffer=None, offset=0) -> tuple:
        """``(source, index)``: a 2-D array holding the extended rows, and their rows in it."""
        rows = np.clip(np.asarray(extended) - self.pad_before, 0, self.length - 1)
        if self.flat is not None:
            return self.flat, np.ascontiguousarray(rows)
        lo, hi = int(rows.min()), int(rows.max()) + 1
        block = np.asarray(self.read_rows(lo, hi)).reshape(hi - lo, self.elements)
        if buffer is None:
            return loop_readable(np.ascontiguousarray(block)), np.ascontiguousarray(rows - lo)
        buffer[offset:offset + hi - lo] = block
        return buffer, np.ascontiguousarray(rows - lo + offset)

    def _c_in(self, s):
        """The causal values before segment ``s`` (the initial sums before the first)."""
        return self.causal[s - 1] if s else self.acc

    def _build(self) -> None:
        loops, xp, elements, n_ext, rows = self.loops, self.xp, self.elements, self.n_ext, self.rows
        self.acc = xp.zeros(elements, np.float64)
        # causal[s]: causal value at segment s's last row; anticausal[s]: anti-causal value at
        # segment s + 1's first row (none for the last segment)
        self.causal = xp.empty((self.segments - 1, elements), np.float64)
        self.anticausal = xp.empty((self.segments - 1, elements), np.float64)
        lines = self._lines(rows)
        buffer = None if self.flat is not None else np.empty((2 * rows, elements), self.read_dtype)
        powers = pole_powers(n_ext)
        # pass 1: the causal initial value over rows 0 .. n_ext - 2
        last_summed = max(n_ext - 1, 1)
        for start in range(0, last_summed, rows):
            extended = np.arange(start, min(start + rows, last_summed))
            source, front = self._rows_of(extended, buffer)
            _, back = self._rows_of(n_ext - 1 - extended, buffer, len(extended))
            loops.causal_initial_sum(source, front, back, start, n_ext, CUBIC_POLE, powers, self.acc, STATE_BLOCK)
        del powers
        # pass 2: the causal value at every segment's last row
        for s in range(self.segments - 1):
            start, stop = self._segment(s)
            source, index = self._rows_of(np.arange(start, stop), buffer)
            loops.causal_segment(source, index, start, n_ext, CUBIC_POLE, self.acc, self._c_in(s), self.causal[s],
                                 lines, STATE_BLOCK)
        # pass 3: backwards, the anti-causal value at every segment's first row but the line's
        y_next = xp.empty(elements, np.float64)
        for s in range(self.segments - 1, 0, -1):
            start, stop = self._segment(s)
            source, index = self._rows_of(np.arange(start, stop), buffer)
            dest_rows = np.full(stop - start, -1, np.int64)
            dest_rows[0] = s - 1
            loops.anticausal_segment(source, index, start, n_ext, CUBIC_POLE, self.acc, self._c_in(s), y_next,
                                     lines, STATE_BLOCK, self.anticausal, dest_rows)

    def states(self, first: int, stop: int) -> tuple:
        """The causal value at extended row ``first`` and the anti-causal value at ``stop - 1``
        (float64 planes of ``elements``): a window's states (``AxisTable.kept_window``)."""
        with np.errstate(all="ignore"):
            return self._causal_at(int(first)), self._anticausal_at(int(stop) - 1)

    def _causal_at(self, row: int):
        s = row // self.rows
        start = s * self.rows
        source, index = self._rows_of(np.arange(start, row + 1))
        value = self.xp.empty(self.elements, np.float64)
        self.loops.causal_segment(source, index, start, self.n_ext, CUBIC_POLE, self.acc, self._c_in(s), value,
                                  self._lines(row + 1 - start), STATE_BLOCK)
        return value

    def _anticausal_at(self, row: int):
        s = row // self.rows
        start, stop = self._segment(s)
        source, index = self._rows_of(np.arange(start, stop))
        # y_next enters the segment as the anti-causal value after it (the last segment starts its own)
        y_next = self.anticausal[s].copy() if s < self.segments - 1 else self.xp.empty(self.elements, np.float64)
        value = self.xp.empty((1, self.elements), np.float64)
        dest_rows = np.full(stop - start, -1, np.int64)
        dest_rows[row - start] = 0
        self.loops.anticausal_segment(source, index, start, self.n_ext, CUBIC_POLE, self.acc, self._c_in(s), y_next,
                                      self._lines(stop - start), STATE_BLOCK, value, dest_rows)
        return value[0]


def array_loops(xp):
    """The pre-pass's three loops as whole-array operations of ``xp`` (NumPy or CuPy): the
    recursion ``_array`` runs for its prefilter (``_array.prepass_*``, over the same steps),
    with the compiled loops' signatures.

    For input already on a device (every row of the recursion is a few array operations over
    all lines at once, so nothing goes back to the host but the states), and on the host where
    the compiled loops are missing. Each operation is a separate array operation, in the
    compiled loops' order, so the states equal theirs bit for bit
    (``tests/test_spline_states_device.py``); their ``lines`` and ``block`` arguments are not
    used (a segment's causal values are one array).
    """
    return SimpleNamespace(xp=xp, causal_initial_sum=partial(_array.prepass_initial_sum, xp),
                           causal_segment=partial(_array.prepass_causal_segment, xp),
                           anticausal_segment=partial(_array.prepass_anticausal_segment, xp))


def loop_readable(values: np.ndarray) -> np.ndarray:
    """``values`` in a dtype the pre-pass loops read (no float16 loops; bool as uint8)."""
    if values.dtype == np.float16:
        return values.astype(np.float32)
    if values.dtype == np.bool_:
        return values.view(np.uint8)
    return values


def filter_axis0(values: np.ndarray, tables: SamplingTables, work, threads: int) -> tuple:
    """CPU (compiled loops): axis 0's prefilter of a cut slab, from its states.

    ``values`` are the slab's input rows (smoothed, margins cropped). Returns the kept
    coefficient rows along axis 0 (working dtype, other axes whole) and the tables
    sampling them, whose axis 0 is no longer cubic: the rest of the CPU engine then
    gathers and filters axes 1 and 2 as for a whole run.
    """
    table = tables.axes[0]
    if table.states is None:
        raise missing_states_error(table)
    first, stop = table.coefficient_rows()
    kept = stop - first
    elements = math.prod(values.shape[1:])
    source = loop_readable(np.ascontiguousarray(values)).reshape(values.shape[0], elements)
    rows = np.ascontiguousarray(table.coefficient_source_rows())
    coefficients = np.empty((kept,) + values.shape[1:], np.dtype(work))
    causal, anticausal = (np.ascontiguousarray(s, dtype=np.float64).reshape(elements) for s in table.states)
    lines = np.empty((max(threads, _loops.threads()), kept, line_block(elements)), np.float64)
    _loops.current().filter_from_states(source, rows, table.whole_line, CUBIC_POLE, causal, anticausal,
                             coefficients.reshape(kept, elements), lines, STATE_BLOCK)
    return coefficients, replace(tables, axes=(plain_axis0(table, kept),) + tuple(tables.axes[1:]))


def states_for_slabs(tables: SamplingTables, slab_tables, source, threads: int, smooth=None, to_host=None) -> list:
    """``slab_tables`` (tables of slabs) with axis 0's prefilter states attached, all at once.

    ``source`` is the whole input (anything sliceable along axis 0); ``smooth(block,
    block_tables)`` is the backend's anti-aliasing (needed when any axis has a sigma) and
    ``to_host`` brings a block to NumPy. Tables that do not cut the prefilter come back
    as they are. The executor attaches states one slab at a time instead (:class:`SlabStates`).
    """
    if not any(slab_needs_states(t) for t in slab_tables):
        return list(slab_tables)
    states = SlabStates(tables, source, threads, smooth, to_host)
    return [states.attach(t) for t in slab_tables]


def rows_in_place(source, tables: SamplingTables) -> bool:
    """Whether the pre-pass reads ``source``'s rows where they are (no row buffers): a NumPy
    array whose planes are contiguous, in a dtype the loops read, not anti-aliased."""
    return (not any(t.sigma > 0 for t in tables.axes) and isinstance(source, np.ndarray)
            and source.dtype not in (np.float16, np.bool_) and _flat_rows(source) is not None)


class SlabStates:
    """Axis 0's prefilter states for slabs, computed when a slab asks (:meth:`attach`).

    Built once per input (the :class:`Checkpoints` of its whole line); the memory held
    does not depend on how many slabs ask. ``source``, ``smooth`` and ``to_host`` as for
    :func:`states_for_slabs`. Input on a device (no anti-aliasing) is computed there
    (:func:`array_loops`), or on the host when the device has not the memory.
    """

    def __init__(self, tables: SamplingTables, source, threads: int, smooth=None, to_host=None):
        table = tables.axes[0]
        n = table.source_length
        self.shape = tuple(source.shape)
        elements = math.prod(self.shape[1:])
        smoothing = any(t.sigma > 0 for t in tables.axes)
        to_host = to_host or np.asarray
        self.to_host = np.asarray
        self.line = None
        if not smoothing and is_cupy(source):  # on the device: the pre-pass runs there
            flat = source.reshape(source.shape[0], elements)  # a view of C-contiguous rows, else a copy there
            try:
                self.line = Checkpoints(None, table, elements, 1, flat, loops=array_loops(import_cupy()))
                self.to_host = _device_to_host
            except MemoryError:  # CuPy's OutOfMemoryError is one: read rows to the host instead
                self.line = None
        if self.line is None:
            flat = _flat_rows(source) if rows_in_place(source, tables) else None

            def read_rows(start, stop):
                if not smoothing:
                    return to_host(source[start:stop])
                block_tables = smoothing_tables(tables, start, stop, n)
                a, b = block_tables.input_rows
                return to_host(smooth(source[a:b], block_tables))

            self.line = Checkpoints(read_rows, table, elements, threads, flat, working_dtype(source.dtype))

    def attach(self, slab_tables: SamplingTables) -> SamplingTables:
        """``slab_tables`` with its states when it cuts the prefilter, else as it is."""
        if not slab_needs_states(slab_tables):
            return slab_tables
        causal, anticausal = self.line.states(*slab_tables.axes[0].kept_window())
        planes = self.shape[1:]
        return with_states(slab_tables, self.to_host(causal).reshape(planes), self.to_host(anticausal).reshape(planes))


def _device_to_host(values):
    return values.get()


def _flat_rows(source: np.ndarray):
    """``source`` as ``(rows, elements)`` without a copy when its rows are contiguous, else None."""
    if source.ndim < 2:
        return None
    inner = source[0] if source.shape[0] else source
    if not inner.flags.c_contiguous:
        return None
    elements = math.prod(source.shape[1:])
    return np.lib.stride_tricks.as_strided(source, (source.shape[0], elements), (source.strides[0], source.itemsize),
                                           writeable=False)


__all__ = ["array_loops", "Checkpoints", "SlabStates", "boundary_states", "states_for_slabs", "rows_in_place",
           "filter_axis0", "loop_readable"]
