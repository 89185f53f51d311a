"""Backend ``cupyx``: CuPy arrays through CuPy array operations and ``cupyx.scipy.ndimage``.

The fallback on the GPU where our CUDA kernels cannot run (their sources missing, NVRTC
unusable). It consumes the same sampling tables as every backend: separable passes are
CuPy gathers (``take``) and elementwise products and sums in the working dtype, in the
CPU backend's pass order and tap order, so nearest, linear and label agree with the CPU
bit for bit. The cubic prefilter along axis 0 (the axis slabs cut) is the CPU's recursion
written with array operations, so it agrees bit for bit and chunked runs equal whole ones;
along the other axes it is ``cupyx.scipy.ndimage.spline_filter1d`` (float64, mirror
boundaries on the extended line), which agrees with the CPU's to rounding.
Anti-aliasing is ``cupyx.scipy.ndimage.gaussian_filter1d`` (agrees to rounding).

Every pass materialises its intermediate volume, so this backend needs more device memory
than the kernels (see :func:`scratch_bytes`). Importing this module needs neither CuPy nor
a GPU.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _cupy
from ..interpolation import Interpolation, working_dtype
from ..onto import AffineSampling
from ..spline_states import missing_states_error
from ..tables import CUBIC_POLE, SamplingTables, as_3d, prefilter_constants
from ._affine_xp import affine_scratch_bytes, affine_with
from ._common import (check_source_block, coefficient_maps, integer_limits, kept_coefficient_rows,
                      label_view_dtype, smooth, uses_label_arithmetic, view_3d)
from .base import BackendUnavailable, DeviceBackend

#: Output voxels scored at once by the label path: its 8 taps' labels and float64
#: weights take about 128 bytes per voxel, so blocks stay near 256 MiB.
LABEL_BLOCK_VOXELS = 1 << 21
#: The interpolating cubic B-spline's order (SciPy's ``order=3``).
SPLINE_ORDER = 3


def _cupy_module():
    return _cupy.import_cupy()


def _ndimage():
    from cupyx.scipy import ndimage
    return ndimage


def smooth_on_device(source, tables: SamplingTables, work, ndi=None):
    """Anti-aliasing on the GPU with ``cupyx.scipy.ndimage`` (or ``ndi``), as ``_common.smooth``."""
    return smooth(source, tables, work, ndi or _ndimage())


def _along(vector, axis: int):
    """A 1-D array shaped to broadcast along ``axis`` of a 3-D array."""
    shape = [1, 1, 1]
    shape[axis] = vector.shape[0]
    return vector.reshape(shape)


def separable_pass(cupy, values, table, axis: int, work):
    """One pass: ``sum_t w[:, t] * values[index[:, t]]`` along ``axis``, taps left to right."""
    index = cupy.asarray(table.index)
    weight = cupy.asarray(np.ascontiguousarray(table.weight, dtype=work))
    acc = _along(weight[:, 0], axis) * cupy.take(values, index[:, 0], axis=axis)
    for t in range(1, table.taps):
        acc += _along(weight[:, t], axis) * cupy.take(values, index[:, t], axis=axis)
    return acc


def store(cupy, result, out3) -> None:
    """Write a working-dtype result into ``out3`` as the CPU does: rint and clip for integers."""
    round_to_int, lo, hi = integer_limits(out3.dtype)
    if round_to_int:
        result = cupy.clip(cupy.rint(result).astype(np.float64), lo, hi)
    elif out3.dtype == np.float16 and result.dtype == np.float64:
        result = result.astype(np.float32)  # the CPU's float32 buffer in between
    out3[...] = result.astype(out3.dtype)


def spline_coefficients(cupy, ndi, values3, axes, work, slab_axis=0):
    """Cubic B-spline coefficients over each table's kept rows, in the working dtype.

    Along ``slab_axis`` (the axis slabs cut: array axis 0) the prefilter is the CPU's
    recursion written with array operations (:func:`recursive_prefilter`), so a slab can
    continue the whole line's recursion from its states and equal the whole run bit for
    bit; the other axes use ``spline_filter1d``.
    """
    maps = coefficient_maps(axes)
    source = values3.astype(np.float32) if values3.dtype == np.float16 else values3
    coef = source[cupy.ix_(*(cupy.asarray(m) for m in maps))].astype(work)
    for axis, table in enumerate(axes):
        if not table.is_cubic:
            continue
        if axis == slab_axis:
            coef = recursive_prefilter(cupy, coef, axis, axes, maps, work)
            continue
        first, stop = table.coefficient_rows()
        data_rows = np.clip(np.arange(table.pad_before + table.source_length + table.pad_after) - table.pad_before,
                            0, table.source_length - 1) + (table.pad_before - first)
        extended = cupy.take(coef, cupy.asarray(data_rows), axis=axis).astype(np.float64)
        filtered = ndi.spline_filter1d(extended, SPLINE_ORDER, axis=axis, output=np.float64, mode="mirror")
        keep = [slice(None)] * 3
        keep[axis] = slice(first, stop)
        coef = filtered[tuple(keep)].astype(work)
    return coef


def recursive_prefilter(xp, coef, axis, axes, maps, work):
    """The prefilter along ``axis`` as the CPU loops' ``_filter_lines`` computes it, plane by plane.

    Same float64 operations in the same order (separate array operations: no fused
    multiply-add), so the coefficients equal the CPU's bit for bit. A cut slab table
    (``is_cut``) continues the whole line's recursion from its ``states`` instead.
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
        from .kernels import gathered_states

        causal, anticausal = (xp.asarray(gathered_states(s, axes, maps, axis)) for s in table.states)
        kept = stop - first
        lines = xp.empty(view.shape, np.float64)
        lines[0] = causal
        for q in range(1, kept):
            lines[q] = view[q].astype(np.float64) * gain + z * lines[q - 1]
        y = anticausal
        result[kept - 1] = y
        for q in range(kept - 2, -1, -1):
            y = z * (y - lines[q])
            result[q] = y
        return xp.moveaxis(result, 0, axis)
    data_rows = np.clip(np.arange(n_ext) - table.pad_before, 0, table.source_length - 1) + (table.pad_before - first)
    ext = xp.take(view, xp.asarray(data_rows), axis=0).astype(np.float64) * gain
    if n_ext > 1:
        total = ext[0] + z_last * ext[n_ext - 1]
        z_i = z
        for i in range(1, n_ext - 1):
            total = total + z_i * (ext[i] + z_last * ext[n_ext - 1 - i])
            z_i *= z
        ext[0] = total / (1.0 - z_last * z_last)
        for i in range(1, n_ext):
            ext[i] = ext[i] + z * ext[i - 1]
        ext[n_ext - 1] = (z * ext[n_ext - 2] + ext[n_ext - 1]) * z / (z * z - 1.0)
        for i in range(n_ext - 2, -1, -1):
            ext[i] = z * (ext[i + 1] - ext[i])
    result[...] = ext[first:stop]
    return xp.moveaxis(result, 0, axis)


def label_block(cupy, src3, axes, out3) -> None:
    """Per-label linear weights over the 2x2x2 taps, arg-max, ties to the lower label.

    Scores each tap's label at its first tap: that tap's float64 weight ``(w0 * w1) * w2``
    plus the later equal taps', in tap order, exactly the CPU's sums.
    """
    taps = [(a, b, c) for a in range(axes[0].taps) for b in range(axes[1].taps) for c in range(axes[2].taps)]
    i1 = [cupy.asarray(axes[1].index[:, b]) for b in range(axes[1].taps)]
    i2 = [cupy.asarray(axes[2].index[:, c]) for c in range(axes[2].taps)]
    w1 = [cupy.asarray(axes[1].weight[:, b]) for b in range(axes[1].taps)]
    w2 = [cupy.asarray(axes[2].weight[:, c]) for c in range(axes[2].taps)]
    plane = axes[1].n_out * axes[2].n_out
    rows = max(1, LABEL_BLOCK_VOXELS // plane)
    for start in range(0, axes[0].n_out, rows):
        stop = min(start + rows, axes[0].n_out)
        i0 = [cupy.asarray(axes[0].index[start:stop, a]) for a in range(axes[0].taps)]
        w0 = [cupy.asarray(axes[0].weight[start:stop, a]) for a in range(axes[0].taps)]
        labels, weights = [], []
        for a, b, c in taps:
            labels.append(src3[cupy.ix_(i0[a], i1[b], i2[c])])
            wab = _along(w0[a], 0) * _along(w1[b], 1)
            weights.append(wab * _along(w2[c], 2))
        out3[start:stop] = _arg_max_label(cupy, labels, weights)


def _arg_max_label(cupy, labels, weights):
    best_label = best_score = have = None
    for k, label in enumerate(labels):
        first = cupy.ones(label.shape, dtype=bool)
        for q in range(k):
            first &= labels[q] != label
        score = weights[k]
        for q in range(k + 1, len(labels)):
            score = score + cupy.where(labels[q] == label, weights[q], 0.0)
        if best_label is None:
            best_label, best_score, have = label.copy(), score, first
            continue
        better = first & (~have | (score > best_score) | ((score == best_score) & (label < best_label)))
        best_label = cupy.where(better, label, best_label)
        best_score = cupy.where(better, score, best_score)
        have = have | first
    return best_label


def cupyx_scratch_bytes(tables: SamplingTables, in_dtype, out_dtype) -> int:
    """Device bytes a block needs besides its input and output: the largest pass intermediates."""
    in_dtype = np.dtype(in_dtype)
    work = working_dtype(in_dtype).itemsize
    axes = as_3d(tables)
    if uses_label_arithmetic(tables, in_dtype):
        return LABEL_BLOCK_VOXELS * 8 * (8 + 2 * in_dtype.itemsize)
    lengths = [t.line_length for t in axes]
    if tables.interpolation is Interpolation.CUBIC:
        lengths = [kept_coefficient_rows(t) for t in axes]
        longest = max(t.pad_before + t.source_length + t.pad_after for t in axes)
        extended = max(math.prod(lengths) // max(lengths) * longest, 1)
        total = 2 * extended * 8 + math.prod(lengths) * work
        if tables.axes[0].is_cut:  # a slab's gathered states
            total += 2 * (math.prod(lengths) // max(lengths[len(axes) - tables.ndim], 1)) * 8
    else:
        total = math.prod(lengths) * work
    largest = 0
    for axis in tables.order:
        lengths[axis] = axes[axis].n_out
        largest = max(largest, math.prod(lengths) * work)
    return total + 3 * largest


def resample_with(xp, ndi, source, tables: SamplingTables, out) -> None:
    """Fill ``out`` from ``source`` with array module ``xp`` and its ``ndimage`` ``ndi``.

    The backend passes CuPy and ``cupyx.scipy.ndimage``; NumPy and ``scipy.ndimage`` run
    the same code on the CPU (the tests do, to check it where there is no GPU).
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
    values = view_3d(smooth(source, tables, work, ndi))
    if tables.interpolation is Interpolation.CUBIC:
        values = spline_coefficients(xp, ndi, values, axes, work, slab_axis=len(axes) - tables.ndim)
        axes = tuple(t.coefficient_indexed() for t in axes)
    values = values.astype(work, copy=False)
    for axis in tables.order:
        values = separable_pass(xp, values, axes[axis], axis, work)
    store(xp, values, out3)


class CupyxBackend(DeviceBackend):
    """CuPy arrays in, CuPy arrays out, through CuPy operations and ``cupyx.scipy.ndimage``."""

    name = "cupyx"

    def unavailable_reason(self) -> str | None:
        try:
            _cupy_module()
        except BackendUnavailable as exc:
            return str(exc)
        try:
            import cupyx.scipy.ndimage  # noqa: F401
        except ImportError as exc:
            return f"cupyx.scipy.ndimage cannot be imported: {exc}"
        return None

    def resample_block(self, source, tables: SamplingTables, out) -> None:
        if isinstance(tables, AffineSampling):  # an oblique target (SPEC §8)
            affine_with(_cupy_module(), _ndimage(), source, tables, out)
            return
        resample_with(_cupy_module(), _ndimage(), source, tables, out)

    def scratch_bytes(self, tables: SamplingTables, in_dtype, out_dtype) -> int:
        if isinstance(tables, AffineSampling):
            return affine_scratch_bytes(tables, in_dtype)
        return cupyx_scratch_bytes(tables, in_dtype, out_dtype)


__all__ = ["CupyxBackend", "resample_with", "smooth_on_device", "cupyx_scratch_bytes"]
