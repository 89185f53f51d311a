"""The oblique loops of the extension module (``gpuresample._core``: ``_native/affine.cpp`` over
``kernels/gr_affine.cuh``) give the results of the loops they replace bit for bit.

References: the ahead-of-time C library through ctypes (``backends/_native.py``) and the Numba
loops (``backends/_affine_loops.py``) where they are there, and an independent NumPy
evaluation of the arithmetic of docs/design.md §2 (last paragraph) for nearest and linear.
Cases: every dtype the loops read, output dtypes with rounding and clipping, fills, slabs
(first rows and j0_start), strided sources and outputs, thread counts, and the whole CPU
backend (float16, bool, 2-D data, chunked runs) with its oblique loops swapped for these.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import random_volume

import gpuresample as gr
from gpuresample.backends import _loops
from gpuresample.backends._common import integer_limits
from gpuresample.interpolation import working_dtype
from gpuresample.onto import BAND_ATOL_VOXELS, affine_sampling

core = pytest.importorskip("gpuresample._core", reason="the extension module is not built in this checkout")

DTYPES = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float32", "float64"]
INTERPOLATIONS = ["nearest", "linear", "cubic", "label"]


def rotation(axis: int, degrees: float) -> np.ndarray:
    a = np.deg2rad(degrees)
    i, j = [k for k in range(3) if k != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = np.cos(a), -np.sin(a), np.sin(a), np.cos(a)
    return r


#: (source shape, target grid, output rows of the block or None): voxels outside the band,
#: clamped at the edges, positions on whole voxels, a slab of rows.
CASES = {
    "tilted": ((15, 13, 11), gr.Grid((14, 16, 12), (1.1, 0.9, 1.2), origin=(1.0, -2.0, 0.5),
                                     direction=rotation(0, 20.0) @ rotation(2, 7.0)), None),
    "nearly_aligned": ((9, 10, 11), gr.Grid((9, 12, 11), (1.0, 1.0, 1.0), origin=(0.0, -1.0, 0.0),
                                            direction=rotation(0, 1e-7)), None),
    "slab": ((30, 9, 8), gr.Grid((28, 10, 9), (1.1, 1.0, 0.9), origin=(0.5, 1.0, -1.0),
                                 direction=rotation(1, 15.0)), (9, 21)),
}


def values(shape, dtype, interpolation, seed):
    if interpolation == "label":
        return (np.random.default_rng(seed).integers(0, 5, size=shape) * 3).astype(dtype)
    return random_volume(shape, dtype, seed=seed)


def sampling_for(case, interpolation, fill=3.0):
    shape, target, rows = CASES[case]
    sampling = affine_sampling(gr.Grid(shape, (1.0, 1.0, 1.0)), target, interpolation, fill)
    return sampling if rows is None else sampling.rows(*rows)


def coefficients(block, sampling, dtype):
    from gpuresample.backends._cpu_affine import affine_coefficients

    return affine_coefficients(block, sampling, working_dtype(dtype))


def call(loops, interpolation, block, sampling, out, **threads):
    """The loop of ``loops`` (a module of the oblique loops' signatures) for this block."""
    m, n_src, first, pads = sampling.as_3d()
    j0, fill = sampling.out_start, sampling.fill
    if interpolation == "label":
        loops.affine_label(block, m, n_src, first, j0, BAND_ATOL_VOXELS, fill, out, **threads)
        return
    round_to_int, lo, hi = integer_limits(out.dtype)
    if interpolation == "nearest":
        same = block.dtype == out.dtype
        loops.affine_nearest(block, m, n_src, first, j0, BAND_ATOL_VOXELS, fill, out, same,
                             round_to_int and not same, lo, hi, **threads)
    elif interpolation == "linear":
        loops.affine_linear(block, m, n_src, first, j0, BAND_ATOL_VOXELS, fill, out, round_to_int, lo, hi, **threads)
    else:
        loops.affine_cubic(block, m, n_src, first, pads, j0, BAND_ATOL_VOXELS, fill, out, round_to_int, lo, hi,
                           **threads)


def inputs(case, dtype, interpolation, seed=0):
    x = values(CASES[case][0], dtype, interpolation, seed)
    sampling = sampling_for(case, interpolation)
    first, stop = sampling.input_rows
    block = x[first:stop]
    if interpolation == "cubic":
        block = coefficients(block, sampling, dtype)
    return block, sampling


def run_core(interpolation, block, sampling, out_dtype, **threads):
    out = np.full(sampling.output_shape, 99, out_dtype)
    call(core, interpolation, block, sampling, out, **threads)
    return out


def assert_same_bits(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    assert np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()


@pytest.fixture(scope="module")
def native():
    """The ahead-of-time C library's loops (ctypes), or a skip where it cannot be had."""
    from gpuresample.backends import _native

    if getattr(_native, "library", None) is None or _native.library() is None:
        pytest.skip("the ctypes library of the C loops is not available")
    return _native


@pytest.fixture(scope="module")
def numba_loops():
    pytest.importorskip("numba")
    from gpuresample.backends import _affine_loops

    return _affine_loops


def numba_call(loops, interpolation, block, sampling, out):
    """The Numba loops take their per-thread scratch as arguments."""
    import numba

    threads = numba.get_num_threads()
    m, n_src, first, pads = sampling.as_3d()
    j0, fill = sampling.out_start, sampling.fill
    work = np.float32 if block.dtype == np.float32 else np.float64
    if interpolation == "label":
        loops.affine_label(block, m, n_src, first, j0, BAND_ATOL_VOXELS, fill, out,
                           np.empty((threads, 8), block.dtype), np.empty((threads, 8)))
        return
    round_to_int, lo, hi = integer_limits(out.dtype)
    if interpolation == "nearest":
        same = block.dtype == out.dtype
        loops.affine_nearest(block, m, n_src, first, j0, BAND_ATOL_VOXELS, fill, out, same, round_to_int and not same,
                             lo, hi)
    elif interpolation == "linear":
        loops.affine_linear(block, m, n_src, first, j0, BAND_ATOL_VOXELS, fill, out, round_to_int, lo, hi,
                            np.empty((threads, 6), work))
    else:
        loops.affine_cubic(block, m, n_src, first, pads, j0, BAND_ATOL_VOXELS, fill, out, round_to_int, lo, hi,
                           np.empty((threads, 12), block.dtype), np.empty((threads, 12), np.int64))


# ---------------------------------------------------------------------------------------
# Against the C library and the Numba loops
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_same_bits_as_the_c_library(native, interpolation, dtype, case):
    block, sampling = inputs(case, dtype, interpolation, seed=len(case))
    result = run_core(interpolation, block, sampling, dtype)
    expected = np.full(sampling.output_shape, 99, dtype)
    call(native, interpolation, block, sampling, expected)
    assert_same_bits(result, expected)
    assert (result == 3).any() and np.unique(result).size > 2  # some voxels filled, most sampled


@pytest.mark.parametrize("interpolation", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("in_dtype,out_dtype", [("float32", "uint8"), ("float32", "int16"), ("float64", "float32"),
                                                ("uint16", "float32"), ("int64", "uint64"), ("float32", "float64"),
                                                ("int16", "uint8"), ("float64", "int64")])
def test_output_dtypes_as_the_c_library(native, interpolation, in_dtype, out_dtype):
    block, sampling = inputs("tilted", in_dtype, interpolation, seed=3)
    if block.dtype.kind == "f":
        block = block * 700  # beyond uint8 and int16: clipping happens
    result = run_core(interpolation, block, sampling, out_dtype)
    expected = np.full(sampling.output_shape, 99, out_dtype)
    call(native, interpolation, block, sampling, expected)
    assert_same_bits(result, expected)


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_strided_sources_and_outputs(native, interpolation):
    block, sampling = inputs("slab", "float32", interpolation, seed=4)
    strided = np.asfortranarray(block[:, ::-1])[:, ::-1]  # same values, other strides
    assert not strided.flags.c_contiguous and np.array_equal(strided, block)
    out = np.full(sampling.output_shape[::-1], 99, np.float32).transpose(2, 1, 0)
    call(core, interpolation, strided, sampling, out)
    expected = np.full(sampling.output_shape, 99, np.float32)
    call(native, interpolation, block, sampling, expected)
    assert_same_bits(out, expected)


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_thread_counts_give_the_same_bits(interpolation):
    block, sampling = inputs("tilted", "float64", interpolation, seed=5)
    one = run_core(interpolation, block, sampling, np.float64, threads=1)
    for count in (2, 3, 64):
        assert_same_bits(one, run_core(interpolation, block, sampling, np.float64, threads=count))


@pytest.mark.parametrize("dtype", ["float32", "float64", "int16", "uint8"])
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_same_bits_as_the_numba_loops(numba_loops, interpolation, dtype):
    block, sampling = inputs("slab", dtype, interpolation, seed=6)
    result = run_core(interpolation, block, sampling, dtype)
    expected = np.full(sampling.output_shape, 99, dtype)
    numba_call(numba_loops, interpolation, block, sampling, expected)
    assert_same_bits(result, expected)


# ---------------------------------------------------------------------------------------
# Against the arithmetic itself (NumPy, no compiled loops)
# ---------------------------------------------------------------------------------------

def reference_positions(sampling):
    """u per output voxel and axis: ((m0 J0 + m1 J1) + m2 J2) + m3 in float64, and the band mask."""
    m, n_src, _, _ = sampling.as_3d()
    shape = sampling.output_shape + (1,) * (3 - len(sampling.output_shape))
    J0, J1, J2 = np.meshgrid(*(np.arange(n, dtype=np.float64) for n in shape), indexing="ij")
    J0 = J0 + sampling.out_start
    u = [((m[i, 0] * J0 + m[i, 1] * J1) + m[i, 2] * J2) + m[i, 3] for i in range(3)]
    inside = np.ones(shape, bool)
    for i in range(3):
        inside &= (u[i] >= -0.5 - BAND_ATOL_VOXELS) & (u[i] <= (n_src[i] - 0.5) + BAND_ATOL_VOXELS)
    return u, inside, n_src


def reference_linear(block, sampling):
    """Trilinear in the working dtype: weights from float64, axis 0 summed first, then 1, then 2."""
    u, inside, n_src = reference_positions(sampling)
    _, _, first, _ = sampling.as_3d()
    work = np.float32 if block.dtype == np.float32 else np.float64
    rows, weights = [], []
    for i in range(3):
        clamped = np.minimum(np.maximum(u[i], 0.0), n_src[i] - 1.0)
        base = np.floor(clamped)
        frac = clamped - base
        a = base.astype(np.int64)
        b = np.where((a + 1 < n_src[i]) & (frac != 0.0), a + 1, a)
        rows.append((a - first[i], b - first[i]))
        weights.append(((1.0 - frac).astype(work), frac.astype(work)))
    x = block.astype(work)

    def at(p, q, r):
        return x[rows[0][p], rows[1][q], rows[2][r]]

    w0, w1, w2 = weights
    x00 = w0[0] * at(0, 0, 0) + w0[1] * at(1, 0, 0)
    x10 = w0[0] * at(0, 1, 0) + w0[1] * at(1, 1, 0)
    x01 = w0[0] * at(0, 0, 1) + w0[1] * at(1, 0, 1)
    x11 = w0[0] * at(0, 1, 1) + w0[1] * at(1, 1, 1)
    value = w2[0] * (w1[0] * x00 + w1[1] * x10) + w2[1] * (w1[0] * x01 + w1[1] * x11)
    return np.where(inside, value, work(sampling.fill)).astype(work)


def reference_nearest(block, sampling):
    u, inside, n_src = reference_positions(sampling)
    _, _, first, _ = sampling.as_3d()
    index = [np.clip(np.floor(u[i] + 0.5), 0, n_src[i] - 1).astype(np.int64) - first[i] for i in range(3)]
    return np.where(inside, block[tuple(index)], block.dtype.type(sampling.fill))


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("dtype", ["float32", "float64", "int16"])
def test_linear_is_the_arithmetic_of_the_design(case, dtype):
    block, sampling = inputs(case, dtype, "linear", seed=7)
    work = np.float32 if dtype == "float32" else np.float64
    result = run_core("linear", block, sampling, work)
    assert_same_bits(result, reference_linear(block, sampling))


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("dtype", ["float32", "uint64", "int8"])
def test_nearest_is_the_arithmetic_of_the_design(case, dtype):
    block, sampling = inputs(case, dtype, "nearest", seed=8)
    assert_same_bits(run_core("nearest", block, sampling, dtype), reference_nearest(block, sampling))


# ---------------------------------------------------------------------------------------
# The whole CPU backend with these loops
# ---------------------------------------------------------------------------------------

def tilted(degrees: float) -> np.ndarray:
    return rotation(0, degrees) @ rotation(2, 3.0)


@pytest.fixture
def core_loops(monkeypatch, native):
    """``run(fn)``: fn() with the CPU backend's oblique loops being _core's, then the C library's."""
    def run(fn):
        with monkeypatch.context() as patch:
            patch.setattr(_loops, "affine", lambda: core)
            mine = fn()
        return mine, fn()
    return run


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize("dtype", ["float32", "float16", "uint8", "int16", "uint64", "bool"])
def test_backend_results_unchanged(core_loops, dtype, interpolation):
    """As the backend calls them: views for float16 and bool, fills, output dtypes, slabs, strides."""
    from gpuresample.job import build_job

    x = random_volume((22, 19, 17), dtype, seed=7)
    grid = gr.Grid(x.shape, (1.0, 1.2, 1.4))
    target = gr.Grid((20, 21, 15), (1.1, 1.0, 1.3), origin=(2.0, -3.0, 1.0), direction=tilted(20.0))
    fill = 1 if dtype == "bool" else 7
    runs = [{}, {"fill": fill}, {"dtype": np.float32}, {"dtype": np.int16}]
    if interpolation != "cubic":
        peak = build_job(x, grid, onto=target, interpolation=interpolation).chunking.peak_bytes
        runs.append({"max_memory": int(peak * 0.6)})
    for kwargs in runs:
        if "dtype" in kwargs and (interpolation == "label" or (interpolation == "nearest" and dtype != "float32")):
            continue
        mine, theirs = core_loops(lambda: gr.resample(x, grid, target=target, interpolation=interpolation,
                                                      backend="cpu", **kwargs))
        assert_same_bits(mine, theirs)
    strided = np.asfortranarray(x)[:, ::-1]
    mine, theirs = core_loops(lambda: gr.resample(strided, grid, target=target, interpolation=interpolation,
                                                  backend="cpu"))
    assert_same_bits(mine, theirs)


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_backend_2d_unchanged(core_loops, interpolation):
    x = random_volume((19, 23), "float32", seed=5)
    a = np.deg2rad(25.0)
    target = gr.Grid((20, 21), (1.1, 1.0), origin=(1.0, -2.0),
                     direction=[[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    mine, theirs = core_loops(lambda: gr.resample(x, gr.Grid(x.shape, (1.0, 1.0)), target=target,
                                                  interpolation=interpolation, fill=-1.0, backend="cpu"))
    assert_same_bits(mine, theirs)
    assert (mine == -1).any()


# ---------------------------------------------------------------------------------------
# The border
# ---------------------------------------------------------------------------------------

def test_arguments_are_checked():
    block, sampling = inputs("tilted", "float32", "linear")
    m, n_src, first, _ = sampling.as_3d()
    out = np.empty(sampling.output_shape, np.float32)
    args = (n_src, first, 0, BAND_ATOL_VOXELS, 0.0)
    with pytest.raises(TypeError):  # a 2-D source
        core.affine_linear(block[0], m, *args, out, False, 0.0, 0.0)
    with pytest.raises(TypeError):  # a matrix of another shape
        core.affine_linear(block, m[:2], *args, out, False, 0.0, 0.0)
    with pytest.raises(TypeError, match="source dtype"):
        core.affine_linear(block.astype(np.float16), m, *args, out, False, 0.0, 0.0)
    with pytest.raises(TypeError, match="output dtype"):
        core.affine_linear(block, m, *args, out.astype(np.complex64), False, 0.0, 0.0)
    with pytest.raises(TypeError, match="float32 or float64"):
        core.affine_cubic(block.astype(np.int16), m, n_src, first, np.zeros(3, np.int64), 0, BAND_ATOL_VOXELS, 0.0,
                          out, False, 0.0, 0.0)
    with pytest.raises(TypeError, match="source's dtype"):
        core.affine_label(block, m, *args, out.astype(np.float64))
    with pytest.raises(TypeError, match="same_dtype"):
        core.affine_nearest(block, m, *args, out.astype(np.float64), True, False, 0.0, 0.0)
    with pytest.raises(TypeError):  # a read-only output
        readonly = out.copy()
        readonly.flags.writeable = False
        core.affine_linear(block, m, *args, readonly, False, 0.0, 0.0)
