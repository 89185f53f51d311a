"""Test helpers shared by the test modules (importable: ``from helpers import random_volume``)."""

from __future__ import annotations

import numpy as np

ALL_DTYPES = ["float32", "float16", "float64", "uint8", "int8", "uint16", "int16", "uint32", "int32", "int64",
              "uint64", "bool"]


def to_backend_kind(array: np.ndarray, backend: str):
    """The array in the kind the backend computes on (CuPy for GPU backends)."""
    if backend in ("cpu", "scipy"):
        return array
    import cupy
    return cupy.asarray(array)


def to_numpy(array) -> np.ndarray:
    return array.get() if hasattr(array, "get") and not isinstance(array, np.ndarray) else np.asarray(array)


def random_volume(shape, dtype, seed=0) -> np.ndarray:
    """Random values spanning a good part of ``dtype``'s range (labels for bool)."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.random(shape) > 0.5
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        lo, hi = max(info.min, -30000), min(info.max, 60000)
        return rng.integers(lo, hi, size=shape, endpoint=True).astype(dtype)
    return (rng.standard_normal(shape) * 100).astype(dtype)


__all__ = ["ALL_DTYPES", "to_backend_kind", "to_numpy", "random_volume"]
