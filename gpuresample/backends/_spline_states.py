"""Cubic across slabs, the computing half: the pre-pass and a slab's prefilter on the CPU.

See :mod:`gpuresample.spline_states` for the method. :func:`boundary_states` runs the
whole line's recursion (float64) over axis 0 and keeps each slab's states: with the
compiled CPU loops, or as whole-array operations (:class:`ArrayLoops`: on a device, and on
the host where the compiled loops are missing), which give the same states bit for bit;
:func:`states_for_slabs` reads the input for it (smoothed with the backend's own
anti-aliasing when asked); :func:`filter_axis0` is the compiled CPU path's slab prefilter
from those states (the array path continues the recursion itself,
``_array.recursive_prefilter``).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ..interpolation import working_dtype
from ..spline_states import (STATE_BLOCK, line_block, missing_states_error, plain_axis0,
                             segment_rows, slab_needs_states, smoothing_tables, with_states)
from ..spline_states import MIN_STATE_SEGMENT
from ..tables import CUBIC_POLE, AxisTable, SamplingTables, pole_powers, prefilter_constants
from .._cupy import import_cupy, is_cupy
from . import _loops


def boundary_states(read_rows, table: AxisTable, windows, elements: int, threads: int, flat=None,
                    read_dtype=np.float64, loops=None) -> tuple:
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
        The recursion's loops: the compiled CPU loops (default; :class:`ArrayLoops` on NumPy
        where they are missing), or :class:`ArrayLoops` for ``flat`` on a device
        (whole-array operations there; every array then lives on the device).

    Returns
    -------
    causal, anticausal : (len(windows), elements) float64 arrays
        The causal value at each window's first row, the anti-causal value at its last.
    """
    if loops is None:
        loops = _loops.current() or ArrayLoops(np)
    with np.errstate(all="ignore"):  # NaN and inf travel silently through ArrayLoops on NumPy, as through the loops
        return _boundary_states(read_rows, table, windows, elements, threads, flat, read_dtype, loops)


def _boundary_states(read_rows, table: AxisTable, windows, elements: int, threads: int, flat, read_dtype,
                     loops) -> tuple:
    """:func:`boundary_states` with its loops chosen."""
    n_ext = table.extended_length
    if not isinstance(loops, ArrayLoops):
        threads = max(threads, _loops.threads())  # the loops index scratch by their thread id
        rows_per_segment = segment_rows(n_ext, elements, threads, 0 if flat is not None else np.dtype(read_dtype).itemsize)
    else:  # ArrayLoops: a segment's causal values are one (rows, elements) array
        rows_per_segment = loops.segment_rows(n_ext)
    xp = getattr(loops, "xp", np)
    pad_before, length = table.pad_before, table.source_length
    windows = [(int(a), int(b)) for a, b in windows]
    # Segments end after every window's first row (its causal state is a segment's last
    # value) and at least every rows_per_segment rows.
    ends = set(range(rows_per_segment, n_ext, rows_per_segment)) | {a + 1 for a, _ in windows} | {n_ext}
    ends = sorted(e for e in ends if 0 < e <= n_ext)
    starts = [0] + ends[:-1]

    def data_rows(extended):
        return np.clip(np.asarray(extended) - pad_before, 0, length - 1)

    buffer = None if flat is not None else np.empty((2 * rows_per_segment, elements), read_dtype)

    def rows_of(extended, offset=0):
        """``(source, index)``: a 2-D array holding the extended rows, and their rows in it
        (read into ``buffer`` from row ``offset`` unless the input is read in place)."""
        rows = data_rows(extended)
        if flat is not None:
            return flat, rows
        lo, hi = int(rows.min()), int(rows.max()) + 1
        buffer[offset:offset + hi - lo] = np.asarray(read_rows(lo, hi)).reshape(hi - lo, elements)
        return buffer, rows - lo + offset

    acc = xp.zeros(elements, np.float64)
    y_next = xp.empty(elements, np.float64)
    checkpoints = xp.empty((len(ends), elements), np.float64)
    lines = None
    if not isinstance(loops, ArrayLoops):  # the compiled loops' per-thread scratch
        lines = np.empty((threads, max(b - a for a, b in zip(starts, ends)), line_block(elements)), np.float64)
    powers = pole_powers(n_ext)
    # pass 1: the causal initial value over rows 0 .. n_ext - 2
    last_summed = max(n_ext - 1, 1)
    for start in range(0, last_summed, rows_per_segment):
        extended = np.arange(start, min(start + rows_per_segment, last_summed))
        source, front = rows_of(extended)
        _, back = rows_of(n_ext - 1 - extended, len(extended))
        loops.causal_initial_sum(source, np.ascontiguousarray(front), np.ascontiguousarray(back), start, n_ext,
                                 CUBIC_POLE, powers, acc, STATE_BLOCK)
    # pass 2: causal values at every segment's end
    for s, (start, stop) in enumerate(zip(starts, ends)):
        source, rows = rows_of(np.arange(start, stop))
        loops.causal_segment(source, np.ascontiguousarray(rows), start, n_ext, CUBIC_POLE, acc,
                             checkpoints[s - 1] if s else acc, checkpoints[s], lines, STATE_BLOCK)
    causal = xp.empty((len(windows), elements), np.float64)
    for k, (first, _) in enumerate(windows):
        causal[k] = checkpoints[ends.index(first + 1)]
    # pass 3: backwards, keeping the anti-causal value at each window's last row
    anticausal = xp.empty((len(windows), elements), np.float64)
    lowest = min(b - 1 for _, b in windows)
    for s in range(len(ends) - 1, -1, -1):
        start, stop = starts[s], ends[s]
        if stop <= lowest:
            break
        extended = np.arange(start, stop)
        source, rows = rows_of(extended)
        dest_rows = np.full(len(extended), -1, np.int64)
        for k, (_, last) in enumerate(windows):
            if start <= last - 1 < stop and dest_rows[last - 1 - start] < 0:
                dest_rows[last - 1 - start] = k
        loops.anticausal_segment(source, np.ascontiguousarray(rows), start, n_ext, CUBIC_POLE, acc,
                                 checkpoints[s - 1] if s else acc, y_next, lines, STATE_BLOCK, anticausal, dest_rows)
    for k, (_, last) in enumerate(windows):  # windows sharing a last row share its state
        owner = next(j for j, (_, b) in enumerate(windows) if b == last)
        if owner != k:
            anticausal[k] = anticausal[owner]
    return causal, anticausal


class ArrayLoops:
    """The pre-pass's three recursion loops as whole-array operations of ``xp`` (NumPy or CuPy).

    For input already on a device (every row of the recursion is a few array operations over
    all lines at once, so nothing goes back to the host but the states), and on the host
    where the compiled loops are missing. Each operation is a separate array operation (a
    separate kernel on a GPU: nothing can be fused into a multiply-add), in the compiled
    loops' order, so the states equal theirs bit for bit
    (``tests/test_spline_states_device.py``). Same signatures as the CPU loops; their
    ``lines`` and ``block`` arguments are not used (a segment's causal values are one array).
    """

    def __init__(self, xp):
        self.xp = xp

    @staticmethod
    def segment_rows(n_ext: int) -> int:
        """Rows per segment: about sqrt(n_ext), the fewest checkpoints plus segment values."""
        return max(MIN_STATE_SEGMENT, math.isqrt(n_ext))

    def _e(self, source, row, gain):
        return source[int(row)].astype(np.float64) * gain

    def causal_initial_sum(self, source, front, back, i_start, n_ext, pole, powers, acc, block):
        gain, z_last = prefilter_constants(n_ext, pole)
        for q in range(len(front)):
            i = i_start + q
            if i == 0:
                acc[...] = self._e(source, front[q], gain) + z_last * self._e(source, back[q], gain)
            elif i <= n_ext - 2:
                acc += float(powers[i]) * (self._e(source, front[q], gain) + z_last * self._e(source, back[q], gain))

    def _causal_rows(self, source, rows, i_start, n_ext, pole, acc, c_in):
        gain, z_last = prefilter_constants(n_ext, pole)
        causal = self.xp.empty((len(rows), acc.shape[0]), np.float64)
        for q in range(len(rows)):
            if i_start + q == 0:
                causal[q] = acc / (1.0 - z_last * z_last)
            else:
                causal[q] = self._e(source, rows[q], gain) + pole * (c_in if q == 0 else causal[q - 1])
        return causal

    def causal_segment(self, source, rows, i_start, n_ext, pole, acc, c_in, c_out, lines, block):
        c_out[...] = self._causal_rows(source, rows, i_start, n_ext, pole, acc, c_in)[-1]

    def anticausal_segment(self, source, rows, i_start, n_ext, pole, acc, c_in, y_next, lines, block, dest,
                           dest_rows):
        causal = self._causal_rows(source, rows, i_start, n_ext, pole, acc, c_in)
        z = pole
        for q in range(len(rows) - 1, -1, -1):
            if i_start + q == n_ext - 1:
                before = c_in if q == 0 else causal[q - 1]
                y_next[...] = (z * before + causal[q]) * z / (z * z - 1.0)
            else:
                y_next[...] = z * (y_next - causal[q])
            if dest_rows[q] >= 0:
                dest[int(dest_rows[q])] = y_next


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
    """``slab_tables`` (tables of consecutive slabs) with axis 0's prefilter states attached.

    ``source`` is the whole input (anything sliceable along axis 0); ``smooth(block,
    block_tables)`` is the backend's anti-aliasing (needed when any axis has a sigma) and
    ``to_host`` brings a block to NumPy. Tables that do not cut the prefilter come back
    as they are.
    """
    cut = [k for k, t in enumerate(slab_tables) if slab_needs_states(t)]
    if not cut:
        return list(slab_tables)
    table = tables.axes[0]
    n = table.source_length
    shape = tuple(source.shape)
    elements = math.prod(shape[1:])
    smoothing = any(t.sigma > 0 for t in tables.axes)
    to_host = to_host or np.asarray
    flat = None
    if not smoothing and isinstance(source, np.ndarray) and source.dtype not in (np.float16, np.bool_):
        flat = _flat_rows(source)

    def read_rows(start, stop):
        if not smoothing:
            return to_host(source[start:stop])
        block_tables = smoothing_tables(tables, start, stop, n)
        a, b = block_tables.input_rows
        return to_host(smooth(source[a:b], block_tables))

    windows = [slab_tables[k].axes[0].kept_window() for k in cut]
    states = None
    if not smoothing and is_cupy(source):  # on the device: the pre-pass runs there
        states = _device_states(source, table, windows, elements)
    if states is None:
        states = boundary_states(read_rows, table, windows, elements, threads, flat, working_dtype(source.dtype))
    causal, anticausal = states
    result = list(slab_tables)
    for i, k in enumerate(cut):
        result[k] = with_states(slab_tables[k], causal[i].reshape(shape[1:]), anticausal[i].reshape(shape[1:]))
    return result


def _device_states(source, table: AxisTable, windows, elements: int):
    """The states from input on a device, computed there (:class:`ArrayLoops`), as host arrays;
    None when the device lacks the memory (the caller then reads rows to the host)."""
    cupy = import_cupy()
    flat = source.reshape(source.shape[0], elements)  # a view of C-contiguous rows, else a copy there
    try:
        causal, anticausal = boundary_states(None, table, windows, elements, 1, flat, loops=ArrayLoops(cupy))
        return causal.get(), anticausal.get()
    except MemoryError:  # CuPy's OutOfMemoryError is one
        return None


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


__all__ = ["ArrayLoops", "boundary_states", "states_for_slabs", "filter_axis0", "loop_readable"]
