"""Zero-weight taps never contribute (inf stays inf, an identity resample returns its input bit
for bit), and label ties go to the lower label in every dtype (NaN labels last)."""

from __future__ import annotations

import numpy as np
import pytest

import gpuresample as gr

FLOATS = [np.float16, np.float32, np.float64]
INF = np.inf


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("interpolation", ["nearest", "linear"])
def test_identity_resample_returns_the_input_bit_for_bit(dtype, interpolation):
    data = np.random.default_rng(0).normal(size=(5, 6, 7)).astype(dtype)
    data[1, 2, 3], data[4, 0, 6], data[0, 5, 0] = INF, -INF, np.nan
    data[2, 2, 2] = -0.0
    got = gr.resample(data, (1, 1, 1), target_shape=data.shape, interpolation=interpolation)
    np.testing.assert_array_equal(got.view(np.uint8), data.view(np.uint8))


@pytest.mark.parametrize("dtype", FLOATS)
def test_inf_beside_an_axis_of_length_one_stays_inf(dtype):
    data = np.ones((1, 4, 4), dtype)
    data[0, 1, 1] = INF
    got = gr.resample(data, (1, 1, 1), target_shape=(3, 4, 4))
    assert np.all(got[:, 1, 1] == INF)
    assert not np.isnan(got).any()


def test_inf_reaches_exactly_the_outputs_whose_non_zero_weights_touch_it():
    data = np.zeros((6, 1, 9), np.float32)
    data[2, 0, 4] = INF
    got = gr.resample(data, (1, 1, 1), target_shape=(12, 1, 18))
    # upsampling by 2 (linear): output j samples u = (j + 0.5) / 2 - 0.5; the inf row 2 has a
    # non-zero weight at outputs j = 3..6 (u in (1, 3)); likewise along the last axis j = 7..10
    touched = np.zeros((12, 1, 18), bool)
    touched[3:7, 0, 7:11] = True
    assert np.all(np.isinf(got[touched])) and np.all(got[touched] > 0)
    assert np.all(got[~touched] == 0)


FLOAT16_LABELS = pytest.mark.xfail(strict=True, reason="float16 labels are still compared by bit pattern "
                                   "(viewed as uint16), so -1 and -2 tie the wrong way; known, not yet fixed")


@pytest.mark.parametrize("dtype", [pytest.param(np.float16, marks=FLOAT16_LABELS), np.float32, np.float64,
                                   np.int8, np.int16, np.int32, np.int64])
def test_label_ties_go_to_the_lower_label_in_every_dtype(dtype):
    # two labels, one voxel each along axis 2; the output voxel between them sees equal weights
    data = np.array([[[-1, -2]]], dtype=dtype)
    got = gr.resample(data, (1, 1, 1), target_shape=(1, 1, 1), interpolation="label")
    assert got.dtype == dtype and got[0, 0, 0] == -2, got
    data = np.array([[[-2, -1]]], dtype=dtype)
    got = gr.resample(data, (1, 1, 1), target_shape=(1, 1, 1), interpolation="label")
    assert got[0, 0, 0] == -2, got


@pytest.mark.parametrize("dtype", FLOATS)
def test_nan_labels_lose_ties_and_count_as_one_label(dtype):
    for pair in ([np.nan, 3.0], [3.0, np.nan]):
        got = gr.resample(np.array([[pair]], dtype), (1, 1, 1), target_shape=(1, 1, 1), interpolation="label")
        assert got[0, 0, 0] == 3.0, (pair, got)
    # two NaN taps outweigh one number: NaN is one label, whatever the payload
    data = np.array([[[np.nan, np.nan, 5.0, 5.0]]], dtype)
    got = gr.resample(data, (1, 1, 1), target_shape=(1, 1, 2), interpolation="label")
    assert np.isnan(got[0, 0, 0]) and got[0, 0, 1] == 5.0
