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


def float16_tie_pairs() -> np.ndarray:
    """Every float16 bit pattern beside partners it ties with (equal weights): the next values
    up and down, its negation, +0, a NaN and a shuffled one; shape ``(1, pairs, 2)``."""
    every = np.arange(1 << 16, dtype=np.uint16)
    partners = [np.roll(every, 1), np.roll(every, -1), every ^ np.uint16(0x8000), np.zeros_like(every),
                np.full_like(every, 0x7e00), np.random.default_rng(3).permutation(every)]
    first = np.concatenate([every] * len(partners))
    second = np.concatenate(partners)
    return np.stack([first, second], axis=-1)[None].view(np.float16)


def tie_winner(pairs: np.ndarray) -> np.ndarray:
    """The label each pair of equally weighted taps gives, shape ``(1, pairs, 1)``: the lower by
    value (NaN after every number); taps of one label (equal values, or both NaN) give the
    first tap as stored."""
    a, b = pairs[..., :1], pairs[..., 1:]
    one_label = (a == b) | (np.isnan(a) & np.isnan(b))
    a_lower = (a < b) | (~np.isnan(a) & np.isnan(b))
    return np.where(one_label | a_lower, a, b)


def assert_same_label_bits(got: np.ndarray, expected: np.ndarray) -> None:
    """Labels equal as stored (float16 bit patterns, so -0.0 and NaN payloads too)."""
    assert got.dtype == expected.dtype and got.shape == expected.shape
    wrong = np.flatnonzero(got.view(np.uint16) != expected.view(np.uint16))
    assert wrong.size == 0, (f"{wrong.size} pairs differ; first: taps {float16_tie_pairs()[0, wrong[0]]}, "
                             f"got {got.ravel()[wrong[0]]}, expected {expected.ravel()[wrong[0]]}")


def traced_peak(run) -> int:
    """Peak bytes Python's allocator (NumPy's arrays included) held while ``run()`` ran."""
    import tracemalloc

    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def communicate_or_kill(process, timeout_s: float, what: str = "") -> tuple:
    """``(stdout, stderr)`` of a child started with ``start_new_session=True``; its whole process
    group killed and the test failed when it outlives ``timeout_s``."""
    import os
    import signal
    import subprocess

    import pytest

    try:
        return process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"hung for {timeout_s} s{what}:\n{stdout}\n{stderr[-3000:]}")
