"""Values a dtype= cannot hold, and errors that name the argument, its value and what is allowed.

Each error is one line, a ``TypeError`` or ``ValueError``, raised before anything runs.
"""

from __future__ import annotations

import numpy as np
import pytest

import gpuresample as gr


# ----------------------------------------------------------------- nearest into a float dtype
@pytest.mark.parametrize("values, dtype, named", [
    (np.array([0, 2**24 + 1], np.int32), "float32", "16777217"),
    (np.array([0, 2**63 - 1], np.int64), "float64", str(2**63 - 1)),
    (np.array([1, 2**62 + 1], np.uint64), "float64", str(2**62 + 1)),
])
def test_nearest_from_integers_refuses_a_float_dtype_that_changes_them(values, dtype, named):
    volume = np.resize(values, (4, 4, 3))
    with pytest.raises(ValueError, match=rf"dtype={dtype}.*{named}") as refused:
        gr.resample(volume, None, target_shape=(6, 6, 6), interpolation="nearest", dtype=dtype)
    assert "\n" not in str(refused.value)


def test_nearest_from_integers_into_a_float_dtype_that_holds_them():
    volume = np.resize(np.array([0, 2**24, 2**25, -(2**24)], np.int32), (4, 4, 3))   # beyond 2**24, but exact
    result = gr.resample(volume, None, target_shape=(4, 4, 3), interpolation="nearest", dtype="float32")
    np.testing.assert_array_equal(result, volume.astype(np.float32))
    linear = gr.resample(volume + 1, None, target_shape=(6, 6, 6), interpolation="linear", dtype="float32")
    assert linear.dtype == np.float32    # interpolated values are new values: no exactness check
