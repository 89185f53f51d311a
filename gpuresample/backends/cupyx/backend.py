"""Backend ``cupyx``: CuPy arrays through CuPy array operations and ``cupyx.scipy.ndimage``.

The fallback on the GPU where our CUDA kernels cannot run (their sources missing, NVRTC
unusable). It runs the array code (``_array``, ``_affine_xp``) with CuPy: nearest, linear
and label agree with the CPU bit for bit; the cubic prefilter along axis 0 (the axis slabs
cut) is the compiled loops' recursion written with array operations, so it agrees bit for
bit and chunked runs equal whole ones; along the other axes it is
``cupyx.scipy.ndimage.spline_filter1d``, which agrees with the CPU's to rounding.
Anti-aliasing runs the Gaussian tables (:func:`~gpuresample.tables.smoothing_passes`)
through the array code's separable passes, so it agrees with the CPU bit for bit.

Every pass materialises its intermediate volume, so this backend needs more device memory
than the kernels (see :func:`~gpuresample.backends._array.array_scratch_bytes`). Importing
this module needs neither CuPy nor a GPU.
"""

from __future__ import annotations

from ... import _cupy
from ...onto import AffineSampling
from ...tables import SamplingTables
from .._affine_xp import affine_with
from .._array import array_scratch_bytes, resample_with, smooth_with
from ..base import BackendUnavailable, DeviceBackend


def _cupy_module():
    return _cupy.import_cupy()


def _ndimage():
    from cupyx.scipy import ndimage
    return ndimage


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

    def smooth(self, block, tables: SamplingTables, work):
        """The Gaussian tables through the array code's passes on CuPy (``_array.smooth_with``)."""
        return smooth_with(_cupy_module(), block, tables, work)

    def resample_block(self, source, tables: SamplingTables, out) -> None:
        if isinstance(tables, AffineSampling):  # an oblique target (docs/design.md §1)
            affine_with(_cupy_module(), _ndimage(), source, tables, out)
            return
        resample_with(_cupy_module(), _ndimage(), source, tables, out)

    def scratch_bytes(self, tables: SamplingTables, in_dtype, out_dtype) -> int:
        return array_scratch_bytes(tables, in_dtype, out_dtype)


__all__ = ["CupyxBackend"]
