"""resample() on the CPU: against SciPy's zoom, over dtypes, and geometry invariants on data."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import given, settings
from hypothesis import strategies as st

import gpuresample as gr
from helpers import ALL_DTYPES, random_volume

ORDER = {"nearest": 0, "linear": 1, "cubic": 3}
#: Float32 agreement with SciPy's float64 arithmetic (docs/design.md §2: <= 1e-5 relative).
SCIPY_RTOL = 1e-5

# (input shape, output shape): ratios exact in binary, so SciPy's float zoom factor has no rounding
EXACT_RATIO_CASES = [((16, 12, 8), (32, 24, 16)), ((16, 12, 8), (8, 6, 4)), ((16, 12, 8), (64, 3, 8)),
                     ((9, 10, 11), (18, 5, 11))]
GENERAL_CASES = [((20, 23, 17), (31, 17, 25)), ((13, 7, 29), (6, 15, 29)), ((5, 1, 9), (10, 3, 4))]


def scipy_zoom(x, shape, order):
    return ndi.zoom(x.astype(np.float64), np.array(shape) / np.array(x.shape), order=order,
                    grid_mode=True, mode="nearest")


@pytest.mark.parametrize("shape,target", EXACT_RATIO_CASES + GENERAL_CASES)
def test_nearest_matches_scipy_exactly(shape, target):
    x = random_volume(shape, "float32")
    out = gr.resample(x, (1, 1, 1), target_shape=target, interpolation="nearest")
    ref = ndi.zoom(x, np.array(target) / np.array(shape), order=0, grid_mode=True, mode="nearest")
    if (shape, target) in EXACT_RATIO_CASES:
        np.testing.assert_array_equal(out, ref)
    else:  # SciPy's rounded zoom factor can flip exact half-voxel ties; everything else is exact
        assert np.mean(out == ref) > 0.97


@pytest.mark.parametrize("interpolation", ["linear", "cubic"])
@pytest.mark.parametrize("shape,target", EXACT_RATIO_CASES + GENERAL_CASES)
def test_linear_cubic_match_scipy(interpolation, shape, target):
    x = random_volume(shape, "float32")
    out = gr.resample(x, (1, 1, 1), target_shape=target, interpolation=interpolation)
    assert out.dtype == np.float32 and out.shape == tuple(target)
    ref = scipy_zoom(x, target, ORDER[interpolation])
    np.testing.assert_allclose(out, ref, rtol=SCIPY_RTOL, atol=SCIPY_RTOL * np.abs(ref).max())


@pytest.mark.parametrize("interpolation", ["nearest", "linear", "cubic"])
def test_2d_matches_scipy(interpolation):
    x = random_volume((23, 30), "float64")
    out = gr.resample(x, (1.0, 1.0), target_shape=(46, 15), interpolation=interpolation)
    ref = scipy_zoom(x, (46, 15), ORDER[interpolation])
    np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-9 * np.abs(ref).max())


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("interpolation", ["nearest", "linear", "cubic"])
def test_dtypes(dtype, interpolation):
    x = random_volume((9, 8, 7), dtype)
    out = gr.resample(x, (1, 1, 1), target_shape=(13, 5, 7), interpolation=interpolation)
    assert out.dtype == np.dtype(dtype)
    ref = scipy_zoom(x.astype(np.float64), (13, 5, 7), ORDER[interpolation])
    if np.dtype(dtype).kind in "iub":
        info = (0, 1) if dtype == "bool" else (np.iinfo(dtype).min, np.iinfo(dtype).max)
        expected = np.clip(np.rint(ref), *info)
        # rounding is to nearest, half to even; an exact .5 in real arithmetic may land on
        # either side in float arithmetic, so only such ties may differ (by one)
        differ = out.astype(np.float64) != expected
        assert np.abs(out.astype(np.float64) - expected).max() <= (0 if interpolation == "nearest" else 1)
        tie = np.abs(np.abs(ref - np.floor(ref)) - 0.5) < 1e-6
        assert not (differ & ~tie).any()
    else:
        tol = 2e-3 if dtype == "float16" else SCIPY_RTOL
        np.testing.assert_allclose(out.astype(np.float64), ref, rtol=tol, atol=tol * np.abs(ref).max())


def test_integer_cubic_overshoot_is_clipped():
    x = np.zeros((12, 12, 12), np.uint8)
    x[4:8, 4:8, 4:8] = 255
    out = gr.resample(x, (1, 1, 1), target_shape=(30, 30, 30), interpolation="cubic")
    ref = scipy_zoom(x, (30, 30, 30), 3)
    assert ref.max() > 255 and ref.min() < 0  # the spline overshoots
    assert out.max() == 255 and out.min() == 0
    np.testing.assert_array_equal(out, np.clip(np.rint(ref), 0, 255).astype(np.uint8))


def test_dtype_argument_changes_output_type():
    x = random_volume((8, 8, 8), "uint8")
    out = gr.resample(x, (1, 1, 1), target_shape=(12, 12, 12), dtype="float32")
    assert out.dtype == np.float32
    ref = scipy_zoom(x, (12, 12, 12), 1)
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-4)


def test_bool_mask_stays_bool():
    x = np.zeros((10, 10, 10), bool)
    x[3:7, 2:8, 4:6] = True
    for interpolation in ("nearest", "linear", "label"):
        out = gr.resample(x, (1, 1, 1), target_shape=(15, 15, 15), interpolation=interpolation)
        assert out.dtype == np.bool_ and out.any() and not out.all()


def test_channel_axis():
    x = random_volume((3, 10, 11, 12), "float32")
    out = gr.resample(x, (1, 1, 1), target_shape=(5, 22, 6), channel_axis=0)
    assert out.shape == (3, 5, 22, 6)
    for c in range(3):
        np.testing.assert_array_equal(out[c], gr.resample(x[c], (1, 1, 1), target_shape=(5, 22, 6)))
    last = gr.resample(np.moveaxis(x, 0, -1), (1, 1, 1), target_shape=(5, 22, 6), channel_axis=-1)
    np.testing.assert_array_equal(np.moveaxis(last, -1, 0), out)


def test_label_interpolation_keeps_labels_and_breaks_ties_low():
    x = np.zeros((4, 4, 4), np.uint16)
    x[:2] = 7
    x[2:] = 3
    out = gr.resample(x, (1, 1, 1), target_shape=(2, 4, 4), interpolation="label")
    # each output row sits exactly between two input rows of one label: no ties
    np.testing.assert_array_equal(out[0], 7)
    np.testing.assert_array_equal(out[1], 3)
    # an output exactly half-way between labels 7 and 3 takes the lower label
    y = np.array([[[7, 3]]], np.uint16)
    half = gr.resample(y, (1, 1, 2), target_shape=(1, 1, 1), interpolation="label")
    assert half.item() == 3


def test_label_smoother_than_nearest_on_upsampling():
    """Label boundaries follow the linear 0.5 iso-line; nearest gives stair steps."""
    x = np.zeros((1, 8, 8), np.uint8)
    yy, xx = np.mgrid[:8, :8]
    x[0][(yy - 3.5) ** 2 + (xx - 3.5) ** 2 < 9] = 1
    label = gr.resample(x, (1, 1, 1), target_shape=(1, 64, 64), interpolation="label")
    linear = gr.resample(x.astype(np.float32), (1, 1, 1), target_shape=(1, 64, 64), interpolation="linear")
    np.testing.assert_array_equal(label, (linear > 0.5).astype(np.uint8) | ((linear == 0.5) & False))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 9), min_size=3, max_size=3), st.lists(st.integers(1, 14), min_size=3, max_size=3),
       st.sampled_from(["nearest", "label"]), st.integers(0, 2**32 - 1))
def test_labels_subset_of_input(shape, target, interpolation, seed):
    x = np.random.default_rng(seed).choice(np.array([0, 3, 9, 250], np.uint8), size=shape)
    out = gr.resample(x, (1, 1, 1), target_shape=target, interpolation=interpolation)
    assert set(np.unique(out)) <= set(np.unique(x))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 12), min_size=3, max_size=3), st.sampled_from(["nearest", "linear", "cubic"]),
       st.sampled_from(["float32", "float64", "uint16"]), st.integers(0, 2**32 - 1))
def test_identity_returns_input(shape, interpolation, dtype, seed):
    x = random_volume(tuple(shape), dtype, seed)
    out = gr.resample(x, (0.7, 1.0, 2.0), target_spacing=(0.7, 1.0, 2.0), interpolation=interpolation)
    if interpolation == "cubic" and dtype != "uint16":
        np.testing.assert_allclose(out, x, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(x).max()))
    else:
        np.testing.assert_array_equal(out, x)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 10), min_size=3, max_size=3), st.lists(st.integers(1, 15), min_size=3, max_size=3),
       st.sampled_from(["nearest", "linear", "cubic"]), st.floats(-1e3, 1e3))
def test_constant_stays_constant(shape, target, interpolation, value):
    x = np.full(shape, value, np.float64)
    out = gr.resample(x, (1, 1, 1), target_shape=target, interpolation=interpolation)
    np.testing.assert_allclose(out, value, rtol=1e-12, atol=1e-9)


def test_nan_spreads_only_to_touching_outputs():
    x = np.ones((10, 10, 10), np.float32)
    x[5, 5, 5] = np.nan
    out = gr.resample(x, (1, 1, 1), target_shape=(20, 20, 20), interpolation="linear")
    # output j samples u = j / 2 - 0.25; its taps floor(u), floor(u) + 1 touch voxel 5 for j in 9..12
    expected = np.zeros(out.shape, bool)
    expected[9:13, 9:13, 9:13] = True
    np.testing.assert_array_equal(np.isnan(out), expected)
    ident = gr.resample(x, (1, 1, 1), target_shape=(10, 10, 10), interpolation="linear")
    assert np.isnan(ident).sum() == 1


def test_input_never_modified():
    x = random_volume((12, 9, 10), "float32")
    before = x.copy()
    for interpolation in ("nearest", "linear", "cubic"):
        gr.resample(x, (1, 1, 1), target_shape=(7, 20, 10), interpolation=interpolation, antialias=interpolation != "nearest")
    np.testing.assert_array_equal(x, before)


def test_antialias_downsampling():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 64, 64)).astype(np.float32)
    plain = gr.resample(x, (1, 1, 1), target_shape=(16, 16, 16))
    smooth = gr.resample(x, (1, 1, 1), target_shape=(16, 16, 16), antialias=True)
    assert smooth.std() < 0.6 * plain.std()  # noise is averaged, not aliased
    # the documented formula: sigma = (factor - 1) / 2 per axis, then linear sampling
    ref = gr.resample(ndi.gaussian_filter(x, 1.5, mode="nearest"), (1, 1, 1), target_shape=(16, 16, 16))
    np.testing.assert_allclose(smooth, ref, rtol=1e-5, atol=1e-6)
    up = gr.resample(x, (1, 1, 1), target_shape=(70, 70, 70), antialias=True)
    np.testing.assert_array_equal(up, gr.resample(x, (1, 1, 1), target_shape=(70, 70, 70)))


def test_by_spacing_output_is_centred():
    """A centred blob stays centred in physical space after a by-spacing resample."""
    g = gr.Grid((41, 30, 25), (0.7, 1.1, 2.5))
    idx = np.indices(g.shape).reshape(3, -1).T
    phys = g.index_to_physical(idx)
    centre = np.array(g.center) + np.array([1.0, -2.0, 3.0])
    x = np.exp(-np.sum((phys - centre) ** 2, axis=1) / 50.0).reshape(g.shape)
    t = g.with_spacing((1.0, 1.0, 1.0))
    out = gr.resample(x, g.spacing, target_spacing=t.spacing)
    assert out.shape == t.shape
    tphys = t.index_to_physical(np.indices(t.shape).reshape(3, -1).T)
    com = (tphys * out.reshape(-1, 1)).sum(0) / out.sum()
    np.testing.assert_allclose(com, centre, atol=0.05)


def test_phantom_scene_anisotropic_to_isotropic():
    """A real dataset: CT and organ mask, thick slices, onto 1.6 mm isotropic voxels together."""
    scene = gr.phantom((40, 64, 64), (2.5, 0.8, 0.8))
    plan = scene.plan(target_spacing=(1.6, 1.6, 1.6), volume_interpolation="cubic", mask_interpolation="label")
    new = plan.apply()
    ct, organs = new.volumes["CT"], new.masks["Organs"]
    assert ct.shape == organs.shape == new.grid.shape == (63, 32, 32)
    assert set(np.unique(organs)) == set(np.unique(scene.masks["Organs"]))
    for label in (1, 2, 3):  # each organ keeps its physical centroid and its mean value
        before = np.argwhere(scene.masks["Organs"] == label)
        after = np.argwhere(organs == label)
        np.testing.assert_allclose(scene.grid.index_to_physical(before).mean(0),
                                   new.grid.index_to_physical(after).mean(0), atol=1.0)
    np.testing.assert_allclose(np.median(ct[organs == 2]), np.median(scene.volumes["CT"][scene.masks["Organs"] == 2]),
                               atol=15)


def test_torch_cpu_round_trip():
    torch = pytest.importorskip("torch")
    x = torch.arange(4 * 5 * 6, dtype=torch.float32).reshape(4, 5, 6)
    out = gr.resample(x, (1, 1, 1), target_shape=(8, 10, 3))
    assert isinstance(out, torch.Tensor) and out.shape == (8, 10, 3) and out.dtype == torch.float32
    np.testing.assert_array_equal(out.numpy(), gr.resample(x.numpy(), (1, 1, 1), target_shape=(8, 10, 3)))
    mask = torch.zeros(4, 5, 6, dtype=torch.bool)
    mask[1:3] = True
    assert gr.resample(mask, (1, 1, 1), target_shape=(8, 10, 3), interpolation="nearest").dtype == torch.bool


def test_threads_calling_resample_at_once():
    """resample() from a thread pool (a data loader, a web service) gives the serial results: the
    compiled loops create their threads per call, so calls run side by side."""
    script = textwrap.dedent("""
        from concurrent.futures import ThreadPoolExecutor
        import numpy as np, gpuresample as gr
        x = np.random.default_rng(0).standard_normal((48, 40, 44)).astype(np.float32)
        m = (x > 0.5).astype(np.uint8) + (x > 1.5)
        jobs = [(x, "linear"), (x, "cubic"), (x, "nearest"), (m, "label")] * 3
        run = lambda job: gr.resample(job[0], target_shape=(30, 50, 45), interpolation=job[1])
        with ThreadPoolExecutor(4) as pool:
            got = list(pool.map(run, jobs))
        for job, result in zip(jobs, got):
            assert np.array_equal(result, run(job)), job[1]
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-2000:]
