"""Resampling onto another dataset's grid (``target=``): any origin, extent, spacing, direction.

Output voxel ``j`` samples the source at ``u = source.affine⁻¹ @ target.affine @ j``
(float64, on the host). Two ways to run it:

* **axis-aligned** (the two directions agree up to axis permutation and sign): each
  target axis runs along one source axis, so the usual per-axis
  :class:`~gpuresample.tables.SamplingTables` describe the job. The tables are built
  in *source* axis order (table axis ``i`` samples source axis ``i``; a reversed axis
  is just decreasing positions) and ``output_axes`` says which target axis each fills:
  the output is written through a transposed view. Every backend runs them unchanged.
* **oblique**: an :class:`AffineSampling` carries the 3x4 matrix; backends compute a
  position per voxel (``kernels/gr_affine.cuh``, in the CPU loops and ``kernels/affine.cu``;
  ``backends/_affine_xp.py`` for the array path).

Either way a voxel whose position lies outside ``[-0.5, n - 0.5]`` on any axis gets
``fill``. For tables the outside output indices are carried per axis
(``AxisTable.outside``) and written after the backend has run (:func:`apply_fill`),
so the backends themselves never change.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace

import numpy as np

from .geometry import Grid, axis_correspondence, index_map, target_positions
from .interpolation import Interpolation
from .tables import (
    CUBIC_PAD,
    AxisTable,
    SamplingTables,
    antialias_sigma,
    as_3d,
    axis_table,
    dummy_axis_table,
    pass_order,
)

#: Positions computed through 4x4 matrices carry float64 rounding: a voxel this close
#: (in source voxels) to the edge of the sampled band ``[-0.5, n - 0.5]`` counts as inside.
BAND_ATOL_VOXELS = 1e-9
#: Extra input rows a slab of an oblique job reads on each side of the rows its corner
#: positions reach: the corners are evaluated in another order than the per-voxel loop,
#: so a rounding difference must never leave a needed row out.
AFFINE_ROW_MARGIN = 1


def outside_band(positions: np.ndarray, n_in: int) -> np.ndarray:
    """Which positions lie outside ``[-0.5, n_in - 0.5]`` (with ``BAND_ATOL_VOXELS``)."""
    return (positions < -0.5 - BAND_ATOL_VOXELS) | (positions > n_in - 0.5 + BAND_ATOL_VOXELS)


# ------------------------------------------------------------------------ axis-aligned
def aligned_tables(source: Grid, target: Grid, interpolation, correspondence, antialias=False) -> SamplingTables:
    """Per-axis tables (source axis order) for an axis-aligned ``target``.

    ``correspondence`` is :func:`~gpuresample.geometry.axis_correspondence`'s answer.
    """
    interpolation = Interpolation.parse(interpolation)
    along, signs = correspondence
    fills = [None] * source.ndim  # target axis filled by each source axis
    for k, i in enumerate(along):
        fills[i] = k
    axes = []
    for i, k in enumerate(fills):
        positions = target_positions(source, target, k, i, signs[k])
        table = axis_table(positions, source.shape[i], interpolation)
        outside = outside_band(positions, source.shape[i])
        if outside.any():
            table = replace(table, outside=outside)
        if antialias:
            table = replace(table, sigma=antialias_sigma(source.spacing[i], target.spacing[k]))
        axes.append(table)
    tables = SamplingTables(tuple(axes), interpolation)
    output_axes = tuple(fills)
    return replace(tables, order=pass_order(as_3d(tables)),
                   output_axes=None if output_axes == tuple(range(source.ndim)) else output_axes)


def output_view(out, tables):
    """``out`` (target axis order) seen in the tables' axis order, for writing slabs."""
    output_axes = getattr(tables, "output_axes", None)
    if output_axes is None:
        return out
    if isinstance(out, np.ndarray) or hasattr(out, "__cuda_array_interface__"):
        return out.transpose(output_axes)
    return _PermutedOut(out, output_axes)


class _PermutedOut:
    """A host array-like (e.g. Zarr) written in another axis order, slab by slab along axis 0."""

    def __init__(self, array, output_axes):
        self.array, self.output_axes = array, tuple(output_axes)
        self.dtype = array.dtype
        self.shape = tuple(array.shape[k] for k in output_axes)
        self.ndim = len(self.shape)

    def __setitem__(self, rows, value):
        key = [slice(None)] * self.ndim
        key[self.output_axes[0]] = rows
        self.array[tuple(key)] = np.asarray(value).transpose(np.argsort(self.output_axes))

    def __getitem__(self, rows):
        key = [slice(None)] * self.ndim
        key[self.output_axes[0]] = rows
        return np.asarray(self.array[tuple(key)]).transpose(self.output_axes)


def outside_runs(outside) -> list:
    """``outside`` (bool per index) as a list of ``slice`` runs of True."""
    if outside is None:
        return []
    flags = np.concatenate(([False], np.asarray(outside, bool), [False]))
    edges = np.flatnonzero(flags[1:] != flags[:-1])
    return [slice(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def apply_fill(out, tables, fill) -> None:
    """Write ``fill`` into every output voxel outside the band (tables' outside masks).

    ``out`` is in target axis order; slices only, so any array-like with slice
    assignment (NumPy, CuPy, Zarr, memmap) works.
    """
    if isinstance(tables, AffineSampling):
        return  # the per-voxel loops write fill themselves
    output_axes = tables.output_axes or tuple(range(tables.ndim))
    for table, k in zip(tables.axes, output_axes):
        for run in outside_runs(table.outside):
            key = [slice(None)] * tables.ndim
            key[k] = run
            out[tuple(key)] = fill


# ------------------------------------------------------------------------------ oblique
@dataclass(frozen=True)
class AffineSampling:
    """An oblique job (or one slab of it): a matrix, not per-axis tables.

    Attributes
    ----------
    matrix : (ndim, ndim+1) float64 array
        ``source.affine⁻¹ @ target.affine`` without its last row.
    source_shape : tuple
        The whole source's shape (the band and the clamping use it).
    output_shape : tuple
        This block's output shape.
    interpolation : Interpolation
    fill : float
        Value of voxels outside the band.
    out_start : int
        Global index of this block's first output row along axis 0.
    lines : tuple of AxisTable
        Per axis, the input this block receives: ``source_start``/``source_stop``
        (and for cubic the extended line's pads and kept coefficient rows). Their
        ``index`` holds the first and last global row (coefficient row for cubic) needed.
    """

    matrix: np.ndarray
    source_shape: tuple
    output_shape: tuple
    interpolation: Interpolation
    fill: float
    out_start: int
    lines: tuple

    @property
    def ndim(self) -> int:
        return len(self.source_shape)

    @property
    def axes(self) -> tuple:
        """The input lines (what planners read as the tables' axes)."""
        return self.lines

    @property
    def input_rows(self) -> tuple:
        return self.lines[0].input_start, self.lines[0].input_stop

    @property
    def is_cubic(self) -> bool:
        return self.interpolation is Interpolation.CUBIC

    def first_rows(self) -> tuple:
        """Per axis, the global row (cubic: row of the whole extended line) of the block's row 0."""
        firsts = []
        for line in self.lines:
            if line.is_cubic:
                firsts.append(line.source_start + CUBIC_PAD - line.pad_before + line.coefficient_rows()[0])
            else:
                firsts.append(line.source_start)
        return tuple(firsts)

    def as_3d(self) -> tuple:
        """``(3x4 matrix, source shape, first rows, cubic pads)`` for loops over three axes.

        2-D data gets a *trailing* length-1 axis (axis 0 stays the slab axis; its zero
        column adds ``+0.0``, leaving every position as it is), with no cubic pad.
        """
        firsts = self.first_rows()
        pads = [CUBIC_PAD if self.is_cubic else 0] * self.ndim
        if self.ndim == 3:
            return (np.ascontiguousarray(self.matrix, np.float64), np.array(self.source_shape, np.int64),
                    np.array(firsts, np.int64), np.array(pads, np.int64))
        m = np.zeros((3, 4))
        m[:2, :2] = self.matrix[:, :2]
        m[:2, 3] = self.matrix[:, 2]
        return (m, np.array(tuple(self.source_shape) + (1,), np.int64), np.array(tuple(firsts) + (0,), np.int64),
                np.array(pads + [0], np.int64))

    def lines_3d(self) -> tuple:
        """The input lines for three axes (a trailing length-1 axis for 2-D data)."""
        return tuple(self.lines) + ((dummy_axis_table(),) if self.ndim == 2 else ())

    def slab(self, start: int, stop: int) -> AffineSampling:
        """Output rows ``[start, stop)`` along axis 0: itself when that is every row, else :meth:`rows`."""
        return self if (start, stop) == (0, self.output_shape[0]) else self.rows(start, stop)

    def rows(self, start: int, stop: int) -> AffineSampling:
        """The block of output rows ``[start, stop)`` along axis 0, with only the input rows it needs.

        Cubic keeps axis 0's whole line: an oblique slab's coefficients then are the whole
        run's bit for bit (the prefilter is never cut), at the cost of every slab reading
        and filtering all input rows.
        """
        shape = (stop - start,) + tuple(self.output_shape[1:])
        if self.is_cubic:
            return replace(self, output_shape=shape, out_start=self.out_start + start)
        lo, hi = _needed_rows(self, start, stop, 0)
        whole = _whole_line(self.source_shape[0], self.is_cubic, lo, hi)
        return replace(self, output_shape=shape, out_start=self.out_start + start,
                       lines=(whole.rows(0, 2),) + tuple(self.lines[1:]))


def _whole_line(n: int, cubic: bool, lo: int, hi: int) -> AxisTable:
    """A whole-axis table reading global rows ``[lo, hi]`` (cubic: extended-line coefficients)."""
    index = np.array([[lo], [hi]], np.int64)
    if cubic:
        return AxisTable(index, np.ones((2, 1)), 0, n, CUBIC_PAD, CUBIC_PAD, 0, n + 2 * CUBIC_PAD)
    return AxisTable(index, np.ones((2, 1)), 0, n)


def _needed_rows(sampling: AffineSampling, start: int, stop: int, axis: int) -> tuple:
    """First and last global row along ``axis`` that output rows ``[start, stop)`` can read.

    The position is affine in the output index, so its extremes over the block are at
    the block's corners; positions are limited to the band (voxels beyond it get fill),
    then mapped to taps, with ``AFFINE_ROW_MARGIN`` rows to spare.
    """
    n = sampling.source_shape[axis]
    ranges = [(sampling.out_start + start, sampling.out_start + stop - 1)]
    ranges += [(0, m - 1) for m in sampling.output_shape[1:]]
    corners = np.array(np.meshgrid(*ranges, indexing="ij"), np.float64).reshape(sampling.ndim, -1)
    u = sampling.matrix[axis, :-1] @ corners + sampling.matrix[axis, -1]
    u_lo = max(float(u.min()), -0.5 - BAND_ATOL_VOXELS)
    u_hi = min(float(u.max()), n - 0.5 + BAND_ATOL_VOXELS)
    if u_lo > u_hi:  # the whole block is outside along this axis: read one row
        u_lo = u_hi = min(max(u_lo, 0.0), n - 1.0)
    if sampling.is_cubic:
        n_ext = n + 2 * CUBIC_PAD
        lo = math.floor(u_lo + CUBIC_PAD) - 1 - AFFINE_ROW_MARGIN
        hi = math.floor(u_hi + CUBIC_PAD) + 2 + AFFINE_ROW_MARGIN
        return max(lo, 0), min(hi, n_ext - 1)
    lo = math.floor(u_lo) - AFFINE_ROW_MARGIN
    hi = math.floor(u_hi) + 1 + AFFINE_ROW_MARGIN
    return max(lo, 0), min(hi, n - 1)


def affine_sampling(source: Grid, target: Grid, interpolation, fill) -> AffineSampling:
    """The oblique job taking ``source`` onto ``target`` (whole volume)."""
    interpolation = Interpolation.parse(interpolation)
    cubic = interpolation is Interpolation.CUBIC
    lines = tuple(_whole_line(n, cubic, 0, n + 2 * CUBIC_PAD - 1 if cubic else n - 1) for n in source.shape)
    return AffineSampling(index_map(source, target), tuple(source.shape), tuple(target.shape), interpolation,
                          float(fill), 0, lines)


# ------------------------------------------------------------------------ choosing a way
def onto_sampling(source: Grid, target: Grid, interpolation, fill, antialias=False):
    """Tables (axis-aligned target) or an :class:`AffineSampling` (oblique), and a warning
    when the target does not overlap the source at all."""
    if source.ndim != target.ndim:
        raise ValueError(f"target grid has {target.ndim} axes, the data's grid has {source.ndim}; "
                         "give a target with one entry per array axis")
    correspondence = axis_correspondence(source, target)
    if correspondence is not None:
        sampling = aligned_tables(source, target, interpolation, correspondence, antialias)
    else:
        if antialias:
            raise ValueError("antialias=True is not available for an oblique target (directions that "
                             "differ by more than an axis permutation and sign); pass antialias=False")
        sampling = affine_sampling(source, target, interpolation, fill)
    if not overlaps(source, target):
        warnings.warn(
            f"the target grid does not overlap the data at all (data {source!r}, target {target!r}): "
            f"every output voxel gets fill={fill!r}", UserWarning, stacklevel=4)
    return sampling


def check_target(target, target_shape, target_spacing, ndim: int):
    """``target`` (a :class:`~gpuresample.Grid` with ``ndim`` axes) given alone."""
    given = [name for name, value in (("target_shape", target_shape), ("target_spacing", target_spacing))
             if value is not None]
    if given:
        raise ValueError(f"target= and {' and '.join(given)}= were both given; give either a target grid "
                         f"(target=) or a target shape/spacing derived from the data's grid, not both")
    if not isinstance(target, Grid):
        raise TypeError(f"target must be a gpuresample.Grid (e.g. Grid.from_affine(shape, affine)), "
                        f"got {type(target).__name__}")
    if target.ndim != ndim:
        raise ValueError(f"target has {target.ndim} axes ({target.shape}), the data has {ndim} spatial axes")
    return target


def check_label_fill(fill: float, interpolation, in_dtype, out_dtype) -> None:
    """Labels written into another dtype are chosen among the input's labels and then
    converted, so their ``fill`` must be a value of the input dtype too."""
    in_dtype, out_dtype = np.dtype(in_dtype), np.dtype(out_dtype)
    if Interpolation.parse(interpolation) is Interpolation.LABEL and in_dtype != out_dtype \
            and np.array(fill).astype(in_dtype) != fill:
        raise ValueError(f"fill={fill!r} is not a value of the input dtype {in_dtype}: interpolation='label' "
                         f"picks input labels (fill among them) and then converts to dtype {out_dtype}; "
                         "give a fill the input dtype holds")


#: Lines (of the target's last axis) :func:`overlaps` examines per step: bounds its memory.
OVERLAP_LINES_PER_STEP = 1 << 16


def overlaps(source: Grid, target: Grid) -> bool:
    """Whether any target voxel centre lies inside the source's band on every axis.

    Quick answers first (the corners' bounding box misses the band: no; the centre voxel
    is inside: yes); else exact per line of the last axis: along it the position is
    affine, so the voxels inside form an interval (float64, ``BAND_ATOL_VOXELS``), lines
    taken ``OVERLAP_LINES_PER_STEP`` at a time along the target's first axes.
    """
    m = index_map(source, target)
    ndim = source.ndim
    lo_band = np.full(ndim, -0.5 - BAND_ATOL_VOXELS)
    hi_band = np.array(source.shape, np.float64) - 0.5 + BAND_ATOL_VOXELS
    corners = np.array(np.meshgrid(*[[0.0, n - 1.0] for n in target.shape], indexing="ij")).reshape(ndim, -1)
    u = m[:, :ndim] @ corners + m[:, ndim:]
    if np.any(u.max(axis=1) < lo_band) or np.any(u.min(axis=1) > hi_band):
        return False
    centre = m[:, :ndim] @ ((np.array(target.shape) - 1) // 2).astype(np.float64) + m[:, ndim]
    if np.all((centre >= lo_band) & (centre <= hi_band)):
        return True
    if ndim == 1:
        return bool(np.any(np.all((u >= lo_band[:, None]) & (u <= hi_band[:, None]), axis=0)))
    rows = max(1, OVERLAP_LINES_PER_STEP // math.prod(target.shape[1:-1]))
    slope = m[:, ndim - 1]
    for start in range(0, target.shape[0], rows):
        axes = [np.arange(start, min(start + rows, target.shape[0]), dtype=np.float64)]
        axes += [np.arange(k, dtype=np.float64) for k in target.shape[1:-1]]
        lines = np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")])
        base = m[:, :ndim - 1] @ lines + m[:, ndim:]      # per line: u = base + slope * j
        first = np.zeros(base.shape[1])
        last = np.full(base.shape[1], target.shape[-1] - 1.0)
        for axis in range(ndim):
            b, s = base[axis], slope[axis]
            if s == 0.0:
                last = np.where((b >= lo_band[axis]) & (b <= hi_band[axis]), last, -1.0)
                continue
            a1, a2 = (lo_band[axis] - b) / s, (hi_band[axis] - b) / s
            first = np.maximum(first, np.minimum(a1, a2))
            last = np.minimum(last, np.maximum(a1, a2))
        if np.any(np.floor(last) >= np.ceil(first)):
            return True
    return False
