"""Zero-weight taps never contribute (inf stays inf, an identity resample returns its input bit
for bit), and label ties go to the lower label in every dtype (NaN labels last), float16 too,
on the compiled loops and on the array path."""

from __future__ import annotations

import numpy as np
import pytest

import gpuresample as gr
from gpuresample import Grid
from gpuresample.backends import _loops, clear_caches
from gpuresample.backends.cpu import CpuBackend
from gpuresample.onto import affine_sampling
from helpers import assert_same_label_bits, float16_tie_pairs, tie_winner

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


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64])
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


@pytest.fixture(params=["native", "array"])
def loops(request, monkeypatch):
    """The compiled loops (where built) or the NumPy/SciPy array path."""
    if request.param == "native" and not _loops.is_compiled():
        pytest.skip("the compiled CPU loops are not built here")
    monkeypatch.setenv(_loops.LOOPS_VARIABLE, request.param)
    clear_caches()
    yield request.param
    monkeypatch.undo()
    clear_caches()


def test_float16_labels_tie_by_value_for_every_bit_pattern(loops):
    """Each float16 value against its neighbours, its negation, 0, NaN: the lower value wins,
    -0.0 and 0.0 are one label (the first tap's bits), NaN is one label after every number."""
    pairs = float16_tie_pairs()
    got = gr.resample(pairs, (1, 1, 1), target_shape=(1, pairs.shape[1], 1), interpolation="label")
    assert_same_label_bits(got, tie_winner(pairs))


def test_float16_label_ties_onto_another_grid(loops):
    """The oblique loops' vote (an AffineSampling block): the same ties as the per-axis loops."""
    pairs = float16_tie_pairs()
    source = Grid(pairs.shape, (1.0, 1.0, 1.0))
    target = Grid((1, pairs.shape[1], 1), (1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.5))  # between the two taps
    sampling = affine_sampling(source, target, "label", 0.0)
    got = np.empty(sampling.output_shape, np.float16)
    CpuBackend().resample_block(pairs, sampling, got)
    assert_same_label_bits(got, tie_winner(pairs))


def test_float16_label_fill_onto_another_grid(loops):
    """Outside the source, float16 labels get the fill as float16 rounds it (-0.0 kept)."""
    labels = np.array([[[-1.0, -2.0]]], np.float16)
    target = Grid((1, 1, 4), (1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.5))
    for fill in (-0.0, 0.1, np.nan, 7.0):
        sampling = affine_sampling(Grid(labels.shape, (1.0, 1.0, 1.0)), target, "label", fill)
        got = np.empty(sampling.output_shape, np.float16)
        CpuBackend().resample_block(labels, sampling, got)
        assert got[0, 0, 0] == -2.0
        outside = got[0, 0, 2:]
        assert (outside.view(np.uint16) == np.array(fill, np.float16).view(np.uint16)).all(), (fill, got)
