"""The CPU backend's cubic engine (compiled loops): whole-array or streamed coefficients.

For a cubic block the CPU backend either prefilters one coefficient array of the whole
block (:func:`spline_coefficients`) or, when that takes more memory, streams: it produces
the coefficients plane by plane along the first pass axis into a small ring and samples
each output plane as soon as its rows are there (:func:`cubic_streamed`).
:func:`cubic_layout` chooses by the memory each takes; both give the same coefficients
bit for bit (docs/design.md §2). The compiled loops are ``_loops.current()``'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...tables import CUBIC_POLE, pole_powers
from .. import _loops
from .._common import coefficient_maps, integer_limits, view_3d

#: Flattened plane elements a thread takes at a time in the streamed filter along the
#: first pass axis: its causal values for one segment stay in L1/L2.
STREAM_BLOCK = 512
#: Fewest planes per segment of the streamed filter (fewer parallel launches, balance).
MIN_SEGMENT_ROWS = 8
#: Array objects and other small temporaries of one block (headers, row lists, slices).
SMALL_ALLOCATION_BYTES = 2048


@dataclass(frozen=True)
class CubicLayout:
    """How the CPU computes a block's cubic coefficients, and the scratch that takes.

    ``streamed``: plane by plane along the first pass axis (the view's axis 0) with
    ``segment`` planes per step and a ring of ``ring`` coefficient planes feeding the
    separable passes; else one coefficient array of the whole block (whichever needs
    less memory; both give the same coefficients bit for bit).
    """

    streamed: bool
    cubic_scratch_bytes: int
    segment: int = 0
    ring: int = 0


def table_bytes(axes) -> int:
    """A bound on the small per-axis arrays a block allocates (index/weight copies, row maps)."""
    per_axis = (t.index.size * 8 * 4 + t.n_out * 16
                + (t.line_length + t.pad_before + t.source_length + t.pad_after) * 8 * 3 for t in axes)
    return SMALL_ALLOCATION_BYTES + sum(per_axis)


def spline_coefficients(values: np.ndarray, axes, work) -> np.ndarray:
    """Cubic B-spline coefficients over each table's kept coefficient rows (3-D), all at once:
    the kept rows gathered (edges clamped), then the prefilter along axes 0, 1, 2 in turn."""
    values3 = view_3d(values)
    maps = coefficient_maps(axes)
    coef = np.empty(tuple(len(m) for m in maps), dtype=work)
    if values3.dtype == np.float16:
        values3 = values3.astype(np.float32)
    loops = _loops.current()
    loops.gather_clamped(values3, *maps, coef)
    for axis, table in enumerate(axes):
        if not table.is_cubic:
            continue
        first, _ = table.coefficient_rows()
        view = np.moveaxis(coef, axis, 0)
        n_ext = table.pad_before + table.source_length + table.pad_after
        lines = np.empty((_loops.threads(), n_ext + 1, view.shape[2]), np.float64)
        loops.spline_filter_axis0(
            view, first, table.pad_before, table.source_length, table.pad_after, CUBIC_POLE, lines)
        del lines
    return coef


def _unit_run(rows: np.ndarray) -> tuple:
    """``(lo, hi)``: the longest stretch where ``rows`` steps by one (a plain copy there)."""
    breaks = np.flatnonzero(np.diff(rows) != 1)
    bounds = np.concatenate(([-1], breaks, [len(rows) - 1]))
    k = int(np.argmax(np.diff(bounds)))
    return int(bounds[k] + 1), int(bounds[k + 1] + 1)


def _axis_lines(table):
    """``(kept rows, first kept row, extended length, filtered)`` of one axis's coefficient line."""
    if not table.is_cubic:
        return table.source_length, 0, table.source_length, False
    first, stop = table.coefficient_rows()
    n_ext = table.pad_before + table.source_length + table.pad_after
    return stop - first, first, n_ext, n_ext > 1


def _window_envelopes(index: np.ndarray) -> tuple:
    """Suffix minimum of each output's lowest row and prefix maximum of its highest."""
    low = np.minimum.accumulate(index.min(axis=1)[::-1])[::-1]
    high = np.maximum.accumulate(index.max(axis=1))
    return low, high


def cubic_layout(axes, order, work_itemsize: int, threads: int) -> CubicLayout:
    """Choose between the streamed and the whole-array coefficients by the memory they take.

    ``cubic_scratch_bytes`` bounds what the chosen way allocates (the streamed count is that of
    gathered planes, the larger of its two modes).
    """
    lines = [_axis_lines(t) for t in axes]
    kept = [line[0] for line in lines]
    n1, n2 = kept[order[1]], kept[order[2]]
    common = threads * (n1 * n2 + axes[order[1]].n_out * n2) * work_itemsize + table_bytes(axes)
    # the whole array: every coefficient, and one extended line per plane and thread
    filtered_lengths = [n_ext for _, _, n_ext, filtered in lines if filtered]
    whole = math.prod(kept) * work_itemsize + common
    if filtered_lengths:
        whole += threads * (max(filtered_lengths) + 1) * max(kept) * 8
    # streamed: a ring of planes (+ a segment of gathered planes, checkpoints, carries)
    plane = n1 * n2
    in_plane_lengths = [lines[order[v]][2] for v in (1, 2) if lines[order[v]][3]]
    if in_plane_lengths:
        common += threads * (max(in_plane_lengths) + 1) * max(n1, n2) * 8
    low, high = _window_envelopes(axes[order[0]].coefficient_indexed().index)
    window = int((high - low).max()) + 1
    _, _, n_ext, recursion = lines[order[0]]

    def streamed_bytes(segment):
        total = (segment + window) * plane * work_itemsize + common
        if recursion:
            checkpoints = -(-n_ext // segment) - 1
            total += segment * plane * work_itemsize + (checkpoints + 2) * plane * 8
            total += threads * segment * STREAM_BLOCK * 8 + n_ext * 8
        return total

    rows = n_ext if recursion else kept[order[0]]
    segment = min(range(min(MIN_SEGMENT_ROWS, rows), rows + 1), key=lambda s: (streamed_bytes(s), -s))
    streamed = streamed_bytes(segment)
    if streamed <= whole:
        return CubicLayout(True, streamed, segment, segment + window)
    return CubicLayout(False, whole)


def cubic_streamed(values3, axes, order, layout: CubicLayout, work, out) -> None:
    """Cubic coefficients plane by plane along the first pass axis, sampled as they come.

    Every coefficient equals :func:`spline_coefficients`' bit for bit: the gathers, the
    in-plane filters and the per-element recursion along the first pass axis are the
    same operations in the same order (the compiled loops' streamed recursion: a causal
    initial sum, causal segments with a checkpoint at each end, anti-causal segments
    recomputing theirs from the checkpoint). Planes are produced from the
    last kept row down (the anti-causal pass runs backwards) into a ring of
    ``layout.ring`` planes; each output plane is sampled once its rows are all there.
    """
    src = values3.transpose(order)
    view_axes = [axes[a] for a in order]
    lines = [_axis_lines(t) for t in view_axes]
    kept = [line[0] for line in lines]
    maps = coefficient_maps(view_axes)
    # In-plane filters in array-axis order; the view's axis 0 is filtered by the recursion.
    before, after, seen_first = [], [], False
    for a in range(3):
        v = order.index(a)
        if not lines[v][3]:
            continue
        if v == 0:
            seen_first = True
            continue
        t = view_axes[v]
        (after if seen_first else before).append((v - 1, lines[v][1], t.pad_before, t.source_length, t.pad_after))
    stages_before = np.array(before, np.int64).reshape(-1, 5)
    stages_after = np.array(after, np.int64).reshape(-1, 5)
    every_stage = np.array(before + after, np.int64).reshape(-1, 5)

    out3, target, dst, round_to_int, lo, hi = output_view(out, order)
    index0 = view_axes[0].coefficient_indexed().index
    low, _ = _window_envelopes(index0)
    ring_size, segment = layout.ring, layout.segment
    slots0 = np.ascontiguousarray(index0 % ring_size)
    weights = [np.ascontiguousarray(t.weight, dtype=work) for t in view_axes]
    index = [None] + [np.ascontiguousarray(t.coefficient_indexed().index) for t in view_axes[1:]]
    run2 = _unit_run(maps[2])

    loops = _loops.current()
    threads = _loops.threads()
    n1, n2 = kept[1], kept[2]
    in_plane = [lines[v][2] for v in (1, 2) if lines[v][3]]
    plane_lines = np.empty((threads, max(in_plane) + 1, max(n1, n2)) if in_plane else (threads, 1, 1), np.float64)
    planes = np.empty((threads, n1, n2), work)
    planes2 = np.empty((threads, view_axes[1].n_out, n2), work)
    kept0, first0, n_ext0, filtered0 = lines[0]
    # Elements of the recursion along axis 0: the source's own columns when its planes
    # are contiguous and nothing is filtered before (read in place), else gathered planes.
    flat = _flat_planes(src) if filtered0 and not len(stages_before) else None
    if flat is None:
        buffer = np.empty((segment + ring_size, n1, n2), work) if filtered0 else None
        ring = buffer[segment:] if filtered0 else np.empty((ring_size, n1, n2), work)
    else:
        ring = np.empty((ring_size, n1, n2), work)
    pending = [view_axes[0].n_out]  # output rows [pending, n_out) are written

    def sample_ready(produced_low):
        ready = int(np.searchsorted(low, produced_low, side="left"))
        if ready < pending[0]:
            part = slice(ready, pending[0])
            loops.separable3(ring, slots0[part], weights[0][part], index[1], weights[1], index[2], weights[2],
                             dst[part], round_to_int, lo, hi, planes, planes2)
            pending[0] = ready

    if not filtered0:
        for stop in range(kept0, 0, -segment):
            rows = np.arange(max(stop - segment, 0), stop)
            loops.gather_planes(src, maps[0][rows], rows % ring_size, maps[1], maps[2], *run2, ring,
                                every_stage, CUBIC_POLE, plane_lines)
            sample_ready(rows[0])
    else:
        _stream_first_axis(src, flat, maps, run2, view_axes[0], lines[0], layout, work, stages_before,
                           stages_after, ring, buffer if flat is None else None, plane_lines, sample_ready)
    assert pending[0] == 0, "streamed cubic left output rows unwritten"
    if target is not out3:
        out3[...] = target


def _flat_planes(src):
    """``src`` as ``(n0, n1 * n2)`` rows when each plane ``src[i]`` is C-contiguous, else None."""
    item = src.itemsize
    if src.strides[2] != item or (src.shape[1] > 1 and src.strides[1] != src.shape[2] * item):
        return None
    return np.lib.stride_tricks.as_strided(src, (src.shape[0], src.shape[1] * src.shape[2]),
                                           (src.strides[0], item), writeable=False)


def _stream_first_axis(src, flat, maps, run2, table, line, layout, work, stages_before, stages_after, ring,
                       buffer, plane_lines, sample_ready) -> None:
    """The three passes of the recursion along the view's axis 0, feeding ``ring``.

    ``flat``: the source's planes as rows (recursion over source columns, read in place;
    each finished row is then gathered into the ring with the in-plane filters after it).
    Else ``buffer`` holds ``segment`` gathered planes followed by the ring.
    """
    kept0, first0, n_ext, _ = line
    segment, ring_size = layout.segment, layout.ring
    pad_before, length = table.pad_before, table.source_length
    loops = _loops.current()
    threads = _loops.threads()
    if flat is not None:
        elements = flat.shape[1]
        seg = np.empty((segment, src.shape[1], src.shape[2]), work)
        source = flat
    else:
        n1, n2 = ring.shape[1:]
        elements = n1 * n2
        source = buffer.reshape(buffer.shape[0], elements)
    acc = np.empty(elements, np.float64)
    y_next = np.empty(elements, np.float64)
    n_segments = -(-n_ext // segment)
    checkpoints = np.empty((n_segments - 1, elements), np.float64)
    causal_lines = np.empty((threads, segment, STREAM_BLOCK), np.float64)
    powers = pole_powers(n_ext)
    positions = np.arange(segment + ring_size)

    def data_rows(extended):
        return np.clip(extended - pad_before, 0, length - 1)

    def rows_of(extended, offset=0):
        """Rows of ``source`` holding extended rows ``extended`` (gathered at ``offset`` if needed)."""
        if flat is not None:
            return data_rows(extended)
        where = positions[offset:offset + len(extended)]
        loops.gather_planes(src, data_rows(extended), where, maps[1], maps[2], *run2, buffer, stages_before,
                            CUBIC_POLE, plane_lines)
        return where

    # pass 1: the causal initial value over rows 0 .. n_ext - 2 (and row n_ext - 1)
    last_summed = max(n_ext - 1, 1)
    for start in range(0, last_summed, segment):
        rows = np.arange(start, min(start + segment, last_summed))
        front = rows_of(rows)
        back = rows_of(n_ext - 1 - rows, segment)
        loops.causal_initial_sum(source, front, back, start, n_ext, CUBIC_POLE, powers, acc, STREAM_BLOCK)
    # pass 2: causal values at the end of every segment but the last
    for s in range(n_segments - 1):
        rows = rows_of(np.arange(s * segment, (s + 1) * segment))
        loops.causal_segment(source, rows, s * segment, n_ext, CUBIC_POLE, acc, checkpoints[s - 1] if s else acc,
                             checkpoints[s], causal_lines, STREAM_BLOCK)
    # pass 3: backwards, segment by segment, down to the first kept row
    for s in range(n_segments - 1, -1, -1):
        start, stop = s * segment, min((s + 1) * segment, n_ext)
        if stop <= first0:
            break
        extended = np.arange(start, stop)
        rows = rows_of(extended)
        is_kept = (extended >= first0) & (extended < first0 + kept0)
        slots = (extended - first0) % ring_size
        if flat is not None:
            dest, dest_rows = seg.reshape(segment, -1), np.where(is_kept, np.arange(len(extended)), -1)
        else:
            dest, dest_rows = source, np.where(is_kept, segment + slots, -1)
        loops.anticausal_segment(source, rows, start, n_ext, CUBIC_POLE, acc, checkpoints[s - 1] if s else acc,
                                 y_next, causal_lines, STREAM_BLOCK, dest, dest_rows)
        done = np.flatnonzero(is_kept)
        if len(done):
            if flat is not None:
                loops.gather_planes(seg, done, slots[done], maps[1], maps[2], *run2, ring, stages_after,
                                    CUBIC_POLE, plane_lines)
            elif len(stages_after):
                loops.filter_planes(ring, slots[done], stages_after, CUBIC_POLE, plane_lines)
        sample_ready(max(start, first0) - first0)


def output_view(out, order):
    """``(out3, target, permuted target view, round_to_int, lo, hi)`` for writing ``out``."""
    out3 = view_3d(out)
    target = out3
    if out3.dtype == np.float16:
        target = np.empty(out3.shape, np.float32)
    round_to_int, lo, hi = integer_limits(out3.dtype)
    target_view = target.view(np.uint8) if target.dtype == np.bool_ else target
    return out3, target, target_view.transpose(order), round_to_int, lo, hi


__all__ = ["CubicLayout", "cubic_layout", "cubic_streamed", "output_view", "spline_coefficients", "table_bytes",
           "STREAM_BLOCK", "MIN_SEGMENT_ROWS"]
