"""Grid geometry: shapes, spacings, origins and the positions a resample samples.

Pure NumPy in float64 on the host. Nothing here knows about arrays of data or
devices; every backend receives the positions computed here (through
:mod:`gpuresample.tables`).

Conventions (``docs/design.md`` §1):

* axis ``i`` of every tuple is array axis ``i``; nothing is ever reordered;
* ``origin`` is the physical position of the *centre* of voxel 0;
* ``extent[i] = shape[i] * spacing[i]`` (voxel edge to voxel edge);
* ``affine`` maps ``(i, j, k, 1)`` to physical ``(x, y, z, 1)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ._validate import check_shape, check_spacing

#: Relative tolerance when both a target shape and a target spacing are given.
AGREEMENT_RTOL = 1e-6
#: Tolerance used to check that a direction matrix is orthonormal.
ORTHONORMAL_ATOL = 1e-6
#: Extents this close count as "the same bounding box" (a few float64 ulps of rounding).
SAME_EXTENT_RTOL = 1e-12
#: Direction columns of an affine this close to perpendicular (float32 header rounding) are
#: snapped to the nearest orthonormal matrix; a larger deviation is shear, an error.
DIRECTION_SNAP_ATOL = 1e-4
#: Two grids whose directions agree up to axis permutation and sign within this are
#: "axis-aligned" (fast path): direction cosines from float32 headers agree to about 1e-7.
AXIS_ALIGNED_ATOL = 1e-6
#: A centre this close (in source voxels) to the source's counts as "the same centre", so a
#: target given as a grid samples exactly like the same target given by shape or spacing.
SAME_CENTRE_ATOL_VOXELS = 1e-9


@dataclass(frozen=True, init=False)
class Grid:
    """A regular voxel grid in physical space.

    Parameters
    ----------
    shape : sequence of int
        Voxels per array axis, each ``>= 1``.
    spacing : sequence of float
        Voxel size per array axis in mm, each finite and ``> 0``.
    origin : sequence of float, optional
        Physical position of the centre of voxel 0. Default: zeros.
    direction : (ndim, ndim) array_like, optional
        Orthonormal matrix whose column ``i`` is the physical direction of
        array axis ``i``. Default: identity.

    Examples
    --------
    >>> g = Grid((100, 100, 50), (1.0, 1.0, 2.0))
    >>> g.extent
    (100.0, 100.0, 100.0)
    >>> g.with_shape((50, 50, 50)).spacing
    (2.0, 2.0, 2.0)
    >>> g.with_spacing((3.0, 3.0, 3.0)).shape
    (33, 33, 33)
    """

    shape: tuple
    spacing: tuple
    origin: tuple
    direction: tuple

    def __init__(self, shape, spacing, origin=None, direction=None):
        shape = check_shape(shape, "shape")
        ndim = len(shape)
        spacing = check_spacing(spacing, "spacing", ndim)
        if origin is None:
            origin = (0.0,) * ndim
        origin_arr = np.asarray(origin, dtype=np.float64)
        if origin_arr.shape != (ndim,) or not np.all(np.isfinite(origin_arr)):
            raise ValueError(
                f"origin must be {ndim} finite numbers (one per array axis), got {origin!r}"
            )
        if direction is None:
            direction_arr = np.eye(ndim)
        else:
            direction_arr = np.asarray(direction, dtype=np.float64)
            if direction_arr.shape != (ndim, ndim):
                raise ValueError(
                    f"direction must be a {ndim}x{ndim} matrix, got shape {direction_arr.shape}"
                )
            if not np.allclose(direction_arr.T @ direction_arr, np.eye(ndim), atol=ORTHONORMAL_ATOL):
                raise ValueError(f"direction must be orthonormal, got {direction_arr.tolist()!r}")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "spacing", spacing)
        object.__setattr__(self, "origin", tuple(float(v) for v in origin_arr))
        object.__setattr__(self, "direction", tuple(tuple(float(v) for v in row) for row in direction_arr))

    # ------------------------------------------------------------------ derived
    @property
    def ndim(self) -> int:
        """Number of axes."""
        return len(self.shape)

    @property
    def size(self) -> int:
        """Number of voxels."""
        return math.prod(self.shape)

    @property
    def extent(self) -> tuple:
        """Physical size per axis in mm, voxel edge to voxel edge."""
        return tuple(n * s for n, s in zip(self.shape, self.spacing))

    @property
    def direction_matrix(self) -> np.ndarray:
        """The direction as an ``(ndim, ndim)`` float64 array."""
        return np.array(self.direction, dtype=np.float64)

    @property
    def center(self) -> tuple:
        """Physical position of the centre of the bounding box."""
        half = (np.array(self.shape) - 1) / 2.0 * np.array(self.spacing)
        return tuple(float(v) for v in np.array(self.origin) + self.direction_matrix @ half)

    @property
    def affine(self) -> np.ndarray:
        """The ``(ndim+1, ndim+1)`` index-to-physical matrix (as nibabel uses)."""
        ndim = self.ndim
        affine = np.eye(ndim + 1)
        affine[:ndim, :ndim] = self.direction_matrix * np.array(self.spacing)[None, :]
        affine[:ndim, ndim] = self.origin
        return affine

    def index_to_physical(self, index) -> np.ndarray:
        """Physical positions of (fractional) voxel indices, shape ``(..., ndim)``."""
        index = np.asarray(index, dtype=np.float64)
        return index @ (self.direction_matrix * np.array(self.spacing)).T + np.array(self.origin)

    def physical_to_index(self, points) -> np.ndarray:
        """Fractional voxel indices of physical positions, shape ``(..., ndim)``: the inverse of
        :meth:`index_to_physical` (``spacing⁻¹ directionᵀ (point - origin)``, float64).

        Examples
        --------
        >>> g = Grid((10, 10, 10), (2.0, 1.0, 0.5), origin=(5.0, 0.0, 0.0))
        >>> g.physical_to_index([[5.0, 0.0, 0.0], [9.0, 3.0, 1.0]]).tolist()
        [[0.0, 0.0, 0.0], [2.0, 3.0, 2.0]]
        """
        points = np.asarray(points, dtype=np.float64)
        if points.shape[-1:] != (self.ndim,):
            raise ValueError(f"points must have {self.ndim} coordinates on their last axis, got shape {points.shape}")
        return ((points - np.array(self.origin)) @ self.direction_matrix) / np.array(self.spacing)

    def misfit_voxels(self, other: "Grid") -> float:
        """How far ``other`` lies from this grid: the largest distance between the two grids'
        corner voxels (same indices), in voxels of this grid's finest spacing.

        Examples
        --------
        >>> from gpuresample import Grid
        >>> Grid((4, 4, 4), (1, 1, 1)).misfit_voxels(Grid((4, 4, 4), (1, 1, 1), origin=(0.5, 0, 0)))
        0.5
        """
        corners = np.array(np.meshgrid(*[[0, n - 1] for n in self.shape], indexing="ij")).reshape(self.ndim, -1).T
        distance = np.linalg.norm(self.index_to_physical(corners) - other.index_to_physical(corners), axis=1)
        return float(distance.max() / min(self.spacing))
    @classmethod
    def from_affine(cls, shape, affine) -> "Grid":
        """The grid of ``shape`` voxels whose index-to-physical matrix is ``affine``.

        Parameters
        ----------
        shape : sequence of int
            Voxels per array axis.
        affine : (ndim+1, ndim+1) array_like
            Index-to-physical matrix as nibabel and ITK use it: column ``i`` of the
            linear part is the physical step of array axis ``i``, the last column the
            centre of voxel 0.

        Returns
        -------
        Grid
            ``spacing`` = the column lengths, ``direction`` = the unit columns (snapped
            to the nearest orthonormal matrix when within ``DIRECTION_SNAP_ATOL``, the
            rounding of float32 headers), ``origin`` = the last column.

        Raises
        ------
        ValueError
            For a matrix of the wrong size, non-finite entries, a last row other than
            ``(0, ..., 0, 1)``, a zero column (singular) or shear (columns not perpendicular).

        Examples
        --------
        >>> import numpy as np
        >>> g = Grid.from_affine((10, 20, 30), np.diag([-2.0, 1.0, 3.0, 1.0]))
        >>> g.spacing, g.direction[0]
        ((2.0, 1.0, 3.0), (-1.0, 0.0, 0.0))
        >>> bool(np.allclose(Grid.from_affine(g.shape, g.affine).affine, g.affine))
        True
        """
        return grid_from_affine(shape, affine)

    # ---------------------------------------------------------------- targets
    def with_shape(self, target_shape) -> "Grid":
        """The grid with ``target_shape`` voxels over the same bounding box.

        ``target_spacing[i] = spacing[i] * shape[i] / target_shape[i]``.
        """
        target_shape = check_shape(target_shape, "target_shape", self.ndim)
        target_spacing = tuple(s * n / m for s, n, m in zip(self.spacing, self.shape, target_shape))
        return self._recentred(target_shape, target_spacing)

    def with_spacing(self, target_spacing) -> "Grid":
        """The grid with voxels of ``target_spacing`` mm, centred on this one.

        ``target_shape[i] = max(1, floor(shape[i] * spacing[i] / target_spacing[i] + 0.5))``;
        the extent changes by less than one target voxel.
        """
        target_spacing = check_spacing(target_spacing, "target_spacing", self.ndim)
        ratios = [n * s / t for n, s, t in zip(self.shape, self.spacing, target_spacing)]
        if not all(math.isfinite(r) for r in ratios):
            raise ValueError(f"target_spacing={target_spacing!r} is too small for spacing {self.spacing!r}: "
                             "the voxel count per axis overflows")
        target_shape = tuple(max(1, math.floor(r + 0.5)) for r in ratios)
        return self._recentred(target_shape, target_spacing)

    def _recentred(self, target_shape, target_spacing) -> "Grid":
        extent = np.array(self.extent)
        new_extent = np.array(target_shape) * np.array(target_spacing)
        shift = (extent - new_extent) / 2.0 + (np.array(target_spacing) - np.array(self.spacing)) / 2.0
        origin = np.array(self.origin) + self.direction_matrix @ shift
        return Grid(target_shape, target_spacing, origin, self.direction)

    def resolve(self, target_shape=None, target_spacing=None) -> "Grid":
        """The target grid for a target shape, a target spacing, or both.

        Both may be given only when they agree with the by-spacing rule
        (relative tolerance ``AGREEMENT_RTOL``); the shape's bounding box is then kept.
        """
        if target_shape is None and target_spacing is None:
            raise ValueError("give target_shape or target_spacing (or both, agreeing); got neither")
        if target_spacing is None:
            return self.with_shape(target_shape)
        if target_shape is None:
            return self.with_spacing(target_spacing)
        by_shape = self.with_shape(target_shape)
        wanted = check_spacing(target_spacing, "target_spacing", self.ndim)
        if not np.allclose(by_shape.spacing, wanted, rtol=AGREEMENT_RTOL, atol=0.0):
            raise ValueError(
                f"target_shape={tuple(by_shape.shape)} and target_spacing={wanted} disagree: "
                f"that shape over this bounding box has spacing {tuple(round(s, 9) for s in by_shape.spacing)}; "
                "give one of them, or values that agree within a relative 1e-6"
            )
        return by_shape

    def __repr__(self) -> str:
        fmt = lambda t: "(" + ", ".join(f"{v:g}" for v in t) + ")"  # noqa: E731
        text = f"Grid(shape={self.shape}, spacing={fmt(self.spacing)}, origin={fmt(self.origin)}"
        if not np.array_equal(self.direction_matrix, np.eye(self.ndim)):
            text += ", direction=(" + ", ".join(fmt(row) for row in self.direction) + ")"
        return text + ")"


def grid_from_affine(shape, affine, source: str = "affine") -> Grid:
    """:meth:`Grid.from_affine`, with ``source`` naming where the affine came from in errors."""
    shape = check_shape(shape, "shape")
    ndim = len(shape)
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (ndim + 1, ndim + 1) or not np.all(np.isfinite(affine)):
        raise ValueError(f"{source}: need a finite {ndim + 1}x{ndim + 1} matrix for a grid of shape {shape}, "
                         f"got {affine.tolist()!r}")
    if not np.array_equal(affine[ndim], np.eye(ndim + 1)[ndim]):
        raise ValueError(f"{source}: the last row must be {[0.0] * ndim + [1.0]}, got {affine[ndim].tolist()}")
    linear = affine[:ndim, :ndim]
    spacing = np.linalg.norm(linear, axis=0)
    if np.any(spacing <= 0):
        raise ValueError(f"{source}: the matrix is singular (a zero column; spacing {spacing.tolist()}); "
                         "it maps several voxels to one place")
    direction = linear / spacing
    deviation = float(np.max(np.abs(direction.T @ direction - np.eye(ndim))))
    if deviation > DIRECTION_SNAP_ATOL:
        what = "singular (parallel columns)" if abs(np.linalg.det(direction)) < DIRECTION_SNAP_ATOL else "shear"
        raise ValueError(f"{source}: the matrix has {what}: axes not perpendicular (|D^T D - I| = "
                         f"{deviation:.2g} > {DIRECTION_SNAP_ATOL:g}); gpuresample grids have "
                         "perpendicular axes")
    u, _, vt = np.linalg.svd(direction)
    return Grid(shape, tuple(float(v) for v in spacing), affine[:ndim, ndim], u @ vt)


def index_map(source: Grid, target: Grid) -> np.ndarray:
    """The ``(ndim, ndim+1)`` matrix taking target indices to source (continuous) indices.

    ``u = M[:, :ndim] @ j + M[:, ndim]`` is ``source.affine⁻¹ @ target.affine @ j``, in
    float64. The inverse is written out (``S⁻¹ Dᵀ``, the direction being orthonormal)
    rather than computed by a general solver.
    """
    if source.ndim != target.ndim:
        raise ValueError(f"source grid has {source.ndim} axes, target grid has {target.ndim}")
    inv_spacing = 1.0 / np.array(source.spacing)
    rotate = source.direction_matrix.T
    linear = (rotate @ target.direction_matrix) * np.array(target.spacing)[None, :] * inv_spacing[:, None]
    offset = (rotate @ (np.array(target.origin) - np.array(source.origin))) * inv_spacing
    return np.concatenate([linear, offset[:, None]], axis=1)


def axis_correspondence(source: Grid, target: Grid):
    """For axis-aligned grids, the source axis each target axis runs along; else None.

    Returns ``(axes, signs)``: target axis ``k`` runs along source axis ``axes[k]``,
    forwards (``signs[k] = 1``) or backwards (``-1``), when ``sourceᵀ · target``
    directions are a signed permutation within ``AXIS_ALIGNED_ATOL``; None for an
    oblique target.
    """
    relation = source.direction_matrix.T @ target.direction_matrix
    axes = np.argmax(np.abs(relation), axis=0)
    signs = np.sign(relation[axes, np.arange(target.ndim)])
    expected = np.zeros_like(relation)
    expected[axes, np.arange(target.ndim)] = signs
    if len(set(axes.tolist())) != target.ndim or not np.allclose(relation, expected, rtol=0.0, atol=AXIS_ALIGNED_ATOL):
        return None
    return tuple(int(a) for a in axes), tuple(int(s) for s in signs)


def target_positions(source: Grid, target: Grid, target_axis: int, source_axis: int, sign: int) -> np.ndarray:
    """Source positions (voxels along ``source_axis``) of every index along ``target_axis``.

    For axis-aligned grids (see :func:`axis_correspondence`). Where the target runs along
    the source axis forwards with the same centre on it, this is
    :func:`sampling_positions` (so a target given as a grid samples bit for bit as the
    same grid given by shape or spacing); else ``u(j) = sign * t/s * j + offset``.
    """
    j = np.arange(target.shape[target_axis], dtype=np.float64)
    s = source.spacing[source_axis]
    t = target.spacing[target_axis]
    offset = float(source.direction_matrix[:, source_axis] @ (np.array(target.origin) - np.array(source.origin))) / s
    if sign > 0 and source_axis == target_axis:
        centre_shift = offset + (t * (target.shape[target_axis] - 1) / s - (source.shape[source_axis] - 1)) / 2.0
        if abs(centre_shift) <= SAME_CENTRE_ATOL_VOXELS:
            return sampling_positions(source, _along(target, source, source_axis), source_axis)
    return sign * (t / s) * j + offset


def _along(target: Grid, source: Grid, axis: int) -> Grid:
    """A grid with ``target``'s shape and spacing along ``axis`` (others: the source's)."""
    shape = list(source.shape)
    spacing = list(source.spacing)
    shape[axis], spacing[axis] = target.shape[axis], target.spacing[axis]
    return Grid(shape, spacing)


def sampling_positions(source: Grid, target: Grid, axis: int) -> np.ndarray:
    """Input-voxel coordinates sampled by every output index along ``axis``.

    ``u(j) = ((j + 0.5) * spacing' + (extent - extent') / 2) / spacing - 0.5``.
    When the bounding box is kept (by dimensions) this is evaluated as the exact
    rational ``((2j + 1) * n - n') / (2 n')`` so that an identity resample samples
    whole voxels exactly and half-voxel ties are exact.
    """
    n_in, n_out = source.shape[axis], target.shape[axis]
    j = np.arange(n_out, dtype=np.float64)
    if math.isclose(source.extent[axis], target.extent[axis], rel_tol=SAME_EXTENT_RTOL):
        return ((2.0 * j + 1.0) * n_in - n_out) / (2.0 * n_out)
    s, t = source.spacing[axis], target.spacing[axis]
    offset = (source.extent[axis] - target.extent[axis]) / 2.0
    return ((j + 0.5) * t + offset) / s - 0.5


def isotropic(spacing: Sequence[float]) -> tuple:
    """Isotropic spacing: every axis at the smallest spacing.

    Examples
    --------
    >>> isotropic((0.7, 0.7, 2.5))
    (0.7, 0.7, 0.7)
    """
    spacing = check_spacing(spacing, "spacing")
    finest = min(spacing)
    return (finest,) * len(spacing)


def coarsest_spacing(*spacings: Sequence[float]) -> tuple:
    """Per axis, the largest of several spacings: the resolution every dataset can match.

    Use it to bring several datasets to the coarser dataset's resolution, e.g.
    ``resample(fine, fine_spacing, target_spacing=coarsest_spacing(fine_spacing, coarse_spacing))``.

    Examples
    --------
    >>> coarsest_spacing((0.5, 0.5, 1.0), (0.8, 0.4, 3.0))
    (0.8, 0.5, 3.0)
    """
    if not spacings:
        raise ValueError("coarsest_spacing needs at least one spacing")
    checked = [check_spacing(s, f"spacings[{i}]") for i, s in enumerate(spacings)]
    ndim = len(checked[0])
    for i, s in enumerate(checked):
        if len(s) != ndim:
            raise ValueError(f"spacings[{i}] has {len(s)} axes, spacings[0] has {ndim}")
    return tuple(max(axis) for axis in zip(*checked))
