"""Oblique targets in the CUDA kernels (``kernels/affine.cu``), run through the g++ harness.

The launches :func:`gpuresample.backends.cuda.run_affine_block` plans are replayed thread
by thread by ``tests/harness`` and compared with the CPU backend's compiled loops on the
same :class:`~gpuresample.onto.AffineSampling`: bit for bit for every interpolation (docs/design.md §1
asks exact nearest/label and 1e-6 for linear/cubic; both follow one arithmetic contract).
"""

from __future__ import annotations

import numpy as np
import pytest
from harness.device import HarnessDevice, build, compiler
from helpers import assert_same_label_bits, float16_tie_pairs, random_volume, tie_winner

import gpuresample as gr
from gpuresample.backends.cpu import CpuBackend
from gpuresample.backends.cuda import run_kernels
from gpuresample.backends.cuda.compile import affine_name
from gpuresample.onto import affine_sampling

pytestmark = pytest.mark.skipif(compiler() is None, reason="no C++ compiler (g++ or $CXX) to build the kernels as C++")

INTERPOLATIONS = ["nearest", "linear", "cubic", "label"]
DTYPES = ["float32", "float16", "float64", "uint8", "int16", "uint32", "bool"]
#: (input dtype, output dtype) pairs: rounding, clipping, float16 and bool outputs.
CROSS_DTYPES = [("float32", "uint8"), ("float32", "int16"), ("float64", "float16"), ("float32", "bool"),
                ("uint16", "float32"), ("float16", "float64")]


def _combos():
    combos = [(d, d, i) for d in DTYPES for i in INTERPOLATIONS]
    combos += [(a, b, i) for a, b in CROSS_DTYPES for i in ("nearest", "linear", "cubic")]
    combos += [("uint8", "int16", "label")]
    return combos


@pytest.fixture(scope="module")
def affine_library(tmp_path_factory):
    names = list(dict.fromkeys(affine_name(*c) for c in _combos()))
    names += ["gr_gather_coefficients<float>", "gr_gather_coefficients<double>",
              "gr_gather_coefficients<gr_half>", "gr_gather_coefficients<unsigned char>",
              "gr_gather_coefficients<short>", "gr_gather_coefficients<unsigned int>",
              "gr_gather_coefficients<bool>", "gr_gather_coefficients<unsigned short>", "gr_spline_prefilter"]
    return build(names, tmp_path_factory.mktemp("affine_kernels"))


def rotation(axis: int, degrees: float) -> np.ndarray:
    a = np.deg2rad(degrees)
    i, j = [k for k in range(3) if k != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = np.cos(a), -np.sin(a), np.sin(a), np.cos(a)
    return r


def volume(shape, dtype, interpolation, seed=0):
    if interpolation == "label":
        codes = np.random.default_rng(seed).integers(0, 5, size=shape)
        dtype = np.dtype(dtype)
        return codes > 2 if dtype == np.bool_ else (codes * (1.5 if dtype.kind == "f" else 1)).astype(dtype)
    return random_volume(shape, dtype, seed=seed)


CASES = {
    "3d": ((15, 13, 11), gr.Grid((14, 16, 12), (1.1, 0.9, 1.2), origin=(1.0, -2.0, 0.5),
                                 direction=rotation(0, 20.0) @ rotation(2, 7.0)), None),
    # positions on whole voxels up to the edges (u = 0 and n - 1), lines along which they barely move
    "nearly_aligned": ((9, 10, 11), gr.Grid((9, 12, 11), (1.0, 1.0, 1.0), origin=(0.0, -1.0, 0.0),
                                            direction=rotation(0, 1e-7)), None),
    "slab": ((30, 9, 8), gr.Grid((28, 10, 9), (1.1, 1.0, 0.9), origin=(0.5, 1.0, -1.0),
                                 direction=rotation(1, 15.0)), (9, 21)),
}


def sampling_for(case, interpolation, fill):
    shape, target, rows = CASES[case]
    sampling = affine_sampling(gr.Grid(shape, (1.0, 1.0, 1.0)), target, interpolation, fill)
    return sampling if rows is None else sampling.rows(*rows)


def run_both(library, x, sampling, out_dtype):
    first, stop = sampling.input_rows
    block = x[first:stop]
    device = HarnessDevice(library)
    result = np.empty(sampling.output_shape, out_dtype)
    run_kernels(device, block, sampling, result)
    assert device.launched and all(n.startswith(("gr_affine", "gr_gather", "gr_spline")) for n in device.launched)
    expected = np.empty(sampling.output_shape, out_dtype)
    CpuBackend().resample_block(block, sampling, expected)
    return result, expected


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_affine_kernels_match_cpu_bit_for_bit(affine_library, interpolation, dtype, case):
    x = volume(CASES[case][0], dtype, interpolation, seed=len(case))
    fill = 1 if np.dtype(dtype) == np.bool_ else 3
    sampling = sampling_for(case, interpolation, fill)
    result, expected = run_both(affine_library, x, sampling, x.dtype)
    np.testing.assert_array_equal(result, expected)
    assert (result == fill).any() and np.unique(result).size > 1  # some voxels outside, some inside


@pytest.mark.parametrize("interpolation", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("in_dtype,out_dtype", CROSS_DTYPES)
def test_affine_kernels_convert_like_cpu(affine_library, interpolation, in_dtype, out_dtype):
    x = random_volume(CASES["3d"][0], in_dtype, seed=3)
    if np.dtype(in_dtype).kind == "f":
        x = (x * 3).astype(in_dtype)  # beyond int16 and uint8: clipping happens
    result, expected = run_both(affine_library, x, sampling_for("3d", interpolation, 0), out_dtype)
    np.testing.assert_array_equal(result, expected)


def test_affine_label_kernel_into_another_dtype(affine_library):
    x = volume(CASES["3d"][0], "uint8", "label", seed=4)
    result, expected = run_both(affine_library, x, sampling_for("3d", "label", 0), np.int16)
    np.testing.assert_array_equal(result, expected)


def test_affine_float16_label_ties_by_value(affine_library):
    """gr_affine_label<gr_half>: every float16 bit pattern against partners it ties with; the
    lower value wins, NaN last, one label's first tap as stored; the fill as float16 rounds it."""
    pairs = float16_tie_pairs()
    target = gr.Grid((1, pairs.shape[1], 3), (1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.5))  # voxel 0 between the taps
    sampling = affine_sampling(gr.Grid(pairs.shape, (1.0, 1.0, 1.0)), target, "label", 0.1)
    result, expected = run_both(affine_library, pairs, sampling, np.float16)
    assert_same_label_bits(result[..., :1], tie_winner(pairs))
    assert (result[..., 2].view(np.uint16) == np.float16(0.1).view(np.uint16)).all()
    np.testing.assert_array_equal(result.view(np.uint16), expected.view(np.uint16))


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_affine_kernels_2d(affine_library, interpolation):
    x = volume((19, 23), "float32", interpolation, seed=5)
    a = np.deg2rad(25.0)
    target = gr.Grid((20, 21), (1.1, 1.0), origin=(1.0, -2.0), direction=[[np.cos(a), -np.sin(a)],
                                                                         [np.sin(a), np.cos(a)]])
    sampling = affine_sampling(gr.Grid(x.shape, (1.0, 1.0)), target, interpolation, -1.0)
    result, expected = run_both(affine_library, x, sampling, x.dtype)
    np.testing.assert_array_equal(result, expected)
    assert (result == -1).any()
