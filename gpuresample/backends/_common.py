"""Backend-neutral helpers, written once for any array module (NumPy or CuPy).

What every backend does the same way before and after its own arithmetic: the 3-D
view of 2-D data, the dtype labels are compared in, the rows each cubic table's
coefficients start from (and a cut slab's prefilter states at them), the sizes of the
anti-aliasing passes (whose tables are :func:`gpuresample.tables.smoothing_passes`), and
how a float result is written into an integer dtype.
"""

from __future__ import annotations

import math

import numpy as np

from ..interpolation import Interpolation
from ..tables import AxisTable, SamplingTables

#: Labels compare by value in their own dtype, float16 included (NaN labels are one label,
#: after every number; -0.0 and 0.0 are one label); bool as uint8. The winner is copied
#: as its first tap stores it.
LABEL_VIEWS = {np.dtype(np.bool_): np.dtype(np.uint8)}


def label_view_dtype(dtype) -> np.dtype:
    """The dtype labels of ``dtype`` are compared and copied as (same item size)."""
    dtype = np.dtype(dtype)
    return LABEL_VIEWS.get(dtype, dtype)


def view_3d(array):
    """A 3-D view of 2-D or 3-D data (a leading length-1 axis for 2-D)."""
    return array[None] if array.ndim == 2 else array


def coefficient_maps(axes) -> list:
    """Per axis, the source row each kept cubic coefficient row starts from (else every row)."""
    return [t.coefficient_source_rows() if t.is_cubic else np.arange(t.source_length) for t in axes]


def is_smoothed(tables: SamplingTables) -> bool:
    """Whether any axis has an anti-aliasing Gaussian."""
    return any(t.sigma > 0 for t in tables.axes)


def smoothing_sizes(tables: SamplingTables) -> tuple:
    """``(block, passes)``: values in the block a backend receives (smoothing margins
    included) and in the result of each anti-aliasing pass, smoothed axes in order (each pass
    crops its axis's margins)."""
    lengths = [t.input_stop - t.input_start for t in tables.axes]
    block = math.prod(lengths)
    passes = []
    for axis, table in enumerate(tables.axes):
        if table.sigma > 0:
            lengths[axis] = table.source_length
            passes.append(math.prod(lengths))
    return block, passes


def integer_limits(dtype) -> tuple:
    """``(round_to_int, lo, hi)`` for writing a float result into ``dtype``.

    ``lo`` and ``hi`` are float64 values inside the dtype's range: for int64/uint64 the
    maximum itself is no float64 (it rounds up, past the range), so ``hi`` is the largest
    float64 below it (as ``gr_limits`` in ``kernels/gpuresample.cuh``).
    """
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return True, 0.0, 1.0
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        hi = float(info.max)
        if int(hi) > info.max:
            hi = float(np.nextafter(hi, 0.0))
        return True, float(info.min), hi
    return False, 0.0, 0.0


#: Integers float64 cannot hold exactly (beyond 2**53): nearest picks their voxels with the
#: label arithmetic instead of weighting them by 1.0 in float64, so labels stay exact.
WIDE_INTEGERS = (np.dtype(np.int64), np.dtype(np.uint64))


def uses_label_arithmetic(tables: SamplingTables, dtype=None) -> bool:
    """Whether a block runs the label arithmetic: ``'label'``, and ``'nearest'`` on
    int64/uint64 input (``dtype``), which it gathers exactly."""
    if tables.interpolation is Interpolation.LABEL:
        return True
    return (tables.interpolation is Interpolation.NEAREST and dtype is not None
            and np.dtype(dtype) in WIDE_INTEGERS)


def check_source_block(source, tables: SamplingTables) -> None:
    """``ValueError`` unless ``source`` holds exactly the input rows ``tables`` read.

    The compiled loops and kernels do not check bounds: a shorter block would be read
    out of bounds.
    """
    expected = tuple(t.input_stop - t.input_start for t in tables.axes)
    if tuple(source.shape) != expected:
        raise ValueError(f"input block has shape {tuple(source.shape)}; its sampling tables read {expected}")


def gathered_states(state, axes, maps, axis) -> np.ndarray:
    """A cut slab's prefilter state plane (the input's other axes, float64) at the lines of its
    gathered coefficient array (``maps``: :func:`coefficient_maps`) that run along ``axis``."""
    outer, inner = (a for a in range(3) if a != axis)
    plane = np.asarray(state, dtype=np.float64).reshape(axes[outer].source_length, axes[inner].source_length)
    return np.ascontiguousarray(plane[np.ix_(maps[outer], maps[inner])])


def kept_coefficient_rows(table: AxisTable) -> int:
    """Rows of a table's line a backend holds: kept coefficient rows (cubic) or input rows."""
    if table.is_cubic:
        first, stop = table.coefficient_rows()
        return stop - first
    return table.source_length


__all__ = ["LABEL_VIEWS", "label_view_dtype", "view_3d", "coefficient_maps", "is_smoothed", "smoothing_sizes",
           "integer_limits", "gathered_states", "kept_coefficient_rows", "WIDE_INTEGERS", "uses_label_arithmetic", "check_source_block"]
