"""The oblique loops of the extension module (``gpuresample._core``: ``_native/affine*.cpp`` over
``kernels/gr_affine.cuh``) give the results of the loops they replace bit for bit.

References: an independent NumPy evaluation of the arithmetic of docs/design.md §2 (last
paragraph) for every interpolation (elementwise IEEE operations in the same order), and the
array path (``backends/_affine_xp.py``, 2-D data through the whole CPU backend; 3-D in
tests/test_native.py); the golden corpus (tests/test_golden.py) holds the previous library's
results of the backend's oblique cases. Cases: every dtype the loops read, output dtypes with
rounding and clipping, fills, slabs (first rows and j0_start), strided sources and outputs,
thread counts, long lines (inner voxels eight at a time) with non-finite values.
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
    # long lines (the loops take their inner voxels eight at a time where they can)
    "long_lines": ((9, 26, 61), gr.Grid((8, 24, 67), (1.05, 1.0, 0.93), origin=(0.3, -1.5, -2.0),
                                        direction=rotation(0, 17.0) @ rotation(1, 4.0)), None),
    # a rotation about axis 0 on the source's spacing: positions on whole rows along axis 0
    "about_axis_0": ((7, 30, 58), gr.Grid((7, 28, 64), (1.0, 1.0, 1.0), origin=(0.0, 2.0, -3.0),
                                          direction=rotation(0, 20.0)), None),
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
    from gpuresample.backends.cpu._affine import affine_coefficients

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


# ---------------------------------------------------------------------------------------
# The arithmetic itself, in NumPy (elementwise IEEE operations, in the loops' order)
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


def linear_taps(sampling):
    """Per axis: block rows (a, b) and b's fraction, the position clamped to [0, n - 1], b = a
    where the fraction is 0."""
    u, inside, n_src = reference_positions(sampling)
    _, _, first, _ = sampling.as_3d()
    rows, fracs = [], []
    for i in range(3):
        clamped = np.minimum(np.maximum(u[i], 0.0), n_src[i] - 1.0)
        base = np.floor(clamped)
        frac = clamped - base
        a = base.astype(np.int64)
        b = np.where((a + 1 < n_src[i]) & (frac != 0.0), a + 1, a)
        rows.append((a - first[i], b - first[i]))
        fracs.append(frac)
    return rows, fracs, inside


def stored(value, fill, inside, out_dtype):
    """A result written to out_dtype as the loops write it (rint and clip for integers)."""
    out_dtype = np.dtype(out_dtype)
    round_to_int, lo, hi = integer_limits(out_dtype)
    value = value.astype(np.float64)
    if round_to_int:
        value = np.clip(np.rint(value), lo, hi)
    return np.where(inside, value.astype(out_dtype), out_dtype.type(fill))


def reference_linear(block, sampling, out_dtype):
    """Trilinear in the working dtype: weights from float64, axis 0 summed first, then 1, then 2."""
    rows, fracs, inside = linear_taps(sampling)
    work = np.float32 if block.dtype == np.float32 else np.float64
    weights = [((1.0 - f).astype(work), f.astype(work)) for f in fracs]
    x = block.astype(work)

    def at(p, q, r):
        return x[rows[0][p], rows[1][q], rows[2][r]]

    w0, w1, w2 = weights
    x00 = w0[0] * at(0, 0, 0) + w0[1] * at(1, 0, 0)
    x10 = w0[0] * at(0, 1, 0) + w0[1] * at(1, 1, 0)
    x01 = w0[0] * at(0, 0, 1) + w0[1] * at(1, 0, 1)
    x11 = w0[0] * at(0, 1, 1) + w0[1] * at(1, 1, 1)
    value = w2[0] * (w1[0] * x00 + w1[1] * x10) + w2[1] * (w1[0] * x01 + w1[1] * x11)
    return stored(value, sampling.fill, inside, out_dtype)


def reference_nearest(block, sampling, out_dtype):
    u, inside, n_src = reference_positions(sampling)
    _, _, first, _ = sampling.as_3d()
    index = [np.clip(np.floor(u[i] + 0.5), 0, n_src[i] - 1).astype(np.int64) - first[i] for i in range(3)]
    values = block[tuple(index)]
    if np.dtype(out_dtype) == block.dtype:  # copied as they are
        return np.where(inside, values, block.dtype.type(sampling.fill))
    return stored(values.astype(np.float64), sampling.fill, inside, out_dtype)


def reference_cubic(coef, sampling, out_dtype):
    """Cubic B-spline: per axis four clamped taps of the extended line, weights in float64
    rounded to the coefficients' dtype (tap 3 redirected to tap 1 where t is 0), sums along
    axis 0 first (left to right), then 1, then 2."""
    u, inside, n_src = reference_positions(sampling)
    _, _, first, pads = sampling.as_3d()
    work = coef.dtype.type
    rows, weights = [], []
    for i in range(3):
        n_ext = n_src[i] + 2 * pads[i]
        if n_ext == 1:
            rows.append([np.full(u[i].shape, -first[i])] * 4)
            weights.append([np.full(u[i].shape, work(q == 0)) for q in range(4)])
            continue
        padded = u[i] + float(pads[i])
        base = np.floor(padded)
        t = padded - base
        s = 1.0 - t
        w = [s * s * s / 6.0, (3.0 * t * t * (t - 2.0) + 4.0) / 6.0, (3.0 * s * s * (s - 2.0) + 4.0) / 6.0,
             t * t * t / 6.0]
        r = [np.clip(base.astype(np.int64) - 1 + q, 0, n_ext - 1) - first[i] for q in range(4)]
        r[3] = np.where(t == 0.0, r[1], r[3])
        rows.append(r)
        weights.append([x.astype(work) for x in w])
    acc = None
    for c in range(4):
        plane = None
        for b in range(4):
            x = weights[0][0] * coef[rows[0][0], rows[1][b], rows[2][c]]
            for a in range(1, 4):
                x = x + weights[0][a] * coef[rows[0][a], rows[1][b], rows[2][c]]
            plane = weights[1][b] * x if b == 0 else plane + weights[1][b] * x
        acc = weights[2][c] * plane if c == 0 else acc + weights[2][c] * plane
    return stored(acc, sampling.fill, inside, out_dtype)


def reference_label(block, sampling):
    """The vote: taps in (axis 0, 1, 2) order with float64 weights (w0 * w1) * w2; each label
    scores its first tap's weight plus its later taps' in order; highest score, then lower label."""
    rows, fracs, inside = linear_taps(sampling)
    w = [(1.0 - f, f) for f in fracs]
    labels, weights = [], []
    for a in range(2):
        for b in range(2):
            for c in range(2):
                labels.append(block[rows[0][a], rows[1][b], rows[2][c]])
                weights.append((w[0][a] * w[1][b]) * w[2][c])
    best, best_score = labels[0].copy(), np.full(labels[0].shape, -1.0)
    for k in range(8):
        first = np.ones(best.shape, bool)
        for q in range(k):
            first &= labels[q] != labels[k]
        score = weights[k].copy()
        for q in range(k + 1, 8):
            score = np.where(labels[q] == labels[k], score + weights[q], score)
        wins = first & ((score > best_score) | ((score == best_score) & (labels[k] < best)))
        best = np.where(wins, labels[k], best)
        best_score = np.where(wins, score, best_score)
    return np.where(inside, best, block.dtype.type(sampling.fill))


def reference(interpolation, block, sampling, out_dtype):
    if interpolation == "label":
        return reference_label(block, sampling)
    return {"nearest": reference_nearest, "linear": reference_linear,
            "cubic": reference_cubic}[interpolation](block, sampling, out_dtype)


# ---------------------------------------------------------------------------------------
# Against the arithmetic and themselves
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_the_arithmetic_of_the_design(interpolation, dtype, case):
    block, sampling = inputs(case, dtype, interpolation, seed=len(case))
    result = run_core(interpolation, block, sampling, dtype)
    assert_same_bits(result, reference(interpolation, block, sampling, dtype))
    assert (result == 3).any() and np.unique(result).size > 2  # some voxels filled, most sampled


@pytest.mark.parametrize("interpolation", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("in_dtype,out_dtype", [("float32", "uint8"), ("float32", "int16"), ("float64", "float32"),
                                                ("uint16", "float32"), ("int64", "uint64"), ("float32", "float64"),
                                                ("int16", "uint8"), ("float64", "int64")])
def test_output_dtypes(interpolation, in_dtype, out_dtype):
    block, sampling = inputs("tilted", in_dtype, interpolation, seed=3)
    if block.dtype.kind == "f":
        block = block * 700  # beyond uint8 and int16: clipping happens
    result = run_core(interpolation, block, sampling, out_dtype)
    assert_same_bits(result, reference(interpolation, block, sampling, out_dtype))


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_strided_sources_and_outputs(interpolation):
    block, sampling = inputs("slab", "float32", interpolation, seed=4)
    strided = np.asfortranarray(block[:, ::-1])[:, ::-1]  # same values, other strides
    assert not strided.flags.c_contiguous and np.array_equal(strided, block)
    out = np.full(sampling.output_shape[::-1], 99, np.float32).transpose(2, 1, 0)
    call(core, interpolation, strided, sampling, out)
    assert_same_bits(out, run_core(interpolation, block, sampling, np.float32))
    assert_same_bits(out, reference(interpolation, block, sampling, np.float32))


@pytest.mark.parametrize("case", ["long_lines", "about_axis_0"])
@pytest.mark.parametrize("out_dtype", ["float32", "uint8", "float64"])
def test_long_lines_into_any_output(case, out_dtype):
    """Lines long enough for the eight-voxel loop of float32 linear, into every kind of output:
    float32 (contiguous, transposed), rounded and clipped integers, float64; source strides
    that leave axis 2 non-contiguous too."""
    block, sampling = inputs(case, "float32", "linear", seed=6)
    block = block * 150  # beyond uint8: clipping happens
    expected = reference("linear", block, sampling, out_dtype)
    assert_same_bits(run_core("linear", block, sampling, out_dtype), expected)
    out = np.full(sampling.output_shape[::-1], 99, out_dtype).transpose(2, 1, 0)
    call(core, "linear", block, sampling, out)
    assert_same_bits(out, expected)
    strided = np.asfortranarray(block)
    out = np.full(sampling.output_shape, 99, out_dtype)
    call(core, "linear", strided, sampling, out)
    assert_same_bits(out, expected)


def test_long_lines_slab():
    """A slab of output rows (first rows and j0_start) with long lines."""
    shape, target, _ = CASES["long_lines"]
    x = values(shape, "float32", "linear", seed=7)
    sampling = affine_sampling(gr.Grid(shape, (1.0, 1.0, 1.0)), target, "linear", 3.0).rows(3, 7)
    first, stop = sampling.input_rows
    block = x[first:stop]
    result = run_core("linear", block, sampling, np.float32)
    assert_same_bits(result, reference("linear", block, sampling, np.float32))


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_thread_counts_give_the_same_bits(interpolation):
    block, sampling = inputs("tilted", "float64", interpolation, seed=5)
    one = run_core(interpolation, block, sampling, np.float64, threads=1)
    for count in (2, 3, 64):
        assert_same_bits(one, run_core(interpolation, block, sampling, np.float64, threads=count))


# ---------------------------------------------------------------------------------------
# The whole CPU backend with these loops
# ---------------------------------------------------------------------------------------

def tilted(degrees: float) -> np.ndarray:
    return rotation(0, degrees) @ rotation(2, 3.0)


@pytest.fixture
def backend_with(monkeypatch):
    """``run(fn)``: fn() with the CPU backend on the compiled loops, then on the array path."""
    from gpuresample import backends

    def run(fn):
        results = []
        for choice in ("native", "array"):
            with monkeypatch.context() as patch:
                backends.clear_caches()
                patch.setenv(_loops.LOOPS_VARIABLE, choice)
                results.append(fn())
        backends.clear_caches()
        return results
    return run


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_backend_2d_as_the_array_path(backend_with, interpolation):
    x = random_volume((19, 23), "float32", seed=5)
    a = np.deg2rad(25.0)
    target = gr.Grid((20, 21), (1.1, 1.0), origin=(1.0, -2.0),
                     direction=[[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    mine, theirs = backend_with(lambda: gr.resample(x, gr.Grid(x.shape, (1.0, 1.0)), target=target,
                                                    interpolation=interpolation, fill=-1.0, backend="cpu"))
    assert_same_bits(mine, theirs)
    assert (mine == -1).any()


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize("case", ["long_lines", "about_axis_0"])
def test_backend_long_lines_with_nonfinite_values_as_the_array_path(backend_with, interpolation, case):
    """inf, -inf and NaN among the taps of long lines: a tap of weight 0 adds nothing (no
    0 * inf), in the eight-voxel loop as in the array path."""
    shape, target, _ = CASES[case]
    x = random_volume(shape, "float32", seed=8)
    rng = np.random.default_rng(8)
    for value in (np.inf, -np.inf, np.nan):
        x.reshape(-1)[rng.choice(x.size, 40, replace=False)] = value
    mine, theirs = backend_with(lambda: gr.resample(x, gr.Grid(shape, (1.0, 1.0, 1.0)), target=target,
                                                    interpolation=interpolation, fill=-1.0, backend="cpu"))
    if interpolation == "cubic":  # the prefilter spreads NaN along whole lines; the sign of a NaN may differ
        assert np.array_equal(mine, theirs, equal_nan=True) and np.isnan(mine).any()
        return
    assert_same_bits(mine, theirs)
    assert np.isnan(mine).any() and np.isinf(mine).any() and np.isfinite(mine).mean() > 0.5


# ---------------------------------------------------------------------------------------
# The border
# ---------------------------------------------------------------------------------------

def test_arguments_are_checked():
    block, sampling = inputs("tilted", "float32", "linear")
    m, n_src, first, _ = sampling.as_3d()
    out = np.zeros(sampling.output_shape, np.float32)
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
