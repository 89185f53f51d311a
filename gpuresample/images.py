"""Images in, images out: nibabel and SimpleITK images, and reference grids from anything.

:func:`gpuresample.resample` takes a nibabel image (any ``SpatialImage``) or a SimpleITK
``Image`` as ``data`` and returns the same kind of image on the target grid; ``target=``
takes a :class:`~gpuresample.Grid`, such an image, a path to an image file (only its header
is read) or ``(shape, affine)``. This module turns those objects into an array and a
:class:`Grid`, and a result back into an image. Neither nibabel nor SimpleITK is imported
unless such an object (or a path) is given.

Conventions (``docs/design.md`` §10):

* nibabel: the array is the image's data in its own ``(i, j, k)`` order; the grid is its
  ``affine`` (world coordinates as the image stores them). The result keeps the source's
  header, with the new affine under the source's sform and qform codes.
* SimpleITK: the array is indexed ``(x, y, z)`` as ``GetSize()`` and ``GetSpacing()`` read
  (a transposed view of ``GetArrayViewFromImage``, no copy); sizes, spacings and grids of a
  SimpleITK image are in that order. Its physical frame is ITK's (LPS); where it meets a
  nibabel image or a file read by :mod:`gpuresample.io` (RAS), the frames are converted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .geometry import Grid, grid_from_affine

#: ITK's physical frame (LPS) to nibabel's and the files' (RAS): x and y change sign.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
#: Keys of a TorchIO-style image mapping.
DATA_ENTRY, AFFINE_ENTRY = "data", "affine"


def _module_of(value) -> str:
    return type(value).__module__.split(".", 1)[0]


def is_nibabel_image(value) -> bool:
    """Whether ``value`` is a nibabel spatial image (an affine and a data object)."""
    return _module_of(value) == "nibabel" and hasattr(value, "affine") and hasattr(value, "dataobj")


def is_simpleitk_image(value) -> bool:
    """Whether ``value`` is a SimpleITK ``Image``."""
    return _module_of(value) == "SimpleITK" and hasattr(value, "GetSize") and hasattr(value, "GetSpacing")


def is_image(value) -> bool:
    """Whether ``value`` is an image :func:`gpuresample.resample` takes and returns."""
    return is_nibabel_image(value) or is_simpleitk_image(value)


@dataclass(frozen=True)
class ImageData:
    """What :func:`from_image` found: the array (spatial axes first), its grid, and where
    it came from (``kind`` is ``"nibabel"`` or ``"SimpleITK"``, ``image`` the object)."""

    array: Any
    grid: Grid
    kind: str
    image: Any


def _ras(affine: np.ndarray) -> np.ndarray:
    """An ITK (LPS) 3-D affine in RAS, or a 2-D one unchanged (ITK's 2-D frame is its own)."""
    if affine.shape != (4, 4):
        return affine
    flip = np.eye(4)
    flip[:3, :3] = LPS_TO_RAS
    return flip @ affine


def _simpleitk_affine(image) -> np.ndarray:
    """The index-to-physical matrix of a SimpleITK image, in ITK's frame."""
    ndim = image.GetDimension()
    direction = np.array(image.GetDirection(), dtype=np.float64).reshape(ndim, ndim)
    affine = np.eye(ndim + 1)
    affine[:ndim, :ndim] = direction * np.array(image.GetSpacing(), dtype=np.float64)[None, :]
    affine[:ndim, ndim] = image.GetOrigin()
    return affine


def from_image(image) -> ImageData:
    """The array and grid of a nibabel or SimpleITK image (see the module notes)."""
    if is_nibabel_image(image):
        array = np.asanyarray(image.dataobj)
        ndim = min(array.ndim, 3)
        affine = np.asarray(image.affine, dtype=np.float64)
        if ndim == 2:  # a 2-D image keeps the in-plane part of its 4x4 affine
            affine = affine[np.ix_([0, 1, 3], [0, 1, 3])]
        grid = grid_from_affine(array.shape[:ndim], affine, source="the image's affine")
        return ImageData(array, grid, "nibabel", image)
    if is_simpleitk_image(image):
        import SimpleITK as sitk

        if image.GetNumberOfComponentsPerPixel() != 1:
            raise ValueError(f"data is a SimpleITK image with {image.GetNumberOfComponentsPerPixel()} components "
                             "per voxel; resample single-component images (sitk.VectorIndexSelectionCast picks one)")
        view = sitk.GetArrayViewFromImage(image)  # (z, y, x), read-only, no copy
        array = view.transpose(tuple(range(view.ndim))[::-1])
        grid = grid_from_affine(image.GetSize(), _simpleitk_affine(image), source="the image's geometry")
        return ImageData(array, grid, "SimpleITK", image)
    raise TypeError(f"expected a nibabel or SimpleITK image, got {type(image).__name__}")


def to_image(source: ImageData, array, grid: Grid):
    """``array`` on ``grid`` as the same kind of image as ``source.image``."""
    array = np.asarray(array)
    if source.kind == "nibabel":
        image = source.image
        header = image.header.copy()
        if hasattr(header, "set_data_dtype"):
            header.set_data_dtype(array.dtype)
        affine = grid.affine
        if grid.ndim == 2:
            full = np.eye(4)
            full[np.ix_([0, 1, 3], [0, 1, 3])] = affine
            full[:, 2] = image.affine[:, 2]
            full[3] = (0.0, 0.0, 0.0, 1.0)
            affine = full
        new = type(image)(array, affine, header=header)
        if hasattr(new, "set_sform") and hasattr(image, "get_sform"):
            _, sform_code = image.get_sform(coded=True)
            _, qform_code = image.get_qform(coded=True)
            new.set_sform(affine, code=int(sform_code) if sform_code is not None else 0)
            new.set_qform(affine, code=int(qform_code) if qform_code is not None else 0)
        return new
    import SimpleITK as sitk

    result = sitk.GetImageFromArray(np.ascontiguousarray(array.transpose(tuple(range(array.ndim))[::-1])))
    result.SetSpacing(tuple(float(v) for v in grid.spacing))
    result.SetOrigin(tuple(float(v) for v in grid.origin))
    result.SetDirection(tuple(float(v) for v in grid.direction_matrix.ravel()))
    for key in source.image.GetMetaDataKeys():
        result.SetMetaData(key, source.image.GetMetaData(key))
    return result


def check_spacing_agrees(spacing, grid: Grid, kind: str) -> None:
    """A ``spacing`` given with an image must be the image's (its own grid, or its spacing)."""
    if spacing is None:
        return
    if isinstance(spacing, Grid):
        same = spacing.shape == grid.shape and spacing.misfit_voxels(grid) <= 1e-6
        given = repr(spacing)
    else:
        try:
            values = np.asarray(spacing, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise TypeError(f"spacing must be a sequence of numbers or a Grid, got {spacing!r}") from None
        same = values.shape == (grid.ndim,) and np.allclose(values, grid.spacing, rtol=1e-6, atol=0)
        given = tuple(float(v) for v in values)
    if not same:
        raise ValueError(f"spacing={given} disagrees with the {kind} image's own spacing "
                         f"{tuple(round(s, 6) for s in grid.spacing)}; the geometry comes from the image, "
                         "so leave spacing out")


def frame_for(kind: str | None, grid: Grid) -> Grid:
    """``grid`` (in RAS, as nibabel and files give it) in the frame of a ``kind`` image."""
    if kind != "SimpleITK" or grid.ndim != 3:
        return grid
    return grid_from_affine(grid.shape, _ras(grid.affine), source="the target grid")


def target_grid(target, ndim: int, frame: str | None = None) -> Grid:
    """The :class:`Grid` ``target=`` names.

    ``target`` is a :class:`Grid` (taken as is), a nibabel or SimpleITK image, a path to an
    image file (its header only), ``(shape, affine)``, a ``{"data", "affine"}`` mapping
    (TorchIO's ``Image``) or an array/tensor with an ``affine`` (MONAI's ``MetaTensor``;
    its last ``ndim`` axes are spatial). ``frame`` is the kind of the data being resampled
    (``"SimpleITK"`` when the data is a SimpleITK image, whose physical frame is LPS; else
    RAS), and images and files of the other frame are converted to it.
    """
    if isinstance(target, Grid):
        return target
    if is_image(target):
        found = from_image(target)
        grid = found.grid
        if found.kind == "SimpleITK" and frame != "SimpleITK":
            grid = grid_from_affine(grid.shape, _ras(grid.affine), source="the target image's geometry")
        elif found.kind == "nibabel" and frame == "SimpleITK":
            grid = frame_for("SimpleITK", grid)
        return grid
    if isinstance(target, (str, os.PathLike)):
        return frame_for(frame, _file_grid(target))
    if isinstance(target, tuple) and len(target) == 2 and not isinstance(target[0], (np.ndarray, Grid)):
        shape, affine = target
        affine = np.asarray(_host(affine), dtype=np.float64)
        return grid_from_affine(shape, affine, source="the target's affine")
    if isinstance(target, Mapping):
        try:
            array, affine = target[DATA_ENTRY], target[AFFINE_ENTRY]
        except KeyError:
            raise ValueError("target is a mapping without 'data' and 'affine' entries; give a Grid or a "
                             "reference image with both") from None
    elif hasattr(target, AFFINE_ENTRY) and hasattr(target, "shape"):
        array, affine = target, target.affine
    else:
        raise TypeError("target must be a gpuresample.Grid, a nibabel or SimpleITK image, a path to an image "
                        f"file, or (shape, affine); got {type(target).__name__}")
    affine = np.asarray(_host(affine), dtype=np.float64)
    spatial = affine.shape[0] - 1
    shape = tuple(int(n) for n in array.shape)[-spatial:]
    return grid_from_affine(shape, affine, source="the affine of the target reference")


def _file_grid(path) -> Grid:
    """The grid an image file's header describes, in RAS (as :func:`gpuresample.io.read`)."""
    from .io import read_grid

    return read_grid(path)


def _host(affine):
    """A (small) affine matrix as NumPy, wherever it lives (a torch tensor, CuPy, a list)."""
    if isinstance(affine, (str, bytes)) or not (isinstance(affine, (list, tuple)) or hasattr(affine, "shape")):
        raise TypeError(f"affine must be a square matrix (an array, a tensor or nested lists), "
                        f"got {type(affine).__name__} {affine!r:.60}")
    if hasattr(affine, "detach") and hasattr(affine, "cpu"):  # torch, CPU or CUDA
        affine = affine.detach().cpu().numpy()
    elif hasattr(affine, "__cuda_array_interface__") and hasattr(affine, "get"):  # CuPy
        affine = affine.get()
    return affine


__all__ = ["ImageData", "from_image", "is_image", "target_grid", "to_image"]
