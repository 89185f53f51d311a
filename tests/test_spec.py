"""The behaviour contract, clause by clause, as an outsider sees it.

Only the public names of the contract (and the plan attributes the README documents) are
used; every test is named after the clause it checks. Other modules test the same
behaviour from the inside; this one is the contract's literal view.
"""

from __future__ import annotations

import inspect
import math
import re
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import gpuresample as gr

RNG = np.random.default_rng(20240601)
VOLUME = RNG.normal(size=(12, 10, 14)) * 100          # float64, 3-D
INTERPOLATIONS = ["nearest", "linear", "cubic"]


def rotation_z(degrees: float) -> np.ndarray:
    a = math.radians(degrees)
    return np.array([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0.0, 0.0, 1.0]])


def u_positions(n, s, n_new, s_new):
    """Geometry: u(j) = ((j + 0.5) * spacing' + (extent - extent')/2) / spacing - 0.5."""
    j = np.arange(n_new, dtype=np.float64)
    return ((j + 0.5) * s_new + (n * s - n_new * s_new) / 2.0) / s - 0.5


def ramp(shape, axis):
    """Values equal to the index along ``axis`` (float64)."""
    index = np.arange(shape[axis], dtype=np.float64)
    view = [1] * len(shape)
    view[axis] = -1
    return np.broadcast_to(index.reshape(view), shape).copy()


def zoom_reference(x, target_shape, order):
    """SciPy's zoom with grid_mode=True, mode='nearest': the geometry's reference."""
    factors = np.array(target_shape, dtype=np.float64) / np.array(x.shape)
    return ndi.zoom(x, factors, order=order, mode="nearest", grid_mode=True)


def plan_row(plan, name):
    """The information display's row for object ``name``."""
    rows = [line for line in str(plan).splitlines() if line.split() and line.split()[0] == name]
    assert len(rows) == 1, str(plan)
    return rows[0]


def progress_totals(text, name):
    """(done, total) of the last progress report for ``name`` (tqdm or the plain fallback)."""
    found = re.findall(rf"{re.escape(name)}:[^\r\n]*?(\d+)/(\d+)", text)
    assert found, text
    done, total = found[-1]
    return int(done), int(total)


# ------------------------------------------------------------------------------------------ §1
def test_s1_label_keeps_only_input_labels_ties_to_lower():
    mask = np.array([[[1, 2, 2, 7]]], np.uint8)
    down = gr.resample(mask, (1, 1, 1), target_shape=(1, 1, 2), interpolation="label")
    assert down.tolist() == [[[1, 2]]]          # (1, 2) tie -> 1; (2, 7) tie -> 2
    up = gr.resample(RNG.integers(0, 4, (5, 6, 7)).astype(np.uint8) * 3, (1, 1, 1),
                     target_shape=(9, 11, 4), interpolation="label")
    assert set(np.unique(up)) <= {0, 3, 6, 9}


def test_s1_cubic_mask_warns():
    scene = gr.Scene((1, 1, 1), volumes={"CT": VOLUME}, masks={"M": np.zeros(VOLUME.shape, np.uint8)})
    with pytest.warns(UserWarning, match="M"):
        scene.plan(target_shape=(6, 5, 7), mask_interpolation="cubic")


def test_s1_default_interpolations_linear_volumes_nearest_masks():
    mask = (VOLUME > 0).astype(np.uint8) * 5
    scene = gr.Scene((1, 1, 1), volumes={"CT": VOLUME}, masks={"M": mask})
    new = scene.resample(target_shape=(7, 9, 5))
    np.testing.assert_array_equal(new.volumes["CT"], gr.resample(VOLUME, (1, 1, 1), target_shape=(7, 9, 5)))
    np.testing.assert_array_equal(
        new.masks["M"], gr.resample(mask, (1, 1, 1), target_shape=(7, 9, 5), interpolation="nearest"))


# ------------------------------------------------------------------------------------------ §2
def test_s2_axis_order_is_the_arrays():
    x = ramp((4, 6, 8), 0) + 10 * ramp((4, 6, 8), 2)
    out = gr.resample(x, (1.0, 2.0, 3.0), target_spacing=(0.5, 4.0, 3.0), interpolation="nearest")
    assert out.shape == (8, 3, 8)
    assert np.all(np.diff(out, axis=1) == 0)                 # axis 1 carried nothing
    np.testing.assert_array_equal(out[0, 0], 10 * np.arange(8))   # axis 2 unchanged, not swapped


def test_s2_grid_fields_extent_center_affine():
    d = rotation_z(30)
    g = gr.Grid((10, 20, 30), (1.0, 0.5, 2.0), origin=(1.0, -2.0, 3.0), direction=d)
    assert g.shape == (10, 20, 30) and g.spacing == (1.0, 0.5, 2.0)
    assert g.extent == (10.0, 10.0, 60.0)
    expected_affine = np.eye(4)
    expected_affine[:3, :3] = d * np.array([1.0, 0.5, 2.0])
    expected_affine[:3, 3] = (1.0, -2.0, 3.0)
    np.testing.assert_allclose(g.affine, expected_affine, atol=1e-12)
    centre_index = np.append((np.array(g.shape) - 1) / 2.0, 1.0)
    np.testing.assert_allclose(g.center, (g.affine @ centre_index)[:3], atol=1e-12)
    assert gr.Grid((2, 3, 4), (1, 1, 1)).origin == (0.0, 0.0, 0.0)
    np.testing.assert_array_equal(np.asarray(gr.Grid((2, 3, 4), (1, 1, 1)).direction), np.eye(3))


def test_s7_grid_is_frozen():
    g = gr.Grid((2, 3, 4), (1, 1, 1))
    with pytest.raises(AttributeError):
        g.shape = (5, 5, 5)
    with pytest.raises(AttributeError):
        g.spacing = (2, 2, 2)


def test_s2_by_dimensions_spacing_formula_and_box_kept():
    g = gr.Grid((512, 512, 300), (0.7, 0.7, 2.5), origin=(5.0, -3.0, 1.0), direction=rotation_z(40))
    t = g.with_shape((256, 300, 77))
    assert t.shape == (256, 300, 77)
    np.testing.assert_allclose(t.spacing, [0.7 * 512 / 256, 0.7 * 512 / 300, 2.5 * 300 / 77], rtol=1e-15)
    np.testing.assert_allclose(t.extent, g.extent, rtol=1e-14)
    np.testing.assert_allclose(t.center, g.center, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 400), min_size=3, max_size=3),
       st.lists(st.floats(0.05, 5.0), min_size=3, max_size=3),
       st.lists(st.floats(0.05, 20.0), min_size=3, max_size=3))
def test_s2_by_spacing_shape_rule_spacing_kept_centred(shape, spacing, target_spacing):
    g = gr.Grid(shape, spacing, origin=(1.0, 2.0, -3.0), direction=rotation_z(25))
    t = g.with_spacing(target_spacing)
    assert t.shape == tuple(max(1, math.floor(n * s / ts + 0.5)) for n, s, ts in zip(shape, spacing, target_spacing))
    assert t.spacing == tuple(target_spacing)
    np.testing.assert_allclose(t.center, g.center, atol=1e-9)
    for e, e2, ts, n2 in zip(g.extent, t.extent, target_spacing, t.shape):
        assert abs(e - e2) < ts or n2 == 1


def test_s2_by_spacing_rounding_rule_half_goes_up_and_at_least_one():
    g = gr.Grid((10, 10, 10), (1.0, 1.0, 1.0))
    assert g.with_spacing((4.0, 100.0, 0.8)).shape == (3, 1, 13)   # 2.5 -> 3 (not 2), 0.1 -> 1, 12.5 -> 13
    out = gr.resample(np.zeros((10, 10, 10), np.float32), (1, 1, 1), target_spacing=(4.0, 100.0, 0.8))
    assert out.shape == (3, 1, 13)


def test_s2_library_accepts_any_integer_at_least_one():
    out = gr.resample(np.ones((2, 3, 2), np.float32), (1, 1, 1), target_shape=(1, 2049, 1))
    assert out.shape == (1, 2049, 1) and np.all(out == 1)
    assert gr.resample(np.ones((2, 3, 2), np.float32), (1, 1, 1), target_shape=[np.int64(1), 3, 1]).shape == (1, 3, 1)


def test_s2_new_origin_formula_with_direction():
    d = rotation_z(30)
    origin = np.array([10.0, -4.0, 2.0])
    g = gr.Grid((10, 7, 5), (1.0, 1.5, 2.0), origin=origin, direction=d)
    for t in (g.with_spacing((3.0, 0.7, 4.0)), g.with_shape((4, 9, 2))):
        extent, extent2 = np.array(g.extent), np.array(t.extent)
        expected = origin + d @ ((extent - extent2) / 2 + (np.array(t.spacing) - np.array(g.spacing)) / 2)
        np.testing.assert_allclose(t.origin, expected, atol=1e-12)
        np.testing.assert_allclose(np.asarray(t.direction), d, atol=1e-15)
    scene = gr.Scene(g, volumes={"CT": np.zeros(g.shape, np.float32)})
    plan = scene.plan(target_spacing=(3.0, 0.7, 4.0))
    assert plan.target == g.with_spacing((3.0, 0.7, 4.0))
    assert plan.apply().grid == plan.target


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 12), st.floats(0.3, 3.0), st.floats(0.2, 5.0))
def test_s2_sampling_position_u_of_j_and_clamped_edges(n, s, ts):
    # linear interpolation of a ramp returns the (clamped) sampling position itself
    x = ramp((n, 2, 2), 0)
    out = gr.resample(x, (s, 1.0, 1.0), target_spacing=(ts, 1.0, 1.0))
    n2 = max(1, math.floor(n * s / ts + 0.5))
    np.testing.assert_allclose(out[:, 0, 0], np.clip(u_positions(n, s, n2, ts), 0, n - 1), atol=1e-9)


def test_s2_by_dimensions_u_is_scipy_grid_mode():
    x = ramp((6, 3, 2), 0)
    out = gr.resample(x, (1, 1, 1), target_shape=(4, 3, 2))
    u = (np.arange(4) + 0.5) * 6 / 4 - 0.5
    np.testing.assert_allclose(out[:, 0, 0], u, atol=1e-12)


def test_s2_by_dimensions_linear_is_torch_align_corners_false():
    torch = pytest.importorskip("torch")
    x = VOLUME[:6, :5, :7]
    ref = torch.nn.functional.interpolate(torch.from_numpy(x)[None, None], size=(11, 3, 9), mode="trilinear",
                                          align_corners=False)[0, 0].numpy()
    np.testing.assert_allclose(gr.resample(x, (1, 1, 1), target_shape=(11, 3, 9)), ref, rtol=0, atol=1e-9)


def test_s2_both_given_agreeing_within_1e6_allowed():
    g = gr.Grid((512, 512, 256), (0.25, 0.25, 0.5))
    x = np.zeros((16, 8, 4), np.float32)
    assert g.with_shape((256, 256, 128)).spacing == (0.5, 0.5, 1.0)
    out = gr.resample(x, (1, 1, 1), target_shape=(32, 16, 8), target_spacing=(0.5 * (1 + 5e-7), 0.5, 0.5))
    assert out.shape == (32, 16, 8)
    scene = gr.Scene((1, 1, 1), volumes={"x": x})
    plan = scene.plan(target_shape=(32, 16, 8), target_spacing=(0.5, 0.5, 0.5 * (1 - 5e-7)))
    assert plan.target.shape == (32, 16, 8)
    np.testing.assert_allclose(plan.target.spacing, 0.5, rtol=1e-6)


def test_s2_both_given_means_shape_times_spacing_is_the_extent():
    # The contract's "agree ... (relative tolerance 1e-6)" is read as README and geometry.resolve do:
    # target_spacing must equal spacing * shape / target_shape within 1e-6 (the bounding box
    # is kept). A pair that only the rounding of the by-spacing rule links (10 mm at 3 mm ->
    # 3 voxels, 9 mm) is a disagreement: give target_spacing alone for that grid.
    x = ramp((10, 2, 2), 0)
    t = gr.Grid((10, 2, 2), (1, 1, 1)).with_spacing((3.0, 1.0, 1.0))
    assert t.shape == (3, 2, 2)
    with pytest.raises(ValueError, match="disagree"):
        gr.resample(x, (1, 1, 1), target_shape=t.shape, target_spacing=t.spacing)


@pytest.mark.parametrize("target_spacing", [(0.5 * (1 + 1e-5), 0.5, 0.5), (1.0, 1.0, 1.0), (0.5, 0.5, 0.4)])
def test_s2_both_given_disagreeing_is_value_error(target_spacing):
    x = np.zeros((16, 8, 4), np.float32)
    with pytest.raises(ValueError) as info:
        gr.resample(x, (1, 1, 1), target_shape=(32, 16, 8), target_spacing=target_spacing)
    message = str(info.value)
    assert "target_shape" in message and "target_spacing" in message and "(32, 16, 8)" in message
    scene = gr.Scene((1, 1, 1), volumes={"x": x})
    with pytest.raises(ValueError, match="target_spacing"):
        scene.plan(target_shape=(32, 16, 8), target_spacing=target_spacing)


@pytest.mark.parametrize("interpolation", ["nearest", "linear", "cubic", "label"])
def test_s2_edges_clamped_no_padding_value(interpolation):
    # the target box sticks out of the source on axis 0 (12 mm > 10 mm) and everything is upsampled
    x = np.full((10, 3, 4), 7, np.uint8 if interpolation == "label" else np.float64)
    out = gr.resample(x, (1, 1, 1), target_spacing=(4.0, 0.3, 0.45), interpolation=interpolation)
    assert out.shape == (3, 10, 9)
    np.testing.assert_allclose(out, 7, rtol=1e-12)
    edge = gr.resample(np.array([[[0.0, 10.0]]]), (1, 1, 1), target_shape=(1, 1, 4))
    np.testing.assert_allclose(edge[0, 0], [0.0, 2.5, 7.5, 10.0])


def test_s2_nearest_is_floor_u_plus_half_ties_go_up():
    x = np.arange(4, dtype=np.float32)[None, None, :]
    assert gr.resample(x, (1, 1, 1), target_shape=(1, 1, 2), interpolation="nearest")[0, 0].tolist() == [1, 3]
    y = np.arange(9, dtype=np.float32)[None, None, :]
    out = gr.resample(y, (1, 1, 1), target_shape=(1, 1, 3), interpolation="nearest")    # u = 1, 4, 7
    assert out[0, 0].tolist() == [1, 4, 7]
    z = np.arange(6, dtype=np.float32)[None, None, :]
    u = u_positions(6, 1.0, 4, 1.5)                                                     # 0.25, 1.75, ...
    out = gr.resample(z, (1, 1, 1), target_shape=(1, 1, 4), interpolation="nearest")
    np.testing.assert_array_equal(out[0, 0], np.clip(np.floor(u + 0.5), 0, 5))


@pytest.mark.parametrize("target_shape", [(23, 19, 29), (5, 4, 6), (12, 10, 14), (1, 21, 3), (3, 2, 41)])
def test_s2_cubic_is_scipy_order3_mode_nearest_incl_edges(target_shape):
    out = gr.resample(VOLUME, (1, 1, 1), target_shape=target_shape, interpolation="cubic")
    ref = zoom_reference(VOLUME, target_shape, 3)
    assert out.shape == ref.shape == target_shape
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-9 * np.abs(ref).max())
    # near the edges in particular (the 12-voxel prepad decides these)
    np.testing.assert_allclose(out[0], ref[0], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(out[-1], ref[-1], rtol=1e-9, atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 9), min_size=3, max_size=3), st.lists(st.integers(1, 13), min_size=3, max_size=3),
       st.sampled_from([1, 3]))
def test_s2_linear_and_cubic_match_scipy_zoom_grid_mode(shape, target_shape, order):
    x = np.random.default_rng(sum(shape)).normal(size=shape)
    out = gr.resample(x, (1, 1, 1), target_shape=target_shape, interpolation="linear" if order == 1 else "cubic")
    ref = zoom_reference(x, target_shape, order)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-9 * max(1.0, np.abs(x).max()))


# ------------------------------------------------------------------------------------------ §3
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "uint8", "int8", "uint16", "int16",
                                   "uint32", "int32", "bool"])
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_s3_output_dtype_is_input_dtype(dtype, interpolation):
    x = (RNG.random((5, 6, 7)) * 100).astype(dtype)
    out = gr.resample(x, (1, 1, 1), target_shape=(3, 8, 4), interpolation=interpolation)
    assert out.dtype == np.dtype(dtype) and out.shape == (3, 8, 4) and isinstance(out, np.ndarray)


def test_s3_dtype_argument():
    x = VOLUME.astype(np.float32)
    out = gr.resample(x, (1, 1, 1), target_shape=(6, 5, 7), dtype="float64")
    assert out.dtype == np.float64
    as_float = gr.resample(x.astype(np.float64), (1, 1, 1), target_shape=(6, 5, 7))
    clipped = gr.resample(x, (1, 1, 1), target_shape=(6, 5, 7), dtype=np.uint8)
    assert clipped.dtype == np.uint8
    np.testing.assert_allclose(clipped, np.clip(np.rint(as_float), 0, 255), atol=1)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16", "uint32", "int32"])
@pytest.mark.parametrize("interpolation", ["linear", "cubic"])
def test_s3_integer_outputs_rounded_to_nearest_and_clipped(dtype, interpolation):
    info = np.iinfo(dtype)
    lo, hi = max(info.min, -30000), min(info.max, 30000)
    x = np.where(RNG.random((6, 7, 8)) > 0.5, hi, lo).astype(dtype)        # steps: cubic overshoots
    x[0, 0, :3] = (lo, hi, lo)
    out = gr.resample(x, (1, 1, 1), target_shape=(11, 9, 13), interpolation=interpolation)
    real = gr.resample(x.astype(np.float64), (1, 1, 1), target_shape=(11, 9, 13), interpolation=interpolation)
    if interpolation == "cubic":
        assert real.max() > hi or real.min() < lo            # the overshoot the clip is about
    # README: rounded half to even (numpy.rint), then clipped to the dtype's range
    expected = np.clip(np.rint(real), info.min, info.max)
    np.testing.assert_array_equal(out, expected.astype(dtype))


def test_s3_integer_rounding_of_exact_halves():
    x = np.array([[[0, 1, 1, 2, 2, 3]]], np.uint8)
    out = gr.resample(x, (1, 1, 1), target_shape=(1, 1, 3), interpolation="linear")   # 0.5, 1.5, 2.5
    # The contract: "rounded to nearest"; README's decision for ties: half to even, as numpy.rint
    assert out[0, 0].tolist() == [0, 2, 2]


@pytest.mark.parametrize("interpolation", ["nearest", "linear", "cubic", "label"])
def test_s3_bool_masks_stay_bool(interpolation):
    mask = np.zeros((6, 6, 6), bool)
    mask[2:5, 1:4, 2:6] = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = gr.resample(mask, (1, 1, 1), target_shape=(11, 4, 9), interpolation=interpolation)
    assert out.dtype == np.bool_ and out.any() and not out.all()


@pytest.mark.parametrize("dtype", ["complex64", "float128", "object", "U3"])
def test_s3_unsupported_dtype_is_type_error_naming_it(dtype):
    try:
        x = np.zeros((3, 3, 3), dtype)
    except TypeError:
        pytest.skip(f"NumPy has no {dtype} here")
    with pytest.raises(TypeError, match=re.escape(str(x.dtype))):
        gr.resample(x, (1, 1, 1), target_shape=(2, 2, 2))
    with pytest.raises(TypeError, match=re.escape(str(x.dtype))):
        gr.resample(np.zeros((3, 3, 3), np.float32), (1, 1, 1), target_shape=(2, 2, 2), dtype=dtype)


@pytest.mark.parametrize("interpolation", ["nearest", "linear"])
def test_s3_nan_spreads_only_where_taps_touch(interpolation):
    x = np.ones((7, 8, 9))
    x[3, 2, 5] = np.nan
    hit = np.zeros_like(x)
    hit[3, 2, 5] = 1.0
    for target in [dict(target_shape=(13, 5, 17)), dict(target_spacing=(0.7, 1.3, 0.9))]:
        out = gr.resample(x, (1, 1, 1), interpolation=interpolation, **target)
        touched = gr.resample(hit, (1, 1, 1), interpolation=interpolation, **target) != 0
        assert touched.any()
        np.testing.assert_array_equal(np.isnan(out), touched)
        np.testing.assert_array_equal(out[~touched], 1.0)


def test_s3_nan_identity_stays_put():
    x = VOLUME.copy()
    x[4, 5, 6] = np.nan
    for interpolation in ("nearest", "linear"):
        out = gr.resample(x, (1, 1, 1), target_shape=x.shape, interpolation=interpolation)
        np.testing.assert_array_equal(np.isnan(out), np.isnan(x))


@pytest.mark.parametrize("interpolation", ["nearest", "linear", "cubic", "label"])
def test_s3_input_never_modified_and_output_new(interpolation):
    x = (VOLUME.astype(np.int16) if interpolation == "label" else VOLUME.astype(np.float32))
    x.flags.writeable = True
    before = x.copy()
    out = gr.resample(x, (1, 1, 1), target_shape=x.shape, interpolation=interpolation)
    np.testing.assert_array_equal(x, before)
    assert not np.shares_memory(out, x)
    out[...] = 0
    np.testing.assert_array_equal(x, before)
    readonly = before.copy()
    readonly.flags.writeable = False
    gr.resample(readonly, (1, 1, 1), target_shape=(5, 5, 5), interpolation=interpolation)


def test_s3_2d_works_the_same_way():
    img = VOLUME[0]
    for interpolation in INTERPOLATIONS:
        out2 = gr.resample(img, (0.5, 2.0), target_spacing=(0.3, 1.1), interpolation=interpolation)
        out3 = gr.resample(img[None], (1.0, 0.5, 2.0), target_spacing=(1.0, 0.3, 1.1), interpolation=interpolation)
        assert out2.shape == out3.shape[1:] == (math.floor(10 * 0.5 / 0.3 + 0.5), math.floor(14 * 2.0 / 1.1 + 0.5))
        np.testing.assert_allclose(out2, out3[0], rtol=1e-12, atol=1e-9)
    with pytest.raises(ValueError, match="target_shape"):
        gr.resample(img, (1, 1), target_shape=(2, 2, 2))


@pytest.mark.parametrize("channel_axis", [0, 3, -1])
def test_s3_4d_with_channel_axis_resamples_each_channel(channel_axis):
    data = np.stack([VOLUME, -VOLUME, VOLUME * 2], axis=channel_axis).astype(np.float32)
    out = gr.resample(data, (1.0, 2.0, 0.5), target_shape=(5, 7, 9), channel_axis=channel_axis)
    assert out.shape == tuple(np.insert(np.array([5, 7, 9]), channel_axis % 4, 3))
    for c in range(3):
        alone = gr.resample(np.take(data, c, axis=channel_axis), (1.0, 2.0, 0.5), target_shape=(5, 7, 9))
        np.testing.assert_array_equal(np.take(out, c, axis=channel_axis), alone)


@pytest.mark.parametrize("shape", [(5,), (3, 4, 5, 6), (2, 3, 4, 5, 6), ()])
def test_s3_other_ndim_is_value_error(shape):
    with pytest.raises(ValueError, match=re.escape(str(shape))):
        gr.resample(np.zeros(shape, np.float32), None, target_shape=(2,) * max(1, len(shape)))


def test_s3_torch_cpu_tensor_in_torch_cpu_tensor_out():
    torch = pytest.importorskip("torch")
    x = torch.from_numpy(VOLUME.astype(np.float32).copy())
    before = x.clone()
    out = gr.resample(x, (1, 1, 1), target_shape=(6, 5, 9))
    assert isinstance(out, torch.Tensor) and out.device.type == "cpu" and out.dtype == torch.float32
    expected = gr.resample(VOLUME.astype(np.float32), (1, 1, 1), target_shape=(6, 5, 9))
    np.testing.assert_array_equal(out.numpy(), expected)
    assert torch.equal(x, before)
    mask = torch.from_numpy(VOLUME > 0)
    m = gr.resample(mask, (1, 1, 1), target_shape=(6, 5, 9), interpolation="nearest")
    assert isinstance(m, torch.Tensor) and m.dtype == torch.bool


# ------------------------------------------------------------------------------------------ §4
def _scene():
    ct = VOLUME.astype(np.float32)
    liver = (VOLUME > 50).astype(np.uint8)
    return gr.Scene((2.0, 1.0, 0.5), volumes={"CT": ct}, masks={"Liver": liver})


def test_s4_plan_shows_dims_spacing_size_ratio_bytes_backend_chunks_peak():
    scene = _scene()
    plan = scene.plan(target_spacing=(1.0, 1.5, 1.5))
    text = str(plan)
    assert plan.source == scene.grid and plan.target == scene.grid.with_spacing((1.0, 1.5, 1.5))
    assert plan.target.shape == (24, 7, 5)
    assert plan.memory_ratio == pytest.approx((24 * 7 * 5) / (12 * 10 * 14), rel=1e-12)
    for needle in ("12 x 10 x 14", "24 x 7 x 5", "2 x 1 x 0.5", "1 x 1.5 x 1.5", "24 x 10 x 7", "24 x 10.5 x 7.5"):
        assert needle in text, (needle, text)
    ratio_line = next(line for line in text.splitlines() if "memory ratio" in line)
    assert any(abs(float(v) - plan.memory_ratio) < 1e-3 for v in re.findall(r"\d+\.\d+", ratio_line))
    byte = r"\d+(?:\.\d+)? (?:B|KiB|MiB|GiB|TiB|kB|KB|MB|GB)"
    for name, dtype in (("CT", np.float32), ("Liver", np.uint8)):
        row = plan_row(plan, name)
        assert "cpu" in row and re.search(r"cpu\s+1\b", row), row     # backend, one chunk
        assert len(re.findall(byte, row)) >= 3, row                          # bytes before, after, peak
        assert plan.bytes_before[name] == 12 * 10 * 14 * np.dtype(dtype).itemsize
        assert plan.bytes_after[name] == 24 * 7 * 5 * np.dtype(dtype).itemsize
    assert plan.peak_bytes > 0
    html = plan._repr_html_()
    assert "<table" in html and "24 x 7 x 5" in html and "cpu" in html and "Liver" in html


def test_s4_plan_computes_nothing_and_apply_does_what_it_showed(capsys):
    scene = _scene()
    whole = scene.plan(target_shape=(40, 9, 11))
    budget = max(whole.peak_bytes // 3, 1)
    plan = scene.plan(target_shape=(40, 9, 11), max_memory=budget)
    shown = {name: int(re.search(r"cpu\s+(\d+)", plan_row(plan, name)).group(1)) for name in ("CT", "Liver")}
    assert shown["CT"] > 1
    capsys.readouterr()
    new = plan.apply(progress=True)
    err = capsys.readouterr().err
    for name in ("CT", "Liver"):
        assert progress_totals(err, name) == (shown[name], shown[name])
        assert new[name].shape == plan.target.shape == (40, 9, 11)
    assert new.grid == plan.target
    assert new["CT"].dtype == np.float32 and new["Liver"].dtype == np.uint8
    # "before anything is computed": a 256 GiB target is planned and shown, never allocated
    huge = scene.plan(target_shape=(4096, 4096, 4096))
    assert "4096 x 4096 x 4096" in str(huge) and huge.bytes_after["CT"] == 4 * 4096 ** 3


def test_s7_plan_apply_equals_scene_resample():
    scene = _scene()
    kwargs = dict(target_spacing=(1.0, 1.5, 1.5), volume_interpolation="cubic", mask_interpolation="label")
    a = scene.plan(**kwargs).apply()
    b = scene.resample(**kwargs)
    assert a.grid == b.grid and sorted(a.names) == sorted(b.names) == ["CT", "Liver"]
    for name in a.names:
        np.testing.assert_array_equal(a[name], b[name])
    np.testing.assert_array_equal(
        a["CT"], gr.resample(scene["CT"], scene.grid.spacing, target_spacing=(1.0, 1.5, 1.5), interpolation="cubic"))


def test_s7_seed_positional_call():
    ct = RNG.normal(size=(16, 16, 8)).astype(np.float32)
    scene = gr.Scene((8.0, 8.0, 16.0), volumes={"CT": ct}, masks={"Liver": (ct > 0).astype(np.uint8)})
    new = scene.resample(["CT"], [256, 256, 128], [0.5, 0.5, 1.0], gr.Interpolation.LINEAR, gr.Interpolation.NEAREST)
    assert new.grid.shape == (256, 256, 128) and new.grid.spacing == (0.5, 0.5, 1.0)
    assert list(new.volumes) == ["CT"] and new["CT"].shape == (256, 256, 128) and new["CT"].dtype == np.float32
    plan = scene.plan([256, 256, 128], [0.5, 0.5, 1.0], "Linear", "NEAREST")
    assert plan.target.shape == (256, 256, 128)


def test_s7_public_signatures():
    params = inspect.signature(gr.resample).parameters
    assert list(params) == ["data", "spacing", "target_shape", "target_spacing", "interpolation", "dtype",
                            "antialias", "channel_axis", "backend", "device", "max_memory", "out", "progress",
                            "target", "fill"]  # the last two: onto another grid
    assert all(params[n].kind is inspect.Parameter.KEYWORD_ONLY for n in list(params)[2:])
    defaults = {n: p.default for n, p in params.items() if p.default is not inspect.Parameter.empty}
    assert defaults == dict(spacing=defaults["spacing"], target_shape=None, target_spacing=None,
                            interpolation="linear", dtype=None, antialias=False, channel_axis=None,
                            backend="auto", device=None, max_memory=None, out=None, progress=False,
                            target=None, fill=0)
    # The contract writes spacing=(1.0, 1.0, 1.0); the library's default means 1 mm on every axis (2-D too)
    x = VOLUME.astype(np.float32)
    np.testing.assert_array_equal(gr.resample(x, target_shape=(5, 6, 7)),
                                  gr.resample(x, spacing=(1.0, 1.0, 1.0), target_shape=(5, 6, 7)))
    assert list(inspect.signature(gr.Grid).parameters) == ["shape", "spacing", "origin", "direction"]
    plan_params = list(inspect.signature(gr.Scene((1, 1, 1), volumes={"x": x}).plan).parameters)
    assert plan_params[:4] == ["target_shape", "target_spacing", "volume_interpolation", "mask_interpolation"]
    scene_params = inspect.signature(gr.Scene).parameters
    assert list(scene_params)[:3] == ["grid", "volumes", "masks"]


def test_s7_interpolation_members_and_strings_any_case():
    assert {m.name for m in gr.Interpolation} >= {"NEAREST", "LINEAR", "CUBIC", "LABEL"}
    assert gr.Interpolation("Linear") is gr.Interpolation.LINEAR and gr.Interpolation("CUBIC") is gr.Interpolation.CUBIC
    with pytest.raises(ValueError):
        gr.Interpolation("quintic")
    aliases = {"trilinear": "LINEAR", "Bilinear": "LINEAR", "bspline": "CUBIC", "nearest-exact": "NEAREST"}
    for alias, member in aliases.items():
        assert gr.Interpolation(alias) is gr.Interpolation[member] is gr.Interpolation.parse(alias)
    x = VOLUME.astype(np.float32)
    for member in (gr.Interpolation.NEAREST, gr.Interpolation.LINEAR, gr.Interpolation.CUBIC):
        expected = gr.resample(x, (1, 1, 1), target_shape=(5, 6, 7), interpolation=member)
        for name in (member.value.upper(), member.value.capitalize(), member.name.lower()):
            got = gr.resample(x, (1, 1, 1), target_shape=(5, 6, 7), interpolation=name)
            np.testing.assert_array_equal(got, expected)


def test_s7_isotropic():
    assert gr.isotropic((0.7, 0.7, 2.5)) == (0.7, 0.7, 0.7)
    assert gr.isotropic([3.0, 1.2]) == (1.2, 1.2)


def test_s7_scene_takes_grid_or_spacing_tuple():
    ct = VOLUME.astype(np.float32)
    grid = gr.Grid(ct.shape, (2.0, 1.0, 0.5), origin=(1.0, 2.0, 3.0))
    a = gr.Scene(grid, volumes={"CT": ct}).resample(target_shape=(6, 5, 7))
    b = gr.Scene((2.0, 1.0, 0.5), volumes={"CT": ct}).resample(target_shape=(6, 5, 7))
    np.testing.assert_array_equal(a["CT"], b["CT"])
    assert a.grid.origin != b.grid.origin and a.grid.shape == b.grid.shape


# ------------------------------------------------------------------------------------------ §5
def test_s5_auto_on_this_cpu_machine_picks_cpu():
    if gr.available_backends().get("kernels") is None:
        pytest.skip("a GPU is usable here")
    plan = gr.Scene((1, 1, 1), volumes={"CT": VOLUME}).plan(target_shape=(4, 4, 4), backend="auto")
    assert re.search(r"\bcpu\b", plan_row(plan, "CT"))
    assert plan.backends == {"CT": "cpu"}


def test_s5_scipy_is_an_alias_of_cpu_shown_nowhere():
    expected = gr.resample(VOLUME, (1, 1, 1), target_shape=(4, 5, 6), backend="cpu")
    np.testing.assert_array_equal(gr.resample(VOLUME, (1, 1, 1), target_shape=(4, 5, 6), backend="scipy"), expected)
    plan = gr.Scene((1, 1, 1), volumes={"CT": VOLUME}).plan(target_shape=(4, 4, 4), backend="scipy")
    assert plan.backends == {"CT": "cpu"} and "scipy" not in str(plan)
    assert "scipy" not in gr.available_backends()
    with pytest.raises(ValueError, match="allowed: 'auto', 'kernels', 'cupyx', 'cpu'$"):
        gr.resample(VOLUME, (1, 1, 1), target_shape=(4, 5, 6), backend="numpy")


@pytest.mark.parametrize("backend", ["cupyx", "kernels"])
def test_s5_named_gpu_backend_that_cannot_run_says_why(backend):
    reason = gr.available_backends()[backend]
    if reason is None:
        pytest.skip(f"{backend} runs here")
    with pytest.raises(Exception) as info:
        gr.resample(VOLUME, (1, 1, 1), target_shape=(4, 4, 4), backend=backend)
    message = str(info.value)
    assert backend in message and reason in message
    assert re.search(r"cupy|cuda|device|nvrtc|kernel", message, re.IGNORECASE)


def test_s5_numpy_goes_to_the_gpu_only_with_device_cuda():
    if gr.available_backends()["cupyx"] is None:
        pytest.skip("a GPU is usable here")
    assert isinstance(gr.resample(VOLUME, (1, 1, 1), target_shape=(4, 4, 4)), np.ndarray)   # auto: CPU
    with pytest.raises(Exception, match=re.escape(gr.available_backends()["cupyx"])):
        gr.resample(VOLUME, (1, 1, 1), target_shape=(4, 4, 4), device="cuda")


def test_s5_import_needs_no_cupy(tmp_path):
    fake = tmp_path / "cupy"
    fake.mkdir()
    (fake / "__init__.py").write_text("")            # importable, so any import of it would show
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import numpy as np
        import gpuresample as gr
        assert "cupy" not in sys.modules, "import gpuresample imported cupy"
        gr.resample(np.zeros((4, 4, 4), np.float32), (1, 1, 1), target_shape=(2, 3, 2))
        assert "cupy" not in sys.modules, "resampling NumPy data imported cupy"
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def _chunked_plan(x, target_shape, interpolation, fraction):
    if interpolation == "label":
        scene, how = gr.Scene((1, 1, 1), masks={"x": x}), dict(mask_interpolation=interpolation)
    else:
        scene, how = gr.Scene((1, 1, 1), volumes={"x": x}), dict(volume_interpolation=interpolation)
    whole = scene.plan(target_shape=target_shape, **how)
    try:
        return scene.plan(target_shape=target_shape, max_memory=max(1, int(whole.peak_bytes * fraction)), **how)
    except MemoryError:
        return None


@settings(max_examples=30, deadline=None)
@given(st.integers(8, 48), st.integers(1, 60),
       st.sampled_from([("nearest", "float32"), ("nearest", "uint8"), ("linear", "float32"), ("linear", "float64"),
                        ("linear", "uint8"), ("cubic", "float32"), ("cubic", "float64"), ("label", "uint8")]),
       st.floats(0.1, 0.9))
def test_s5_chunked_equals_unchunked(n0, n_out, case, fraction):
    interpolation, dtype = case
    x = (np.random.default_rng(n0).normal(size=(n0, 5, 6)) * 40).astype(dtype)
    chunked = _chunked_plan(x, (n_out, 7, 4), interpolation, fraction)
    assume(chunked is not None and chunked.chunks["x"] > 1)
    got = chunked.apply()["x"]
    expected = gr.resample(x, (1, 1, 1), target_shape=(n_out, 7, 4), interpolation=interpolation)
    if interpolation == "cubic":
        assert np.max(np.abs(got - expected)) <= 1e-6 * np.max(np.abs(expected))
    else:
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("backend", ["cpu", "cupyx", "kernels"])
def test_s5_max_memory_bytes_or_string_on_every_backend(backend):
    reason = gr.available_backends()[backend]
    if reason is not None:
        pytest.skip(f"{backend}: {reason}")
    device = None if backend == "cpu" else "cuda"
    x = RNG.normal(size=(60, 20, 20)).astype(np.float32)
    kwargs = dict(target_shape=(90, 15, 25), backend=backend, device=device)
    whole = gr.resample(x, (1, 1, 1), **kwargs)
    scene = gr.Scene((1, 1, 1), volumes={"x": x})
    peak = scene.plan(target_shape=(90, 15, 25), backend=backend, device=device).peak_bytes
    as_string = f"{peak / 3 / 1000:.3f}kB"
    chunked = scene.plan(target_shape=(90, 15, 25), backend=backend, device=device, max_memory=as_string)
    assert chunked.chunks["x"] > 1
    np.testing.assert_array_equal(chunked.apply()["x"], whole)
    np.testing.assert_array_equal(gr.resample(x, (1, 1, 1), max_memory=peak // 3, **kwargs), whole)
    np.testing.assert_array_equal(gr.resample(x, (1, 1, 1), max_memory="2GB", **kwargs), whole)


def test_s5_max_memory_too_small_is_memory_error():
    with pytest.raises(MemoryError, match="max_memory"):
        gr.resample(VOLUME, (1, 1, 1), target_shape=(24, 20, 28), max_memory=64)


def test_s5_out_numpy_memmap(tmp_path):
    x = RNG.normal(size=(30, 12, 10)).astype(np.float32)
    out = np.lib.format.open_memmap(tmp_path / "out.npy", mode="w+", dtype=np.float32, shape=(45, 7, 13))
    returned = gr.resample(x, (1, 1, 1), target_shape=(45, 7, 13), out=out, max_memory="20kB", progress=True)
    assert returned is out
    out.flush()
    expected = gr.resample(x, (1, 1, 1), target_shape=(45, 7, 13))
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)
    zarr = pytest.importorskip("zarr")
    z = zarr.zeros((45, 7, 13), dtype=np.float32, chunks=(8, 7, 13))
    gr.resample(x, (1, 1, 1), target_shape=(45, 7, 13), out=z, max_memory="20kB")
    np.testing.assert_array_equal(z[...], expected)
    plain = np.empty((45, 7, 13), np.float32)
    assert gr.resample(x, (1, 1, 1), target_shape=(45, 7, 13), out=plain) is plain
    np.testing.assert_array_equal(plain, expected)


def test_s5_progress_bar(capsys):
    x = RNG.normal(size=(30, 12, 10)).astype(np.float32)
    capsys.readouterr()
    gr.resample(x, (1, 1, 1), target_shape=(45, 7, 13), progress=False)
    assert capsys.readouterr().err == ""
    gr.resample(x, (1, 1, 1), target_shape=(45, 7, 13), max_memory="20kB", progress=True)
    done, total = progress_totals(capsys.readouterr().err, "data")
    assert done == total > 1


# ------------------------------------------------------------------------------------------ §6
X = np.zeros((4, 5, 6), np.float32)
NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("kwargs,error,needles", [
    (dict(spacing=(1, 0, 1)), ValueError, ["spacing", "0"]),
    (dict(spacing=(1, -2.5, 1)), ValueError, ["spacing", "-2.5"]),
    (dict(spacing=(1, NAN, 1)), ValueError, ["spacing", "nan"]),
    (dict(spacing=(1, INF, 1)), ValueError, ["spacing", "inf"]),
    (dict(spacing=(1, "a", 1)), TypeError, ["spacing", "'a'"]),
    (dict(spacing=(1, 1)), ValueError, ["spacing", "(1, 1)"]),
    (dict(target_spacing=(1, 0, 1)), ValueError, ["target_spacing", "0"]),
    (dict(target_spacing=(1, NAN, 1)), ValueError, ["target_spacing", "nan"]),
    (dict(target_spacing=(1, 1, -INF)), ValueError, ["target_spacing", "inf"]),
    (dict(target_spacing=(1, 1, 1, 1)), ValueError, ["target_spacing", "(1, 1, 1, 1)"]),
    (dict(target_shape=(0, 2, 2)), ValueError, ["target_shape", "0"]),
    (dict(target_shape=(-3, 2, 2)), ValueError, ["target_shape", "-3"]),
    (dict(target_shape=(2.5, 2, 2)), ValueError, ["target_shape", "2.5"]),
    (dict(target_shape=(2, "x", 2)), ValueError, ["target_shape", "'x'"]),
    (dict(target_shape=(2, 2)), ValueError, ["target_shape", "(2, 2)"]),
    (dict(target_shape=(2, 2, 2), target_spacing=(1, 1, 1)), ValueError,
     ["target_shape", "target_spacing", "(2, 2, 2)", "(1.0, 1.0, 1.0)"]),
    (dict(target_shape=(2, 2, 2), interpolation="quintic"), ValueError, ["interpolation", "'quintic'"]),
    (dict(target_shape=(2, 2, 2), backend="gpu"), ValueError, ["backend", "'gpu'"]),
    (dict(target_shape=(2, 2, 2), backend="torch"), ValueError, ["backend", "'torch'"]),
    (dict(target_shape=(2, 2, 2), dtype="complex128"), TypeError, ["dtype", "complex128"]),
    (dict(target_shape=(2, 2, 2), max_memory="lots"), ValueError, ["max_memory", "'lots'"]),
    (dict(target_shape=(2, 2, 2), channel_axis=7), ValueError, ["channel_axis", "7"]),
])
def test_s6_errors_name_argument_and_value(kwargs, error, needles):
    kwargs = dict(kwargs)
    spacing = kwargs.pop("spacing", (1, 1, 1))
    kwargs.setdefault("target_shape", None)
    if kwargs["target_shape"] is None and "target_spacing" not in kwargs:
        kwargs["target_shape"] = (2, 2, 2)
    with pytest.raises(error) as info:
        gr.resample(X, spacing, **kwargs)
    message = str(info.value)
    for needle in needles:
        assert needle.lower() in message.lower(), (needle, message)


def test_s6_wrong_number_of_axes_names_data_and_shape():
    with pytest.raises(ValueError) as info:
        gr.resample(np.zeros((2, 3, 4, 5, 6), np.float32), (1,) * 5, target_shape=(2,) * 5)
    assert "(2, 3, 4, 5, 6)" in str(info.value) and "data" in str(info.value)


def test_s6_grid_errors():
    with pytest.raises(ValueError, match=r"shape.*0"):
        gr.Grid((0, 2, 2), (1, 1, 1))
    with pytest.raises(ValueError, match=r"spacing.*nan"):
        gr.Grid((2, 2, 2), (1, NAN, 1))
    with pytest.raises(ValueError, match=r"direction"):
        gr.Grid((2, 2, 2), (1, 1, 1), direction=np.ones((3, 3)))
    g = gr.Grid((2, 2, 2), (1, 1, 1))
    with pytest.raises(ValueError, match=r"target_shape.*1\.5"):
        g.with_shape((1.5, 2, 2))
    with pytest.raises(ValueError, match=r"target_spacing.*-1"):
        g.with_spacing((-1, 1, 1))


def test_s6_scene_masks_of_a_different_shape():
    with pytest.raises(ValueError) as info:
        gr.Scene((1, 1, 1), volumes={"CT": X}, masks={"Liver": np.zeros((4, 5, 7), np.uint8)})
    message = str(info.value)
    assert "mask" in message and "Liver" in message and "(4, 5, 7)" in message and "(4, 5, 6)" in message
    grid = gr.Grid((4, 5, 6), (1, 1, 1))
    with pytest.raises(ValueError, match=r"Liver.*\(4, 5, 7\)"):
        gr.Scene(grid, masks={"Liver": np.zeros((4, 5, 7), np.uint8)})


def test_s6_scene_plan_errors_name_argument_and_value():
    scene = gr.Scene((1, 1, 1), volumes={"CT": X}, masks={"Liver": X.astype(np.uint8)})
    with pytest.raises(ValueError, match=r"volume_interpolation='spline'"):
        scene.plan(target_shape=(2, 2, 2), volume_interpolation="spline")
    with pytest.raises(ValueError, match=r"mask_interpolation='bogus'"):
        scene.plan(target_shape=(2, 2, 2), mask_interpolation="bogus")
    with pytest.raises(ValueError, match=r"backend='cuda'"):
        scene.plan(target_shape=(2, 2, 2), backend="cuda")
    with pytest.raises(ValueError, match=r"target_shape.*0"):
        scene.plan(target_shape=(0, 2, 2))
    with pytest.raises(ValueError, match=r"grid|spacing"):
        gr.Scene((1, 0, 1), volumes={"CT": X})
    with pytest.raises(MemoryError, match="max_memory"):
        scene.plan(target_shape=(8, 10, 12), max_memory="100B")
