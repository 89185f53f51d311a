"""Cubic across slabs, exactly: the prefilter's recursion states at slab edges.

The cubic B-spline prefilter along an axis is one recursion over the whole extended
line (causal initial sum, causal pass, anti-causal pass, see ``kernels/gr_spline.cuh``).
A slab holds only some rows of that line, so it cannot start the recursion from its own
edges without changing the result. Instead, a pre-pass over axis 0 (``Checkpoints`` in
``backends/_spline_states.py``) runs the whole line's recursion once, streamed in segments,
in float64, exactly as the unchunked prefilter does it, and keeps checkpoints: the causal
value at each segment's last row and the anti-causal value at each segment's first. When a
slab runs (the executor asks slab by slab, ``SlabStates.attach``), its causal value at its
first kept row and anti-causal value at its last are computed again from the checkpoints
around them, by the same operations in the same order. A slab's prefilter then runs its
part of the same recursion from those values (``filter_axis0`` in
``backends/_spline_states.py``, ``gr_spline_prefilter_cut`` in ``kernels/spline.cu``, the
cupyx backend's recursion), so every coefficient — and every output — equals the
unchunked run's bit for bit, whatever the slabs (docs/design.md §2).

Only axis 0 is ever cut. The prefilter runs along the array axes in order 0, 1, 2 in
every engine (the CPU's whole-array and streamed engines, the kernels, cupyx), so the
axis-0 filter sees the gathered input itself (smoothed first when anti-aliasing) and
the pre-pass needs no in-plane filter; the in-plane filters of axes 1 and 2 never cross
a slab edge.

Cost: the pre-pass reads the input rows three times (initial sum, causal pass,
anti-causal pass) and each cut slab at most two segments more; it holds
:func:`checkpoint_planes` float64 planes of the input's other axes (segments sized by
:func:`segment_rows` for the fewest bytes of checkpoints plus one segment's scratch) and the
running slab's two states, whatever the number of slabs (:func:`prepass_held_and_peak`,
asked through the backend and counted in the planner's peak). Input already on a GPU (no
anti-aliasing) runs the pre-pass there as whole-array operations (``array_loops``, the
recursion ``backends/_array.py`` runs for its prefilter): about
``3 * sqrt(rows)`` float64 planes of device memory, and back to the host path if the device
has not got them.

This module holds what needs no backend: the slab tables' states, the memory the pre-pass
and the states take (for the planner), and the error for a slab without states. The
computing half is ``gpuresample/backends/_spline_states.py``.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from .interpolation import working_dtype
from .tables import AxisTable, SamplingTables

#: Plane elements a thread takes at a time in the pre-pass loops (as the CPU's streamed
#: cubic engine): its causal values for one segment stay in cache.
STATE_BLOCK = 512
#: Fewest extended-line rows per pre-pass segment (fewer, larger loop calls).
MIN_STATE_SEGMENT = 16
#: Segments of rows held when the input is not read in place: a buffer of two (the
#: initial sum reads rows from both ends) and the block being read (or smoothed).
READ_COPIES = 3
#: Index arrays and other small temporaries of the pre-pass.
PREPASS_SMALL_BYTES = 16384
#: float64 bytes: states and checkpoints are kept exactly as the recursion computes them.
STATE_ITEMSIZE = 8
#: float64 planes of temporaries one whole-array recursion step makes (a row cast to float64,
#: scaled, the mirror's term, their sum).
ARRAY_TEMPORARIES = 4


def line_block(elements: int) -> int:
    """Plane elements the loops' float64 scratch lines hold: a block, or all when fewer."""
    return max(1, min(STATE_BLOCK, elements))


def slab_needs_states(tables: SamplingTables) -> bool:
    """Whether these (slab) tables cut axis 0's cubic prefilter."""
    return tables.axes[0].is_cut


def checkpoint_planes(n_ext: int, rows: int) -> int:
    """float64 planes the pre-pass keeps with segments of ``rows`` rows: a causal and an
    anti-causal checkpoint between every two segments, and the causal initial sums."""
    return 2 * (-(-n_ext // rows) - 1) + 1


def array_segment_rows(n_ext: int) -> int:
    """Rows per segment of the whole-array pre-pass (a segment's causal values are one
    float64 plane per row): about sqrt(n_ext), the fewest checkpoints plus segment planes."""
    return max(MIN_STATE_SEGMENT, math.isqrt(n_ext))


def segment_rows(n_ext: int, elements: int, threads: int, read_itemsize: int) -> int:
    """Rows per pre-pass segment: the fewest bytes of checkpoints plus one segment's scratch.

    ``read_itemsize`` is 0 when the input is read in place (no row buffer). For each number
    of segments the shortest segments that cover the line cost least; ties go to fewer segments.
    """
    def cost(rows):
        return (checkpoint_planes(n_ext, rows) * elements * STATE_ITEMSIZE
                + threads * rows * line_block(elements) * STATE_ITEMSIZE + READ_COPIES * rows * elements * read_itemsize)
    most = max(1, -(-n_ext // MIN_STATE_SEGMENT))
    candidates = [-(-n_ext // segments) for segments in range(1, most + 1)]
    return min(candidates, key=lambda r: (cost(r), -r))


def prepass_bytes(tables: SamplingTables, in_dtype, input_shape, threads: int, in_place: bool = False) -> tuple:
    """``(held, peak)``: host bytes the pre-pass keeps while slabs run (its checkpoints), and the
    most it takes at once (building them, or computing one slab's states).

    ``in_place``: the input's rows are read where they are (see ``rows_in_place`` in
    ``backends/_spline_states.py``); else through row buffers of the working dtype.
    """
    table = tables.axes[0]
    n_ext = table.extended_length
    elements = math.prod(input_shape[1:])
    plane = elements * STATE_ITEMSIZE
    itemsize = 0 if in_place else working_dtype(in_dtype).itemsize
    rows = segment_rows(n_ext, elements, threads, itemsize)
    held = checkpoint_planes(n_ext, rows) * plane
    scratch = (threads * rows * line_block(elements) * STATE_ITEMSIZE + READ_COPIES * rows * elements * itemsize
               + PREPASS_SMALL_BYTES)
    if itemsize and table.sigma > 0:  # the smoothed block's margins
        scratch += 2 * int(4.0 * table.sigma + 0.5) * elements * itemsize
    building = held + plane + n_ext * 8 + scratch  # y_next and the pole's powers
    one_slab = held + 3 * plane + scratch  # y_next and the two states
    return held, max(building, one_slab)


def prepass_held_and_peak(tables: SamplingTables, in_dtype, input_shape, threads: int, in_place: bool = False,
                          whole_arrays: bool = False) -> tuple:
    """``(held, peak)`` of a chunked cubic run's pre-pass, for the planner (0, 0 when nothing
    cuts the prefilter): ``held`` while a slab runs (the checkpoints and that slab's two
    states), ``peak`` the most it takes at once without a slab.

    ``whole_arrays``: the pre-pass as whole-array operations (``array_loops``: a device, or the
    CPU without its compiled loops), whose segments of about ``sqrt(rows)`` rows are float64
    planes (with a few planes of temporaries) instead of the compiled loops' per-thread lines.
    """
    if not isinstance(tables, SamplingTables) or not tables.axes[0].is_cubic:
        return 0, 0
    plane = math.prod(input_shape[1:]) * STATE_ITEMSIZE
    if not whole_arrays:
        held, peak = prepass_bytes(tables, in_dtype, input_shape, threads, in_place)
        return held + 2 * plane, peak
    n_ext = tables.axes[0].extended_length
    rows = min(n_ext, array_segment_rows(n_ext))
    held = checkpoint_planes(n_ext, rows) * plane
    itemsize = 0 if in_place else working_dtype(in_dtype).itemsize
    scratch = (rows + ARRAY_TEMPORARIES) * plane + READ_COPIES * rows * (plane // STATE_ITEMSIZE) * itemsize
    return held + 2 * plane, max(held + plane + n_ext * 8, held + 3 * plane) + scratch + PREPASS_SMALL_BYTES


def with_states(tables: SamplingTables, causal, anticausal) -> SamplingTables:
    """Slab tables carrying axis 0's prefilter states (planes shaped like the other input axes)."""
    table = tables.axes[0]
    return replace(tables, axes=(replace(table, states=(causal, anticausal)),) + tuple(tables.axes[1:]))


def missing_states_error(table: AxisTable) -> ValueError:
    return ValueError(
        f"cubic slab tables for extended rows {table.kept_window()} of {table.whole_line} carry no prefilter "
        "states; compute them with gpuresample.spline_states.states_for_slabs (the executor does)")


def plain_axis0(table: AxisTable, kept: int) -> AxisTable:
    """The table sampling ``kept`` axis-0 coefficients that are already filtered."""
    return AxisTable(table.coefficient_indexed().index, table.weight, 0, kept)


def filter_axis0_bytes(tables: SamplingTables, work_itemsize: int, threads: int, in_dtype=None) -> int:
    """Bytes :func:`filter_axis0` allocates: the kept rows in the working dtype and float64 lines
    (and a float32 copy of float16 input rows, which the compiled loops cannot read)."""
    table = tables.axes[0]
    first, stop = table.coefficient_rows()
    kept = stop - first
    elements = math.prod(t.source_length for t in tables.axes[1:])
    total = kept * elements * work_itemsize + threads * kept * line_block(elements) * STATE_ITEMSIZE
    smoothed = any(t.sigma > 0 for t in tables.axes)
    if in_dtype is not None and np.dtype(in_dtype) in (np.dtype(np.float16), np.dtype(np.bool_)) and not smoothed:
        total += table.source_length * elements * 4
    return total


def smoothing_tables(tables: SamplingTables, start: int, stop: int, n: int) -> SamplingTables:
    """Tables that make ``smooth`` give input rows ``[start, stop)`` of the smoothed volume.

    The block read is ``[start - margin_before, stop + margin_after)``, clipped as a slab's.
    """
    table = tables.axes[0]
    radius = int(4.0 * table.sigma + 0.5) if table.sigma > 0 else 0
    axis0 = AxisTable(np.zeros((1, 1), np.int64), np.ones((1, 1)), start, stop, sigma=table.sigma,
                      margin_before=min(radius, start), margin_after=min(radius, n - stop))
    return replace(tables, axes=(axis0,) + tuple(tables.axes[1:]))


__all__ = ["prepass_bytes", "array_segment_rows", "prepass_held_and_peak", "checkpoint_planes", "with_states", "missing_states_error", "plain_axis0", "filter_axis0_bytes",
           "slab_needs_states", "smoothing_tables", "line_block", "segment_rows", "STATE_ITEMSIZE", "STATE_BLOCK"]
