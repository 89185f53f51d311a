"""The array code: a block resampled with whole-array operations of an array module.

Written once for any array module ``xp`` and its ``ndimage`` ``ndi`` (as cuCIM does): the
``cupyx`` backend runs it with CuPy and ``cupyx.scipy.ndimage``; the ``cpu`` backend runs it
with NumPy and ``scipy.ndimage`` where the compiled CPU loops are missing (``_loops``). It
reads the same sampling tables as every backend: separable passes are gathers (``take``)
and elementwise products and sums in the working dtype, in the compiled loops' pass order
and tap order, so nearest, linear and label equal them bit for bit (docs/design.md §2).

The cubic prefilter along the axis slabs cut (array axis 0) is the compiled loops' recursion
written with array operations (:func:`recursive_prefilter`), so it equals theirs bit for bit
and a cut slab continues the whole line's recursion from its states. Along the other axes
it is ``ndi.spline_filter1d`` (float64, mirror boundaries on the extended line, equal to the
recursion to rounding), or with ``exact=True`` the recursion too: then cubic equals the
compiled loops bit for bit (the CPU's array path; on a GPU the recursion costs a few
launches per row, so the cupyx backend keeps ``cupyx.scipy.ndimage.spline_filter1d`` there).

Every pass materialises its intermediate volume (:func:`array_scratch_bytes`). Importing
this module needs neither CuPy nor a GPU.
"""

from __future__ import annotations

import math

import numpy as np

from ..interpolation import Interpolation, working_dtype
from ..onto import AffineSampling
from ..spline_states import missing_states_error
from ..tables import CUBIC_POLE, SamplingTables, as_3d, prefilter_constants, smoothing_passes
from ._common import (check_source_block, coefficient_maps, gathered_states, integer_limits, is_smoothed,
                      kept_coefficient_rows, label_view_dtype, smoothing_sizes, uses_label_arithmetic, view_3d)

#: Output voxels scored at once by the label path: its 8 taps' labels and float64
#: weights and the running scores take about 150 bytes per voxel, so steps stay near 300 MiB.
LABEL_BLOCK_VOXELS = 1 << 21


def label_step_bytes(itemsize: int) -> int:
    """Bytes per voxel of a label step: 8 taps' labels and float64 weights, then while scoring
    the best label (twice while it is replaced), best and current scores (float64, one more
    while replaced) and a few boolean masks."""
    return 8 * (itemsize + 8) + 2 * itemsize + 4 * 8 + 16
#: The interpolating cubic B-spline's order (SciPy's ``order=3``).
SPLINE_ORDER = 3


def _along(vector, axis: int):
    """A 1-D array shaped to broadcast along ``axis`` of a 3-D array."""
    shape = [1, 1, 1]
    shape[axis] = vector.shape[0]
    return vector.reshape(shape)


def tap_first(xp, w, x):
    """The first tap of a weighted sum, ``w * x``; 0 where ``w`` is 0 (``gr_tap_first``)."""
    return xp.where(w == 0, xp.zeros((), dtype=w.dtype), w * x)


def tap_next(xp, acc, w, x):
    """``acc + w * x``, or ``acc`` where ``w`` is 0: a zero-weight tap never contributes
    (``gr_tap_next``; no 0 * inf)."""
    return xp.where(w == 0, acc, acc + w * x)


def separable_pass(xp, values, table, axis: int, work):
    """One pass: ``sum_t w[:, t] * values[index[:, t]]`` along ``axis``, taps left to right,
    zero-weight taps left out."""
    index = xp.asarray(table.index)
    weight = xp.asarray(np.ascontiguousarray(table.weight, dtype=work))
    acc = tap_first(xp, _along(weight[:, 0], axis), xp.take(values, index[:, 0], axis=axis))
    for t in range(1, table.taps):
        acc = tap_next(xp, acc, _along(weight[:, t], axis), xp.take(values, index[:, t], axis=axis))
    return acc


def smooth_with(xp, source, tables: SamplingTables, work):
    """Anti-aliasing with array operations: the Gaussian tables of
    :func:`~gpuresample.tables.smoothing_passes` run through :func:`separable_pass` axis by
    axis (axes in order, each pass rounded to the working dtype ``work``), margins cropped;
    ``source`` itself when no axis is smoothed. The same sums in the same order as the
    compiled loops and the kernels, so the same bits."""
    passes = smoothing_passes(tables)
    if all(p is None for p in passes):
        return source
    values = view_3d(source).astype(work)
    offset = values.ndim - len(passes)
    for axis, table in enumerate(passes):
        if table is not None:
            values = separable_pass(xp, values, table, axis + offset, work)
    return values[0] if source.ndim == 2 else values


def store(xp, result, out3) -> None:
    """Write a working-dtype result into ``out3`` as the compiled loops do: rint and clip for integers."""
    round_to_int, lo, hi = integer_limits(out3.dtype)
    if round_to_int:
        result = xp.clip(xp.rint(result).astype(np.float64), lo, hi)
    elif out3.dtype == np.float16 and result.dtype == np.float64:
        result = result.astype(np.float32)  # the compiled loops' float32 buffer in between
    out3[...] = result.astype(out3.dtype)


def spline_coefficients(xp, ndi, values3, axes, work, slab_axis=0, exact=False):
    """Cubic B-spline coefficients over each table's kept rows, in the working dtype.

    Along ``slab_axis`` (the axis slabs cut: array axis 0), and along every axis when
    ``exact``, the prefilter is the compiled loops' recursion written with array operations
    (:func:`recursive_prefilter`), so a slab can continue the whole line's recursion from its
    states and equal the whole run bit for bit; the other axes use ``ndi.spline_filter1d``.
    """
    maps = coefficient_maps(axes)
    source = values3.astype(np.float32) if values3.dtype == np.float16 else values3
    coef = source[xp.ix_(*(xp.asarray(m) for m in maps))].astype(work)
    for axis, table in enumerate(axes):
        if not table.is_cubic:
            continue
        if exact or axis == slab_axis:
            coef = recursive_prefilter(xp, coef, axis, axes, maps, work)
            continue
        first, stop = table.coefficient_rows()
        data_rows = np.clip(np.arange(table.pad_before + table.source_length + table.pad_after) - table.pad_before,
                            0, table.source_length - 1) + (table.pad_before - first)
        extended = xp.take(coef, xp.asarray(data_rows), axis=axis).astype(np.float64)
        filtered = ndi.spline_filter1d(extended, SPLINE_ORDER, axis=axis, output=np.float64, mode="mirror")
        keep = [slice(None)] * 3
        keep[axis] = slice(first, stop)
        coef = filtered[tuple(keep)].astype(work)
    return coef


def recursive_prefilter(xp, coef, axis, axes, maps, work):
    """The prefilter along ``axis`` as the compiled loops compute it, plane by plane.

    Over the whole extended line in float64 with mirror boundaries: gain, causal initial
    value, causal pass, anti-causal pass; the kept rows stored in the working dtype. Same
    float64 operations in the same order (separate array operations: no fused
    multiply-add), so the coefficients equal the compiled loops' and the kernels' bit for
    bit. A cut slab table (``is_cut``) continues the whole line's recursion from its
    ``states`` instead (docs/design.md §2).
    """
    table = axes[axis]
    first, stop = table.coefficient_rows()
    n_ext = table.extended_length
    gain, z_last = prefilter_constants(n_ext, CUBIC_POLE)
    z = CUBIC_POLE
    view = xp.moveaxis(coef, axis, 0)
    result = xp.empty(view.shape, work)
    if table.is_cut:
        if table.states is None:
            raise missing_states_error(table)
        causal, anticausal = (xp.asarray(gathered_states(s, axes, maps, axis)) for s in table.states)
        kept = stop - first
        lines = xp.empty(view.shape, np.float64)
        lines[0] = causal
        for q in range(1, kept):
            lines[q] = causal_step(view[q].astype(np.float64) * gain, z, lines[q - 1])
        y = anticausal
        result[kept - 1] = y
        for q in range(kept - 2, -1, -1):
            y = anticausal_step(z, y, lines[q])
            result[q] = y
        return xp.moveaxis(result, 0, axis)
    data_rows = np.clip(np.arange(n_ext) - table.pad_before, 0, table.source_length - 1) + (table.pad_before - first)
    ext = xp.take(view, xp.asarray(data_rows), axis=0).astype(np.float64) * gain
    if n_ext > 1:
        total = causal_sum_start(ext[0], ext[n_ext - 1], z_last)
        z_i = z
        for i in range(1, n_ext - 1):
            total = causal_sum_add(total, z_i, ext[i], ext[n_ext - 1 - i], z_last)
            z_i *= z
        ext[0] = causal_start(total, z_last)
        for i in range(1, n_ext):
            ext[i] = causal_step(ext[i], z, ext[i - 1])
        ext[n_ext - 1] = anticausal_start(z, ext[n_ext - 2], ext[n_ext - 1])
        for i in range(n_ext - 2, -1, -1):
            ext[i] = anticausal_step(z, ext[i + 1], ext[i])
    result[...] = ext[first:stop]
    return xp.moveaxis(result, 0, axis)


# The recursion's steps (kernels/gr_spline.cuh's, one lane each there), written once for the
# prefilter above and the chunked pre-pass below: each operation a separate array operation
# (no fused multiply-add), so both equal the compiled loops and the kernels bit for bit.

def causal_sum_start(front, back, z_last):
    return front + z_last * back


def causal_sum_add(total, z_i, front, back, z_last):
    return total + z_i * (front + z_last * back)


def causal_start(total, z_last):
    return total / (1.0 - z_last * z_last)


def causal_step(value, z, previous):
    return value + z * previous


def anticausal_start(z, before, last):
    return (z * before + last) * z / (z * z - 1.0)


def anticausal_step(z, after, causal):
    return z * (after - causal)


def _scaled(source, row, gain):
    """Row ``row`` of ``source`` in float64, times the gain (``ext`` above)."""
    return source[int(row)].astype(np.float64) * gain


def prepass_initial_sum(xp, source, front, back, i_start, n_ext, pole, powers, acc, block=None) -> None:
    """The pre-pass's pass 1 as array operations: adds rows ``i_start + q`` (source rows
    ``front[q]``, mirrors ``back[q]``) to the causal initial sums ``acc`` (the compiled
    loops' ``causal_initial_sum``; ``block`` is not used)."""
    gain, z_last = prefilter_constants(n_ext, pole)
    for q in range(len(front)):
        i = i_start + q
        if i == 0:
            acc[...] = causal_sum_start(_scaled(source, front[q], gain), _scaled(source, back[q], gain), z_last)
        elif i <= n_ext - 2:
            acc[...] = causal_sum_add(acc, float(powers[i]), _scaled(source, front[q], gain),
                                      _scaled(source, back[q], gain), z_last)


def _causal_rows(xp, source, rows, i_start, n_ext, pole, acc, c_in):
    """A segment's causal values, one float64 plane per row (the loops' ``lines``)."""
    gain, z_last = prefilter_constants(n_ext, pole)
    causal = xp.empty((len(rows), acc.shape[0]), np.float64)
    for q in range(len(rows)):
        if i_start + q == 0:
            causal[q] = causal_start(acc, z_last)
        else:
            causal[q] = causal_step(_scaled(source, rows[q], gain), pole, c_in if q == 0 else causal[q - 1])
    return causal


def prepass_causal_segment(xp, source, rows, i_start, n_ext, pole, acc, c_in, c_out, lines=None, block=None):
    """Pass 2 over one segment from ``c_in`` (``acc`` at row 0): its last causal values into
    ``c_out`` (the compiled loops' ``causal_segment``)."""
    c_out[...] = _causal_rows(xp, source, rows, i_start, n_ext, pole, acc, c_in)[-1]


def prepass_anticausal_segment(xp, source, rows, i_start, n_ext, pole, acc, c_in, y_next, lines, block, dest,
                               dest_rows) -> None:
    """Pass 3 over one segment: its causal values again, then the anti-causal ones from
    ``y_next`` (updated); row ``q`` into ``dest[dest_rows[q]]`` where that is >= 0 (the
    compiled loops' ``anticausal_segment``)."""
    causal = _causal_rows(xp, source, rows, i_start, n_ext, pole, acc, c_in)
    for q in range(len(rows) - 1, -1, -1):
        if i_start + q == n_ext - 1:
            y_next[...] = anticausal_start(pole, c_in if q == 0 else causal[q - 1], causal[q])
        else:
            y_next[...] = anticausal_step(pole, y_next, causal[q])
        if dest_rows[q] >= 0:
            dest[int(dest_rows[q])] = y_next


def label_block(xp, src3, axes, out3) -> None:
    """Per-label linear weights over the 2x2x2 taps, arg-max, ties to the lower label.

    Scores each tap's label at its first tap: that tap's float64 weight ``(w0 * w1) * w2``
    plus the later equal taps', in tap order, exactly the compiled loops' sums.
    """
    taps = [(a, b, c) for a in range(axes[0].taps) for b in range(axes[1].taps) for c in range(axes[2].taps)]
    i1 = [xp.asarray(axes[1].index[:, b]) for b in range(axes[1].taps)]
    i2 = [xp.asarray(axes[2].index[:, c]) for c in range(axes[2].taps)]
    w1 = [xp.asarray(axes[1].weight[:, b]) for b in range(axes[1].taps)]
    w2 = [xp.asarray(axes[2].weight[:, c]) for c in range(axes[2].taps)]
    plane = axes[1].n_out * axes[2].n_out
    rows = max(1, LABEL_BLOCK_VOXELS // plane)
    for start in range(0, axes[0].n_out, rows):
        stop = min(start + rows, axes[0].n_out)
        i0 = [xp.asarray(axes[0].index[start:stop, a]) for a in range(axes[0].taps)]
        w0 = [xp.asarray(axes[0].weight[start:stop, a]) for a in range(axes[0].taps)]
        labels, weights = [], []
        for a, b, c in taps:
            labels.append(src3[xp.ix_(i0[a], i1[b], i2[c])])
            wab = _along(w0[a], 0) * _along(w1[b], 1)
            weights.append(wab * _along(w2[c], 2))
        out3[start:stop] = arg_max_label(xp, labels, weights)


def _label_equal(xp, a, b):
    """Labels compare as values; NaN labels are one label (``gr_label_equal``)."""
    if a.dtype.kind != "f":
        return a == b
    return (a == b) | (xp.isnan(a) & xp.isnan(b))


def _label_less(xp, a, b):
    """``a < b`` with NaN after every number (``gr_label_less``)."""
    if a.dtype.kind != "f":
        return a < b
    return (a < b) | (~xp.isnan(a) & xp.isnan(b))


def arg_max_label(xp, labels, weights):
    """Per voxel, the label of the highest score (``labels[k]`` scored ``weights[k]`` plus the
    later equal labels' weights); ties to the lower label."""
    best_label = best_score = have = None
    for k, label in enumerate(labels):
        first = xp.ones(label.shape, dtype=bool)
        for q in range(k):
            first &= ~_label_equal(xp, labels[q], label)
        score = weights[k]
        for q in range(k + 1, len(labels)):
            score = score + xp.where(_label_equal(xp, labels[q], label), weights[q], 0.0)
        if best_label is None:
            best_label, best_score, have = label.copy(), score, first
            continue
        better = first & (~have | (score > best_score) | ((score == best_score) & _label_less(xp, label, best_label)))
        best_label = xp.where(better, label, best_label)
        best_score = xp.where(better, score, best_score)
        have = have | first
    return best_label


def smoothing_scratch_bytes(tables: SamplingTables, in_dtype) -> int:
    """Bytes :func:`smooth_with` holds at its peak: the block's working copy, then while a pass
    runs its input and four arrays of its result's size (the gathered tap, a product, a sum
    and the next sum). 0 when no axis is smoothed."""
    if not is_smoothed(tables):
        return 0
    block, passes = smoothing_sizes(tables)
    peak, previous = 0, block
    for size in passes:
        peak = max(peak, previous + 4 * size)
        previous = size
    return peak * working_dtype(in_dtype).itemsize


#: Output voxels an oblique target computes per step (``_affine_xp``): bounds the per-voxel
#: temporaries (positions, taps, weights: about ``AFFINE_BYTES_PER_VOXEL`` bytes each) to a
#: few hundred MiB.
AFFINE_BLOCK_VOXELS = 1 << 20
#: Bytes of temporaries per voxel of a step (float64 positions and weights, int64 rows,
#: eight label/weight pairs for labels).
AFFINE_BYTES_PER_VOXEL = 384


def array_scratch_bytes(tables, in_dtype, out_dtype) -> int:
    """Bytes the array code needs for a block besides its input and output: the anti-aliasing
    passes, or after them the smoothed block and the largest pass intermediates, whichever is
    more (per-axis tables); an oblique target's step of temporaries and its coefficients
    (``_affine_xp.affine_with``). The memory model of the cupyx backend and of the CPU without
    its compiled loops."""
    in_dtype = np.dtype(in_dtype)
    if isinstance(tables, AffineSampling):
        step = min(math.prod(tables.output_shape), AFFINE_BLOCK_VOXELS)
        total = step * AFFINE_BYTES_PER_VOXEL
        if tables.is_cubic:  # the coefficients, and the prefilter's float64 copy
            total += 2 * math.prod(kept_coefficient_rows(t) for t in tables.lines_3d()) * 8
        elif in_dtype == np.float16:
            first, stop = tables.input_rows
            total += (stop - first) * math.prod(t.input_stop - t.input_start for t in tables.lines[1:]) * 4
        return total
    work = working_dtype(in_dtype).itemsize
    axes = as_3d(tables)
    if uses_label_arithmetic(tables, in_dtype):
        plane = axes[1].n_out * axes[2].n_out
        step = min(axes[0].n_out, max(1, LABEL_BLOCK_VOXELS // max(plane, 1))) * plane
        converted = math.prod(tables.output_shape) * in_dtype.itemsize if np.dtype(out_dtype) != in_dtype else 0
        return step * label_step_bytes(in_dtype.itemsize) + converted  # + labels picked before converting
    lengths = [t.line_length for t in axes]
    if tables.interpolation is Interpolation.CUBIC:
        lengths = [kept_coefficient_rows(t) for t in axes]
        longest = max(t.pad_before + t.source_length + t.pad_after for t in axes)
        extended = max(math.prod(lengths) // max(lengths) * longest, 1)
        total = 2 * extended * 8 + 2 * math.prod(lengths) * work  # coefficients and the prefilter's result
        if tables.axes[0].is_cut:  # a slab's gathered states
            total += 2 * (math.prod(lengths) // max(lengths[len(axes) - tables.ndim], 1)) * 8
        if is_smoothed(tables):  # the smoothed block the coefficients are gathered from
            total += smoothing_sizes(tables)[1][-1] * work
    else:
        total = math.prod(lengths) * work
    largest = 0
    for axis in tables.order:
        lengths[axis] = axes[axis].n_out
        largest = max(largest, math.prod(lengths) * work)
    return max(total + 3 * largest, smoothing_scratch_bytes(tables, in_dtype))


def resample_with(xp, ndi, source, tables: SamplingTables, out, exact=False) -> None:
    """Fill ``out`` from ``source`` with array module ``xp`` and its ``ndimage`` ``ndi``.

    The cupyx backend passes CuPy and ``cupyx.scipy.ndimage``; the CPU backend's array path
    NumPy and ``scipy.ndimage`` with ``exact`` (the cubic prefilter's recursion along every
    axis: see the module doc).
    """
    check_source_block(source, tables)
    axes = as_3d(tables)
    out3 = view_3d(out)
    if uses_label_arithmetic(tables, source.dtype):
        dtype = source.dtype
        view = label_view_dtype(dtype)
        target = out3 if out3.dtype == dtype else xp.empty(out3.shape, dtype)
        label_block(xp, view_3d(source).view(view), axes, target.view(view))
        if target is not out3:
            out3[...] = target
        return
    work = working_dtype(source.dtype)
    values = view_3d(smooth_with(xp, source, tables, work))
    if tables.interpolation is Interpolation.CUBIC:
        values = spline_coefficients(xp, ndi, values, axes, work, slab_axis=len(axes) - tables.ndim, exact=exact)
        axes = tuple(t.coefficient_indexed() for t in axes)
    values = values.astype(work, copy=False)
    for axis in tables.order:
        values = separable_pass(xp, values, axes[axis], axis, work)
    store(xp, values, out3)


__all__ = ["resample_with", "smooth_with", "smoothing_scratch_bytes", "spline_coefficients", "recursive_prefilter",
           "label_block", "arg_max_label", "separable_pass", "store", "array_scratch_bytes", "LABEL_BLOCK_VOXELS",
           "SPLINE_ORDER", "prepass_initial_sum", "prepass_causal_segment", "prepass_anticausal_segment"]
