"""The CPU backend's oblique path with the compiled loops: an
:class:`~gpuresample.onto.AffineSampling` block.

Host glue around the compiled oblique loops: 2-D data as a 3-D view, dtypes the loops lack
(float16, bool) as views or float32 copies (float16 labels go as they are: compared by value), the cubic prefilter's coefficients of the block
(the same prefilter as the per-axis path, ``_cubic.spline_coefficients``). The
arithmetic is the array code's (``_affine_xp``, docs/design.md §2).
"""

from __future__ import annotations


import numpy as np

from ...interpolation import Interpolation, working_dtype
from ...onto import BAND_ATOL_VOXELS, AffineSampling
from .. import _loops
from .._common import integer_limits
from ._cubic import spline_coefficients

#: Labels a voxel's 2x2x2 taps can hold at most (scratch per thread).
LABEL_TAPS = 8
#: Working-dtype weights per thread: 2 per axis (linear), 4 per axis (cubic).
LINEAR_WEIGHTS, CUBIC_WEIGHTS = 6, 12


def _as_3d(array):
    """2-D arrays with a trailing length-1 axis (see :meth:`AffineSampling.as_3d`)."""
    return array.reshape(array.shape + (1,)) if array.ndim == 2 else array


def _bits(dtype) -> np.dtype:
    """The unsigned view of dtypes the loops do not compute with (copied as bit patterns)."""
    return {np.dtype(np.bool_): np.dtype(np.uint8), np.dtype(np.float16): np.dtype(np.uint16)}.get(np.dtype(dtype))


def _fill_as(fill: float, dtype, view) -> float:
    """``fill`` as the number to store into ``dtype`` seen as ``view`` (bit pattern for float16)."""
    if view is None or np.dtype(dtype) == np.bool_:
        return float(fill)
    return float(np.array(fill, dtype).view(view)[()])


def resample_affine_block(source, sampling: AffineSampling, out) -> None:
    """Fill ``out`` (shape ``sampling.output_shape``) from the input rows ``sampling.input_rows``."""
    src = np.asarray(source)
    m, n_src, first, pads = sampling.as_3d()
    src3 = _as_3d(src)
    out3 = _as_3d(out)
    loops = _loops.current()
    threads = _loops.threads()
    fill = sampling.fill
    interpolation = sampling.interpolation
    if interpolation is Interpolation.LABEL and src.dtype != out.dtype:  # through a block of labels
        labels = np.empty(out3.shape, src.dtype)
        resample_affine_block(source, sampling, labels.reshape(out.shape))
        out3[...] = labels
        return
    if interpolation is Interpolation.LABEL or (interpolation is Interpolation.NEAREST and src.dtype == out.dtype):
        if interpolation is Interpolation.LABEL and src3.dtype == np.float16:  # compared by value in the loop
            fill = float(np.float16(fill))  # a float16 value: exact through the loop's float32
        else:
            view = _bits(src3.dtype)
            fill = _fill_as(fill, out3.dtype, view)
            if view is not None:
                src3, out3 = src3.view(view), out3.view(view)
        if interpolation is Interpolation.LABEL:
            labels = np.empty((threads, LABEL_TAPS), src3.dtype)
            scores = np.empty((threads, LABEL_TAPS), np.float64)
            loops.affine_label(src3, m, n_src, first, sampling.out_start, BAND_ATOL_VOXELS, fill, out3, labels,
                               scores)
        else:
            loops.affine_nearest(src3, m, n_src, first, sampling.out_start, BAND_ATOL_VOXELS, fill, out3, True,
                                 False, 0.0, 0.0)
        return
    if src3.dtype == np.float16:
        src3 = src3.astype(np.float32)
    target = np.empty(out3.shape, np.float32) if out3.dtype == np.float16 else out3
    dst = target.view(np.uint8) if target.dtype == np.bool_ else target
    round_to_int, lo, hi = integer_limits(out3.dtype)
    work = working_dtype(src.dtype)
    if interpolation is Interpolation.NEAREST:
        loops.affine_nearest(src3, m, n_src, first, sampling.out_start, BAND_ATOL_VOXELS, fill, dst, False,
                             round_to_int, lo, hi)
    elif interpolation is Interpolation.LINEAR:
        weights = np.empty((threads, LINEAR_WEIGHTS), work)
        loops.affine_linear(src3, m, n_src, first, sampling.out_start, BAND_ATOL_VOXELS, fill, dst, round_to_int,
                            lo, hi, weights)
    else:
        coef = affine_coefficients(src3, sampling, work)
        weights = np.empty((threads, CUBIC_WEIGHTS), work)
        taps = np.empty((threads, CUBIC_WEIGHTS), np.int64)
        loops.affine_cubic(coef, m, n_src, first, pads, sampling.out_start, BAND_ATOL_VOXELS, fill, dst,
                           round_to_int, lo, hi, weights, taps)
    if target is not out3:
        out3[...] = target


def affine_coefficients(src3: np.ndarray, sampling: AffineSampling, work) -> np.ndarray:
    """Cubic B-spline coefficients of the block's extended lines (every axis), as the per-axis path makes them."""
    return spline_coefficients(src3, sampling.lines_3d(), work)
