"""Table packing: the host arrays the CUDA kernels read, and how one upload lays them out.

Each kernel reads its tables in its own form: the separable kernel offsets already
multiplied by the source stride (in the launch's index type) and weights in the working
dtype; the label kernel int32 rows and float64 weights; the coefficient gather int32 row
maps; the smoothing pass offsets and weights of the Gaussian tables. :func:`packed_layout`
places a list of such arrays in one buffer, so a block's tables go to the device in one
copy (``backend.CupyDevice``).
"""

from __future__ import annotations

import numpy as np

from .._common import coefficient_maps

#: Packed table uploads start every array on this many bytes (the widest element, double).
TABLE_ALIGN = 16


def separable_tables(axes, order, strides, work, index) -> list:
    """Host arrays the separable kernel reads, per slot A, B, C: offsets (rows times the
    source stride, in ``index``) and weights (in ``work``)."""
    host = []
    for axis in order:
        table = axes[axis]
        host += [np.ascontiguousarray(table.index * np.int64(strides[axis]), dtype=index),
                 np.ascontiguousarray(table.weight, dtype=work)]
    return host


def smoothing_table(table, stride: int, work) -> list:
    """Host arrays of one anti-aliasing pass: int64 offsets (rows times ``stride``) and
    weights in the working dtype ``work``."""
    return [np.ascontiguousarray(table.index * np.int64(stride), np.int64),
            np.ascontiguousarray(table.weight, dtype=work)]


def label_tables(axes) -> list:
    """Host arrays the label kernel reads, per axis: int32 rows and float64 weights."""
    host = []
    for table in axes:
        host += [np.ascontiguousarray(table.index, dtype=np.int32),
                 np.ascontiguousarray(table.weight, dtype=np.float64)]
    return host


def coefficient_row_maps(axes) -> list:
    """Per axis, the int32 source rows the coefficient gather reads (``_common.coefficient_maps``)."""
    return [np.ascontiguousarray(m, dtype=np.int32) for m in coefficient_maps(axes)]


def aligned(offset: int) -> int:
    """``offset`` rounded up to :data:`TABLE_ALIGN` bytes."""
    return -(-offset // TABLE_ALIGN) * TABLE_ALIGN


def packed_layout(arrays) -> tuple:
    """``(offsets, total)``: where each array starts in one upload buffer (aligned), and its
    size in bytes (at least 1)."""
    offsets, total = [], 0
    for array in arrays:
        total = aligned(total)
        offsets.append(total)
        total += array.nbytes
    return offsets, max(total, 1)


__all__ = ["TABLE_ALIGN", "separable_tables", "smoothing_table", "label_tables", "coefficient_row_maps", "aligned",
           "packed_layout"]
