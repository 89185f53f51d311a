"""The one-call API: :func:`resample` (arrays, or nibabel and SimpleITK images)."""

from __future__ import annotations

from . import images
from .job import build_job


def resample(data, spacing=None, *, target_shape=None, target_spacing=None, interpolation="linear",
             dtype=None, antialias=False, channel_axis=None, backend="auto", device=None,
             max_memory=None, out=None, progress=False, target=None, fill=0):
    """Resample a 2-D or 3-D array to a new voxel grid over the same physical extent, or onto another grid.

    Parameters
    ----------
    data : array or image
        NumPy or CuPy array, a DLPack tensor (e.g. torch, CPU or CUDA) or a host
        array-like with ``shape``, ``dtype`` and slicing (e.g. Zarr). Never modified.
        Or a nibabel image (any ``SpatialImage``) or a SimpleITK ``Image``: the geometry
        comes from the image and the result is the same kind of image on the target
        grid (nibabel: the new affine under the source's sform/qform codes; SimpleITK:
        spacing, origin, direction). For a SimpleITK image every shape and spacing is in
        SimpleITK's ``(x, y, z)`` order, as ``GetSize()`` and ``GetSpacing()`` read; for a
        nibabel image in its array's ``(i, j, k)`` order.
        Dtypes: float16/32/64, (u)int8/16/32/64, bool, in either byte order (the
        result has the native-order dtype). A ``numpy.ma.MaskedArray`` is a
        ``TypeError`` (pass ``data.filled(value)``).
    spacing : sequence of float or Grid, optional
        Voxel size per array axis in mm, or the data's :class:`~gpuresample.Grid` (its
        shape must be the data's spatial shape; its origin and direction place the data
        for ``target=``). Needed to resample a bare array by ``target_spacing`` (a
        ``ValueError`` naming ``spacing`` otherwise); by ``target_shape`` or onto
        ``target=`` a missing spacing means 1 mm per axis (the sampling positions do not
        depend on it). With an image, leave it out (one that disagrees with the image is
        a ``ValueError``).
    target_shape : sequence of int, optional
        Voxels per axis of the result; the bounding box is kept exactly.
    target_spacing : sequence of float, optional
        Voxel size per axis of the result; the grid stays centred. Give this, or
        ``target_shape``, or both when they agree.
    interpolation : {'nearest', 'linear', 'cubic', 'label'} or Interpolation
        ``'label'`` is for label masks: per-label linear weights, arg-max.
    dtype : dtype, optional
        Output dtype (default: the input's). Integer results are rounded to
        nearest (half to even) and clipped to the dtype's range. Float data holding
        NaN or inf into an integer or bool dtype is a ``ValueError``; so are labels
        (``'label'``, or ``'nearest'`` from integer/bool data) the dtype cannot hold.
    antialias : bool
        Gaussian smoothing before downsampling (linear/cubic only), with
        ``sigma = max(0, (target_spacing / spacing - 1) / 2)`` input voxels per axis.
    channel_axis : int, optional
        For 4-D data: the axis of channels; each is resampled onto the same grid.
    backend : {'auto', 'cpu', 'cupyx', 'kernels'}
        Where to compute; ``'auto'`` keeps data where it is.
    device : {None, 'cpu', 'cuda'}
        Move data for the computation; results come back in the input's kind
        (on the device asked for, for DLPack tensors and CuPy arrays).
    max_memory : int or str, optional
        Memory budget (bytes or e.g. ``"2GB"``); the work is split into slabs
        along axis 0 to stay within it. Results are identical to an unsplit run.
    out : array-like, optional
        Where to write the result (a NumPy array or ``numpy.memmap``, a Zarr array,
        a CuPy array), of the result's shape and dtype. A read-only ``out`` or one that
        shares memory with ``data`` is a ``ValueError`` (the input is never modified).
        Untouched when a check fails before the run; undefined after an exception
        during it. Without ``out``, a result larger than the memory available is a
        ``MemoryError`` before anything runs.
    progress : bool
        Show a progress bar over slabs (tqdm if installed).
    target : Grid, image, path or (shape, affine), optional
        Resample onto this grid (another dataset's: any origin, extent, spacing and
        direction), instead of ``target_shape``/``target_spacing`` (giving both is a
        ``ValueError``): a :class:`~gpuresample.Grid`, a nibabel or SimpleITK image, a
        path to an image file (only its header is read) or ``(shape, affine)`` with a
        4x4 (3x3 in 2-D) index-to-physical matrix. Output voxel ``j`` samples the physical point
        ``target.affine @ j``. A target that does not overlap the data at all warns
        (``UserWarning``) and gives an all-``fill`` result.
    fill : float
        Value of output voxels whose position lies outside the data (beyond half a
        voxel past the edge voxels' centres) with ``target=``. Default 0; NaN is
        allowed for float outputs; it must be a value of the output dtype.

    Returns
    -------
    array or image
        The resampled array, of the input's kind (or ``out``); for an image ``data``,
        an image of the same kind.

    Notes
    -----
    Output voxel ``j`` samples input position
    ``u(j) = ((j + 0.5) * spacing' + (extent - extent') / 2) / spacing - 0.5``;
    positions outside the input are clamped to the edge (SciPy ``mode='nearest'``).
    With ``target=`` the position is ``u = spacing⁻¹ directionᵀ (target.affine @ j - origin)``
    per voxel (float64); inside ``[-0.5, n - 0.5]`` on every axis it is sampled as above,
    outside it gets ``fill``. Targets whose directions equal the data's up to axis
    permutation and sign run as per-axis tables; other (oblique) ones as a position per
    voxel, on every backend.
    With ``'nearest'`` and ``'linear'``, NaN spreads only to outputs whose taps (with
    non-zero weight) touch it. With ``'cubic'``, one NaN or inf anywhere in the input
    makes every output voxel NaN (the prefilter spreads it along every line of every
    axis; split into slabs, every voxel of the slabs whose input rows hold it): fill
    NaN first (``numpy.nan_to_num``) or use ``'linear'``.

    int64/uint64 values are computed in float64 by ``'linear'`` and ``'cubic'`` (exact
    up to 2**53); ``'nearest'`` and ``'label'`` pick voxels, so labels stay exact.

    Examples
    --------
    >>> import numpy as np
    >>> import gpuresample as gr
    >>> volume = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    >>> gr.resample(volume, (1.0, 1.0, 1.0), target_shape=(4, 6, 8)).shape
    (4, 6, 8)
    >>> gr.resample(volume, (2.0, 1.0, 1.0), target_spacing=(1.0, 1.0, 1.0), interpolation="nearest").shape
    (4, 3, 4)
    """
    image = None
    if images.is_image(data):
        image = images.from_image(data)
        images.check_spacing_agrees(spacing, image.grid, image.kind)
        data, spacing = image.array, image.grid
        if channel_axis is None and len(data.shape) > image.grid.ndim:
            raise ValueError(f"data is a {len(data.shape)}-D {image.kind} image; give channel_axis= for the "
                             "axis that is not spatial")
    if target is not None:
        spatial = len(data.shape) - (channel_axis is not None)
        target = images.target_grid(target, spatial, image.kind if image is not None else None)
    elif spacing is None and target_spacing is not None:
        raise ValueError("spacing is missing: resampling by target_spacing needs the data's own spacing "
                         "(spacing=, mm per axis, or its Grid); a bare array has none")
    job = build_job(data, spacing, target_shape=target_shape, target_spacing=target_spacing,
                    interpolation=interpolation, dtype=dtype, antialias=antialias,
                    channel_axis=channel_axis, backend=backend, device=device,
                    max_memory=max_memory, out=out, onto=target, fill=fill)
    result = job.run(progress=progress)
    if image is None or out is not None:
        return result
    return images.to_image(image, result, job.target)
