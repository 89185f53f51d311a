"""Interpolation names and the arithmetic precision each dtype is resampled in."""

from __future__ import annotations

from enum import Enum

import numpy as np


class Interpolation(str, Enum):
    """How output values are computed from the input voxels around them.

    ``NEAREST``
        The voxel at ``floor(u + 0.5)`` (ties go up, as SciPy and ITK). Keeps label values.
    ``LINEAR``
        Separable linear (bi/trilinear) interpolation; default for volumes.
    ``CUBIC``
        Interpolating cubic B-spline, SciPy's ``order=3, mode='nearest'``.
    ``LABEL``
        For masks: per-label linear weights, arg-max, ties go to the lower label;
        only the input's label values appear in the output.

    Strings work too, in any case: ``"Linear"`` is ``Interpolation.LINEAR``. So do the
    names other libraries use (:data:`ALIASES`): ``"trilinear"`` and ``"bilinear"`` are
    ``LINEAR``, ``"bspline"`` is ``CUBIC``, ``"nearest-exact"`` is ``NEAREST`` (ours already
    picks ``floor(u + 0.5)``).

    Examples
    --------
    >>> Interpolation.parse("CUBIC") is Interpolation.CUBIC
    True
    >>> Interpolation("Linear") is Interpolation.LINEAR
    True
    >>> Interpolation.parse("trilinear") is Interpolation.LINEAR
    True
    """

    NEAREST = "nearest"
    LINEAR = "linear"
    CUBIC = "cubic"
    LABEL = "label"

    @classmethod
    def _missing_(cls, value):
        """``Interpolation("Linear")``: the constructor takes names in any case too."""
        if isinstance(value, str):
            key = value.strip().lower()
            key = ALIASES.get(key, key)
            for member in cls:
                if member.value == key:
                    return member
        return None

    @classmethod
    def parse(cls, value, name: str = "interpolation") -> "Interpolation":
        """The member for ``value`` (a member or a name in any case), else ``ValueError``."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            try:
                return cls(value)  # any case: see _missing_
            except ValueError:
                pass
        allowed = ", ".join(repr(m.value) for m in cls) + " (or " + ", ".join(repr(a) for a in ALIASES) + ")"
        raise ValueError(f"{name}={value!r} is not an interpolation; allowed: {allowed}")

    def __str__(self) -> str:
        return self.value


#: Other libraries' names for our interpolations (PyTorch, MONAI, TorchIO, SimpleITK).
ALIASES = {"trilinear": "linear", "bilinear": "linear", "bspline": "cubic", "nearest-exact": "nearest"}

#: Interpolations whose table has two taps per axis (label uses linear weights).
LINEAR_TAPS = (Interpolation.LINEAR, Interpolation.LABEL)


def working_dtype(dtype) -> np.dtype:
    """The float type all arithmetic for an input of ``dtype`` is done in.

    float16 and float32 work in float32; float64 and every integer and bool input
    work in float64, so integer results round exactly the same on every backend.
    """
    dtype = np.dtype(dtype)
    if dtype in (np.dtype(np.float16), np.dtype(np.float32)):
        return np.dtype(np.float32)
    return np.dtype(np.float64)
