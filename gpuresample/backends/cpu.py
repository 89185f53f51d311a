"""CPU backend: NumPy/SciPy arrays, compiled separable loops (Numba) on every core."""

from __future__ import annotations

from dataclasses import replace

import numba
import numpy as np
from scipy import ndimage

from ..interpolation import Interpolation, working_dtype
from ..tables import CUBIC_POLE, SamplingTables
from . import _cpu_loops as loops
from .base import Backend, as_3d, integer_limits


class ScipyBackend(Backend):
    """NumPy in, NumPy out, on the CPU. Always available."""

    name = "scipy"
    on_device = False

    def unavailable_reason(self) -> str | None:
        return None

    def threads(self) -> int:
        return numba.get_num_threads()

    def free_bytes(self) -> int | None:
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return None

    def resample_block(self, source, tables: SamplingTables, out) -> None:
        source = np.asarray(source)
        if tables.interpolation is Interpolation.LABEL:
            _label(source, tables, out)
            return
        work = working_dtype(source.dtype)
        values = smooth(source, tables, work)
        axes = as_3d(tables)
        if tables.interpolation is Interpolation.CUBIC:
            values = spline_coefficients(values, axes, work)
            axes = tuple(_coefficient_indexed(t) for t in axes)
        _separable(values, axes, tables.order, work, out)


def smooth(source: np.ndarray, tables: SamplingTables, work) -> np.ndarray:
    """Anti-aliasing Gaussian per axis (mode='nearest'), margins cropped; else ``source``."""
    if not any(t.sigma > 0 for t in tables.axes):
        return source
    values = source.astype(work, copy=True)
    for axis, table in enumerate(tables.axes):
        if table.sigma > 0:
            ndimage.gaussian_filter1d(values, table.sigma, axis=axis, mode="nearest", output=values)
    crop = tuple(slice(t.margin_before, values.shape[a] - t.margin_after) for a, t in enumerate(tables.axes))
    return values[crop]


def spline_coefficients(values: np.ndarray, axes, work) -> np.ndarray:
    """Cubic B-spline coefficients over each table's kept coefficient rows (3-D)."""
    values3 = values.reshape((1,) * (3 - values.ndim) + values.shape)
    maps = [t.coefficient_source_rows() if t.is_cubic else np.arange(t.source_length) for t in axes]
    coef = np.empty(tuple(len(m) for m in maps), dtype=work)
    if values3.dtype == np.float16:
        values3 = values3.astype(np.float32)
    loops.gather_clamped(values3, *maps, coef)
    for axis, table in enumerate(axes):
        if not table.is_cubic:
            continue
        first, _ = table.coefficient_rows()
        view = np.moveaxis(coef, axis, 0)
        n_ext = table.pad_before + table.source_length + table.pad_after
        lines = np.empty((numba.get_num_threads(), n_ext, view.shape[2]), np.float64)
        loops.spline_filter_axis0(
            view, first, table.pad_before, table.source_length, table.pad_after, CUBIC_POLE, lines)
        del lines
    return coef


def _coefficient_indexed(table):
    """The table with indices counted from the first kept coefficient row."""
    if not table.is_cubic:
        return table
    first, _ = table.coefficient_rows()
    return replace(table, index=table.index + (table.coef_start - first))


def _separable(values: np.ndarray, axes, order, work, out: np.ndarray) -> None:
    values3 = values.reshape((1,) * (3 - values.ndim) + values.shape)
    if values3.dtype == np.float16:
        values3 = values3.astype(np.float32)
    out3 = out.reshape((1,) * (3 - out.ndim) + out.shape)
    target = out3
    if out3.dtype == np.float16:
        target = np.empty(out3.shape, np.float32)
    round_to_int, lo, hi = integer_limits(out3.dtype)
    args = []
    for axis in order:
        args += [np.ascontiguousarray(axes[axis].index), np.ascontiguousarray(axes[axis].weight, dtype=work)]
    target_view = target.view(np.uint8) if target.dtype == np.bool_ else target
    src = values3.transpose(order)
    dst = target_view.transpose(order)
    threads = numba.get_num_threads()
    planes = np.empty((threads, src.shape[1], src.shape[2]), work)
    planes2 = np.empty((threads, dst.shape[1], src.shape[2]), work)
    loops.separable3(src, *args, dst, round_to_int, lo, hi, planes, planes2)
    if target is not out3:
        out3[...] = target


def _label(source: np.ndarray, tables: SamplingTables, out: np.ndarray) -> None:
    axes = as_3d(tables)
    src3 = source.reshape((1,) * (3 - source.ndim) + source.shape)
    out3 = out.reshape((1,) * (3 - out.ndim) + out.shape)
    if src3.dtype == np.bool_:
        src3, out3 = src3.view(np.uint8), out3.view(np.uint8)
    elif src3.dtype == np.float16:  # labels compare by bit pattern; Numba has no float16
        src3, out3 = src3.view(np.uint16), out3.view(np.uint16)
    args = []
    for table in axes:
        args += [np.ascontiguousarray(table.index), np.ascontiguousarray(table.weight, dtype=np.float64)]
    loops.label3(src3, *args, out3)
