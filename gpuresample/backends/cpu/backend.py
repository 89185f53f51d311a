"""CPU backend: NumPy arrays, the compiled CPU loops on every core.

The loops come from the compiled module (``_loops`` says whether it loaded); without it
every block runs the NumPy/SciPy array path, the array code of the cupyx backend
(``_array``, ``_affine_xp``) on NumPy, which gives the same bits (docs/design.md §2).
"""

from __future__ import annotations

import functools
import math
from dataclasses import replace

import numpy as np

from ...interpolation import Interpolation, working_dtype
from ...onto import AffineSampling
from ...spline_states import filter_axis0_bytes, plain_axis0, prepass_held_and_peak
from ...tables import AxisTable, SamplingTables, as_3d, smoothing_passes
from .. import _loops
from .._affine_xp import affine_with
from .._array import array_scratch_bytes, resample_with, smooth_with
from .._common import (check_source_block, is_smoothed, label_view_dtype, smoothing_sizes, uses_label_arithmetic,
                      view_3d)
from ._affine import CUBIC_WEIGHTS, LABEL_TAPS, resample_affine_block
from ._cubic import cubic_layout, cubic_streamed, output_view, spline_coefficients, table_bytes
from .._spline_states import filter_axis0
from ..base import Backend

#: What :func:`gpuresample.backends.clear_caches` resets here: which CPU loops run.
clear_caches = _loops.clear_caches


class CpuBackend(Backend):
    """NumPy in, NumPy out, on the CPU. Always available."""

    name = "cpu"
    on_device = False

    def unavailable_reason(self) -> str | None:
        return None

    def threads(self) -> int:
        return _loops.threads()

    def free_bytes(self) -> int | None:
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return None

    def scratch_bytes(self, tables: SamplingTables, in_dtype, out_dtype) -> int:
        """Bytes :meth:`resample_block` allocates besides its input and output blocks."""
        return cpu_scratch_bytes(tables, in_dtype, out_dtype, self.threads())

    def prepass_bytes(self, tables: SamplingTables, in_dtype, input_shape, staged: bool = False,
                      rows_in_place: bool = False) -> tuple:
        """The cubic pre-pass on the host: the compiled loops', else whole NumPy arrays'."""
        return prepass_held_and_peak(tables, in_dtype, input_shape, self.threads(), rows_in_place,
                                     whole_arrays=not _loops.is_compiled())

    def smooth(self, block, tables: SamplingTables, work):
        return smooth(np.asarray(block), tables, work)

    def resample_block(self, source, tables: SamplingTables, out) -> None:
        """Resample one block with the compiled loops, else with the array path. Blocks from
        several threads run side by side (the loops create their threads per call)."""
        source = np.asarray(source)
        check_source_block(source, tables)
        if not _loops.is_compiled():
            resample_array_block(source, tables, out)
            return
        if isinstance(tables, AffineSampling):  # an oblique target (docs/design.md §1)
            resample_affine_block(source, tables, out)
            return
        if uses_label_arithmetic(tables, source.dtype):
            _label(source, tables, out)
            return
        work = working_dtype(source.dtype)
        values = smooth(source, tables, work)
        if tables.axes[0].is_cut:  # a cubic slab: axis 0's prefilter from the whole line's states
            values, tables = filter_axis0(values, tables, work, self.threads())
        values3 = view_3d(values)
        if values3.dtype == np.float16:
            values3 = values3.astype(np.float32)
        axes = as_3d(tables)
        if tables.interpolation is Interpolation.CUBIC:
            layout = cubic_layout(axes, tables.order, work.itemsize, self.threads())
            if layout.streamed:
                cubic_streamed(values3, axes, tables.order, layout, work, out)
                return
            values3 = spline_coefficients(values3, axes, work)
            axes = tuple(t.coefficient_indexed() for t in axes)
        _separable(values3, axes, tables.order, work, out)


def smooth(source: np.ndarray, tables: SamplingTables, work) -> np.ndarray:
    """Anti-aliasing: the Gaussian tables of :func:`~gpuresample.tables.smoothing_passes` through
    ``separable3`` (axes 0, 1, 2 in order; an axis without smoothing passes its rows through a
    one-tap table of weight 1, which changes no value), margins cropped, in the working dtype
    ``work``; ``source`` itself when no axis is smoothed. On the array path the same tables
    through its passes (``_array.smooth_with``): the same bits."""
    passes = smoothing_passes(tables)
    if all(p is None for p in passes):
        return source
    if not _loops.is_compiled():
        return smooth_with(np, source, tables, work)
    src3 = view_3d(source)
    axes = (None,) * (3 - len(passes)) + passes
    axes = tuple(t if t is not None else _identity_table(n) for t, n in zip(axes, src3.shape))
    out = np.empty(tuple(t.n_out for t in axes), work)
    _separable(src3, axes, (0, 1, 2), work, out)  # out in the working dtype: written as summed
    return out[0] if source.ndim == 2 else out


@functools.lru_cache(maxsize=64)
def _identity_table(n: int) -> AxisTable:
    """Rows ``[0, n)`` unchanged: one tap of weight 1 each."""
    index = np.arange(n, dtype=np.int64)[:, None]
    weight = np.ones((n, 1))
    index.flags.writeable = weight.flags.writeable = False
    return AxisTable(index, weight, 0, n)


def smooth_scratch_bytes(tables: SamplingTables, in_dtype, threads: int) -> int:
    """Bytes :func:`smooth` allocates with the compiled loops: the smoothed block, a float32 copy
    of float16 input, the per-thread planes of ``separable3`` and the weights in the working
    dtype (0 when no axis is smoothed)."""
    if not is_smoothed(tables):
        return 0
    in_dtype = np.dtype(in_dtype)
    work = working_dtype(in_dtype).itemsize
    block, passes = smoothing_sizes(tables)
    shape = [1] * (3 - tables.ndim) + [t.input_stop - t.input_start for t in tables.axes]
    rows1 = tables.axes[-2].source_length if tables.axes[-2].sigma > 0 else shape[1]
    weights = sum(shape) + sum(t.n_out * t.taps for t in smoothing_passes(tables) if t is not None)
    total = (passes[-1] + threads * (shape[1] * shape[2] + rows1 * shape[2]) + weights) * work
    if in_dtype == np.float16:
        total += block * 4
    return total


def _separable(values: np.ndarray, axes, order, work, out: np.ndarray) -> None:
    values3 = view_3d(values)
    if values3.dtype == np.float16:
        values3 = values3.astype(np.float32)
    out3, target, dst, round_to_int, lo, hi = output_view(out, order)
    args = []
    for axis in order:
        args += [np.ascontiguousarray(axes[axis].index), np.ascontiguousarray(axes[axis].weight, dtype=work)]
    src = values3.transpose(order)
    threads = _loops.threads()
    planes = np.empty((threads, src.shape[1], src.shape[2]), work)
    planes2 = np.empty((threads, dst.shape[1], src.shape[2]), work)
    _loops.current().separable3(src, *args, dst, round_to_int, lo, hi, planes, planes2)
    if target is not out3:
        out3[...] = target


def resample_array_block(source: np.ndarray, tables: SamplingTables, out: np.ndarray) -> None:
    """A block on the array path: the cupyx backend's array code on NumPy and ``scipy.ndimage``,
    the cubic prefilter's recursion along every axis (so cubic gives the compiled loops' bits).
    NaN and inf travel silently, as through the compiled loops (no NumPy floating-point warnings).
    ``scipy.ndimage`` is imported here, only when the array path runs."""
    from scipy import ndimage

    with np.errstate(all="ignore"):
        if isinstance(tables, AffineSampling):
            affine_with(np, ndimage, source, tables, out, exact=True)
        else:
            resample_with(np, ndimage, source, tables, out, exact=True)


def cpu_scratch_bytes(tables: SamplingTables, in_dtype, out_dtype, threads: int) -> int:
    """Every buffer the CPU backend allocates for a block besides its input and output."""
    if not _loops.is_compiled():  # the array code: its one model (the cupyx backend's)
        return array_scratch_bytes(tables, in_dtype, out_dtype)
    in_dtype, out_dtype = np.dtype(in_dtype), np.dtype(out_dtype)
    if isinstance(tables, AffineSampling):  # resample_affine_block: per-thread taps, converted blocks
        first, stop = tables.input_rows
        in_values = (stop - first) * math.prod(t.input_stop - t.input_start for t in tables.lines[1:])
        out_values = math.prod(tables.output_shape)
        scratch = threads * (LABEL_TAPS * 16 + CUBIC_WEIGHTS * 16)
        if in_dtype == np.float16 and tables.interpolation is not Interpolation.LABEL:
            scratch += in_values * 4
        if out_dtype == np.float16:
            scratch += out_values * 4
        if tables.is_cubic:  # the coefficients, and per-thread float64 lines of the prefilter
            work = working_dtype(in_dtype).itemsize
            kept = [t.coefficient_rows()[1] - t.coefficient_rows()[0] for t in tables.lines]
            n_ext = max(t.pad_before + t.source_length + t.pad_after for t in tables.lines)
            scratch += math.prod(kept) * work + threads * (n_ext + 1) * max(kept) * 8
        return scratch
    work = working_dtype(in_dtype).itemsize
    axes = as_3d(tables)
    first, stop = tables.input_rows
    in_values = (stop - first) * math.prod(t.input_stop - t.input_start for t in tables.axes[1:])
    out_values = math.prod(tables.output_shape)
    scratch = 0
    smoothed = is_smoothed(tables)
    if in_dtype == np.float16 and not smoothed:  # smoothing reads its own float32 copy
        scratch += in_values * 4
    if out_dtype == np.float16:
        scratch += out_values * 4
    scratch += smooth_scratch_bytes(tables, in_dtype, threads)
    if tables.interpolation is Interpolation.CUBIC:
        if tables.axes[0].is_cut:  # axis 0 filtered first, from the slab's states
            scratch += filter_axis0_bytes(tables, work, threads, in_dtype)
            first, stop = tables.axes[0].coefficient_rows()
            axes = as_3d(replace(tables, axes=(plain_axis0(tables.axes[0], stop - first),) + tuple(tables.axes[1:])))
        return scratch + cubic_layout(axes, tables.order, work, threads).cubic_scratch_bytes
    if uses_label_arithmetic(tables, in_dtype):
        if out_dtype != in_dtype:  # labels are picked in the input's dtype, then converted
            scratch += out_values * in_dtype.itemsize
    else:
        lengths = [t.line_length for t in axes]
        order = tables.order
        plane = lengths[order[1]] * lengths[order[2]]
        plane2 = axes[order[1]].n_out * lengths[order[2]]
        scratch += threads * (plane + plane2) * work + table_bytes(axes)
    return scratch


def _label(source: np.ndarray, tables: SamplingTables, out: np.ndarray) -> None:
    """Labels picked in the input's dtype; a ``dtype=`` of another kind gets them converted.

    Only arrays of the input's dtype are viewed as another type of the same item size:
    viewing ``out`` (another item size) would make the loop write past its end.
    """
    axes = as_3d(tables)
    src3, out3 = view_3d(source), view_3d(out)
    target = out3 if out3.dtype == src3.dtype else np.empty(out3.shape, src3.dtype)
    view = label_view_dtype(src3.dtype)  # bool as uint8; float16 labels compare by value
    assert view.itemsize == src3.dtype.itemsize == target.dtype.itemsize
    args = []
    for table in axes:
        args += [np.ascontiguousarray(table.index), np.ascontiguousarray(table.weight, dtype=np.float64)]
    _loops.current().label3(src3.view(view), *args, target.view(view))
    if target is not out3:
        out3[...] = target
