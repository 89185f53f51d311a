"""Resampling onto another dataset's grid (docs/design.md §1): ``Grid.from_affine``, ``target=``, ``fill``.

The reference is SimpleITK's ``Resample(image, referenceImage)`` on real NIfTI files
(written with nibabel, read by both libraries), and SciPy's ``map_coordinates`` for
cubic (our cubic is SciPy's ``order=3, mode='nearest'``; ITK's B-spline has other edges).
"""

from __future__ import annotations

import warnings

from dataclasses import replace

import numpy as np
import pytest
from helpers import random_volume
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

import gpuresample as gr
from gpuresample.backends.cpu import CpuBackend
from gpuresample.planner import Chunking
from gpuresample.geometry import axis_correspondence, index_map
from gpuresample.onto import (
    AffineSampling,
    affine_sampling,
    aligned_tables,
    onto_sampling,
)

INTERPOLATIONS = ["nearest", "linear", "cubic", "label"]
#: SimpleITK computes in float64 and casts; our float32 linear works in float32.
FLOAT32_ATOL = 1e-5
#: Chunked cubic equals whole cubic within this (the prefilter halo).
CUBIC_CHUNK_RTOL = 1e-6


def rotation(axis: int, degrees: float) -> np.ndarray:
    """A 3x3 rotation by ``degrees`` about array axis ``axis``."""
    a = np.deg2rad(degrees)
    c, s = np.cos(a), np.sin(a)
    i, j = [k for k in range(3) if k != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def physical_positions(source: gr.Grid, target: gr.Grid) -> np.ndarray:
    """Input voxel positions of every target voxel, ``(3, N)``, the plain way (np.linalg.inv)."""
    j = np.indices(target.shape).reshape(target.ndim, -1).astype(np.float64)
    m = np.linalg.inv(source.affine) @ target.affine
    return m[:-1, :-1] @ j + m[:-1, -1:]


def inside_band(source: gr.Grid, u: np.ndarray) -> np.ndarray:
    n = np.array(source.shape, np.float64)[:, None]
    return ~((u < -0.5 - 1e-9) | (u > n - 0.5 + 1e-9)).any(axis=0)


# ----------------------------------------------------------------------- Grid.from_affine
@st.composite
def grids(draw):
    shape = tuple(draw(st.lists(st.integers(1, 300), min_size=3, max_size=3)))
    spacing = tuple(draw(st.lists(st.floats(0.05, 20.0), min_size=3, max_size=3)))
    origin = tuple(draw(st.lists(st.floats(-500.0, 500.0), min_size=3, max_size=3)))
    quaternion = np.array(draw(st.lists(st.floats(-1.0, 1.0), min_size=4, max_size=4)))
    if np.linalg.norm(quaternion) < 1e-3:
        quaternion = np.array([1.0, 0.0, 0.0, 0.0])
    w, x, y, z = quaternion / np.linalg.norm(quaternion)
    rot = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                    [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                    [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    flips = np.diag(draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=3, max_size=3)))
    return gr.Grid(shape, spacing, origin, rot @ flips)


@settings(max_examples=200, deadline=None)
@given(grids())
def test_grid_round_trips_through_from_affine(grid):
    again = gr.Grid.from_affine(grid.shape, grid.affine)
    assert again.shape == grid.shape
    np.testing.assert_allclose(again.spacing, grid.spacing, rtol=1e-12)
    np.testing.assert_allclose(again.origin, grid.origin, rtol=0, atol=1e-9)
    np.testing.assert_allclose(again.direction_matrix, grid.direction_matrix, rtol=0, atol=1e-12)
    np.testing.assert_allclose(again.affine, grid.affine, rtol=1e-12, atol=1e-9)


def test_from_affine_reads_columns_as_nibabel_does():
    affine = np.array([[0.0, 0.0, -3.0, 10.0], [2.0, 0.0, 0.0, -4.0], [0.0, 0.5, 0.0, 7.0], [0, 0, 0, 1]])
    grid = gr.Grid.from_affine((4, 5, 6), affine)
    assert grid.spacing == (2.0, 0.5, 3.0)
    assert grid.origin == (10.0, -4.0, 7.0)
    np.testing.assert_array_equal(grid.direction_matrix, [[0, 0, -1], [1, 0, 0], [0, 1, 0]])


@pytest.mark.parametrize("affine,match", [
    (np.array([[1.0, 0.3, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]), "shear"),
    (np.diag([1.0, 0.0, 1.0, 1.0]), "singular"),
    (np.array([[1.0, 1.0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]), "singular"),
    (np.eye(3), r"4x4 matrix"),
    (np.diag([1.0, 1.0, np.nan, 1.0]), "finite"),
    (np.array([[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1]]), "last row"),
])
def test_from_affine_rejects_what_is_not_a_grid(affine, match):
    with pytest.raises(ValueError, match=match):
        gr.Grid.from_affine((4, 5, 6), affine)


def test_io_reader_names_the_file_in_affine_errors():
    from gpuresample import io
    with pytest.raises(ValueError, match="scan.nii: the matrix has shear"):
        io.grid_from_affine((2, 2, 2), [[1, 0.5, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], source="scan.nii")


# ------------------------------------------------------------------------------ arguments
def test_spacing_may_be_the_datas_grid():
    x = random_volume((6, 7, 8), "float32")
    grid = gr.Grid(x.shape, (1.0, 2.0, 3.0), origin=(5.0, 5.0, 5.0))
    np.testing.assert_array_equal(gr.resample(x, grid, target_shape=(3, 4, 5)),
                                  gr.resample(x, grid.spacing, target_shape=(3, 4, 5)))
    with pytest.raises(ValueError, match=r"spacing is a Grid of shape \(6, 7, 9\).*\(6, 7, 8\)"):
        gr.resample(x, gr.Grid((6, 7, 9), (1.0, 1.0, 1.0)), target_shape=(3, 3, 3))


@pytest.mark.parametrize("extra", [{"target_shape": (3, 3, 3)}, {"target_spacing": (2.0, 2.0, 2.0)}])
def test_target_with_a_target_shape_or_spacing_names_both(extra):
    x = random_volume((6, 7, 8), "float32")
    grid = gr.Grid(x.shape, (1.0, 1.0, 1.0))
    name = next(iter(extra))
    with pytest.raises(ValueError, match=f"target= and {name}= were both given"):
        gr.resample(x, grid, target=grid, **extra)
    with pytest.raises(ValueError, match=f"target= and {name}= were both given"):
        gr.Scene(grid, volumes={"x": x}).plan(target=grid, **extra)


def test_target_must_be_a_grid_with_the_datas_axes():
    x = random_volume((6, 7, 8), "float32")
    with pytest.raises(TypeError, match="target must be a gpuresample.Grid"):
        gr.resample(x, (1.0, 1.0, 1.0), target=(3, 3, 3))
    with pytest.raises(ValueError, match="target has 2 axes"):
        gr.resample(x, (1.0, 1.0, 1.0), target=gr.Grid((3, 3), (1.0, 1.0)))


@pytest.mark.parametrize("fill,dtype,match", [
    (np.nan, "uint8", "fill=nan needs a float output"),
    (300, "uint8", "integers from 0 to 255"),
    (0.5, "int16", "fill=0.5 is not a value of the output dtype int16"),
    (2, "bool", "integers from 0 to 1"),
    ("zero", "float32", "fill must be a number"),
])
def test_fill_must_be_a_value_of_the_output_dtype(fill, dtype, match):
    x = np.zeros((4, 4, 4), dtype)
    grid = gr.Grid(x.shape, (1.0, 1.0, 1.0))
    with pytest.raises((ValueError, TypeError), match=match):
        gr.resample(x, grid, target=grid, fill=fill, interpolation="nearest")


# ---------------------------------------------------------------------- behaviour, CPU
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize("dtype", ["float32", "int16", "uint8", "bool", "float16"])
def test_identity_target_returns_the_input(interpolation, dtype):
    x = random_volume((7, 9, 11), dtype, seed=3)
    grid = gr.Grid(x.shape, (0.7, 1.3, 2.0), origin=(10.0, -20.0, 3.0), direction=rotation(1, 33.0))
    again = gr.Grid.from_affine(grid.shape, grid.affine)  # the same grid, through a 4x4 matrix
    out = gr.resample(x, grid, target=again, interpolation=interpolation)
    if interpolation == "cubic" and x.dtype.kind == "f":
        np.testing.assert_allclose(out, x, rtol=1e-3, atol=1e-3 * float(np.abs(x).max()))
    else:
        np.testing.assert_array_equal(out, x)


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_flipped_and_permuted_target_is_the_flipped_transposed_input(interpolation):
    x = random_volume((6, 9, 11), "float32", seed=4)
    grid = gr.Grid(x.shape, (1.5, 1.0, 2.0), origin=(1.0, 2.0, 3.0))
    # target axes: (source axis 2 reversed, source axis 0, source axis 1 reversed)
    swap = np.zeros((4, 4))
    swap[2, 0], swap[0, 1], swap[1, 2], swap[3, 3] = -1.0, 1.0, -1.0, 1.0
    swap[2, 3], swap[1, 3] = x.shape[2] - 1, x.shape[1] - 1
    target = gr.Grid.from_affine((11, 6, 9), grid.affine @ swap)
    assert axis_correspondence(grid, target) == ((2, 0, 1), (-1, 1, -1))
    expected = x.transpose(2, 0, 1)[::-1, :, ::-1]
    if interpolation == "label":
        x, expected = (x > 0).astype(np.uint8), (expected > 0).astype(np.uint8)
    out = gr.resample(x, grid, target=target, interpolation=interpolation)
    if interpolation == "cubic":
        np.testing.assert_allclose(out, expected, atol=1e-3 * float(np.abs(x).max()))
    else:
        np.testing.assert_array_equal(out, expected)


def test_outside_the_source_gets_fill_nan_and_inside_is_unchanged():
    x = random_volume((10, 8, 6), "float32", seed=5)
    grid = gr.Grid(x.shape, (2.0, 1.0, 1.0))
    shifted = gr.Grid(x.shape, grid.spacing, origin=(6.0, -2.0, 0.0))  # 3 voxels on, 2 voxels back
    out = gr.resample(x, grid, target=shifted, interpolation="linear", fill=np.nan)
    np.testing.assert_array_equal(out[:7, 2:], x[3:, :6])
    assert np.isnan(out[7:]).all() and np.isnan(out[:, :2]).all()
    masked = gr.resample((x > 0).astype(np.uint8), grid, target=shifted, interpolation="label")
    assert (masked[7:] == 0).all() and (masked[:, :2] == 0).all()  # masks: 0 is background


def test_half_a_voxel_beyond_the_edge_is_inside_and_clamped():
    x = np.arange(4, dtype=np.float32).reshape(4, 1, 1)
    grid = gr.Grid(x.shape, (1.0, 1.0, 1.0))
    target = gr.Grid((6, 1, 1), (1.0, 1.0, 1.0), origin=(-1.0, 0.0, 0.0))  # -1 .. 4: two beyond the band
    out = gr.resample(x, grid, target=target, fill=-1).ravel().tolist()
    assert out == [-1.0, 0.0, 1.0, 2.0, 3.0, -1.0]
    half = gr.Grid((2, 1, 1), (4.0, 1.0, 1.0), origin=(-0.5, 0.0, 0.0))  # positions -0.5 and 3.5: the band's edges
    assert gr.resample(x, grid, target=half, fill=-1).ravel().tolist() == [0.0, 3.0]


def test_no_overlap_warns_and_gives_only_fill():
    x = random_volume((8, 8, 8), "float32")
    grid = gr.Grid(x.shape, (1.0, 1.0, 1.0))
    far = gr.Grid((5, 5, 5), (1.0, 1.0, 1.0), origin=(0.0, 9.0, 9.0), direction=rotation(0, 45.0))
    with pytest.warns(UserWarning, match="does not overlap the data at all"):
        out = gr.resample(x, grid, target=far, fill=-7)
    assert (out == -7).all()
    near = gr.Grid((5, 5, 5), (1.0, 1.0, 1.0), origin=(0.0, 7.0, 7.0), direction=rotation(0, 45.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert (gr.resample(x, grid, target=near, fill=-7) != -7).any()


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_oblique_chunked_equals_whole(interpolation):
    x = random_volume((64, 20, 18), "float32", seed=6)
    if interpolation == "label":
        x = (np.abs(x) // 60).astype(np.uint8)
    grid = gr.Grid(x.shape, (1.0, 1.2, 1.4), origin=(0.0, 0.0, 0.0))
    target = gr.Grid((60, 19, 16), (1.1, 1.1, 1.3), origin=(2.0, -3.0, 1.0), direction=rotation(0, 20.0) @ rotation(2, 3.0))
    whole = gr.resample(x, grid, target=target, interpolation=interpolation)
    if interpolation == "cubic":  # slabs keep axis 0's whole line (the prefilter is never cut)
        job = gr.job.build_job(x, grid, onto=target, interpolation=interpolation)
        job = replace(job, chunking=Chunking(((0, 1), (1, 23), (23, 60)), 0, None))
        assert job.tables.rows(1, 23).input_rows == (0, x.shape[0])
    else:
        peak = gr.job.build_job(x, grid, onto=target, interpolation=interpolation).chunking.peak_bytes
        job = gr.job.build_job(x, grid, onto=target, interpolation=interpolation, max_memory=int(peak * 0.6))
        assert job.chunking.count >= 2
        first, stop = job.tables.rows(*job.chunking.slabs[1]).input_rows
        assert stop - first < x.shape[0]  # a slab reads only the rows it needs
    chunked = job.run()
    np.testing.assert_array_equal(chunked, whole)


@pytest.mark.parametrize("interpolation", ["nearest", "linear", "label"])
def test_axis_aligned_fast_path_agrees_with_the_oblique_loops(interpolation):
    x = random_volume((12, 10, 9), "float32", seed=7)
    if interpolation == "label":
        x = (np.abs(x) // 60).astype(np.uint8)
    grid = gr.Grid(x.shape, (1.0, 1.5, 2.0))
    target = gr.Grid((9, 14, 8), (1.3, 1.1, 2.5), origin=(2.1, 14.0, 3.3), direction=np.diag([1.0, -1.0, 1.0]))
    tables = onto_sampling(grid, target, interpolation, 0.0)
    assert not isinstance(tables, AffineSampling)
    fast = gr.resample(x, grid, target=target, interpolation=interpolation)
    loops = np.empty(target.shape, x.dtype)
    CpuBackend().resample_block(x, affine_sampling(grid, target, interpolation, 0.0), loops)
    if interpolation == "linear":
        np.testing.assert_allclose(fast, loops, rtol=1e-6, atol=1e-6 * 300)
    else:
        np.testing.assert_array_equal(fast, loops)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_oblique_cubic_is_scipys_map_coordinates(dtype):
    x = random_volume((16, 18, 14), dtype, seed=8)
    grid = gr.Grid(x.shape, (1.0, 1.3, 0.9), origin=(-3.0, 4.0, 2.0))
    target = gr.Grid((14, 15, 16), (1.2, 1.2, 1.1), origin=(-2.0, 3.0, 0.0), direction=rotation(1, 20.0))
    out = gr.resample(x, grid, target=target, interpolation="cubic", fill=np.nan)
    u = physical_positions(grid, target)
    inside = inside_band(grid, u).reshape(target.shape)
    expected = ndimage.map_coordinates(x.astype(np.float64), u, order=3, mode="nearest").reshape(target.shape)
    rtol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(out[inside], expected[inside], rtol=rtol, atol=rtol * float(np.abs(x).max()))
    assert np.isnan(out[~inside]).all() and inside.any() and not inside.all()


def test_oblique_2d_is_scipys_map_coordinates():
    x = random_volume((21, 17), "float64", seed=9)
    grid = gr.Grid(x.shape, (1.0, 1.5))
    a = np.deg2rad(25.0)
    target = gr.Grid((20, 20), (1.1, 1.1), origin=(1.0, -2.0), direction=[[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    j = np.indices(target.shape).reshape(2, -1).astype(np.float64)
    m = np.linalg.inv(grid.affine) @ target.affine
    u = m[:-1, :-1] @ j + m[:-1, -1:]
    inside = inside_band(grid, u).reshape(target.shape)
    for interpolation, order in (("nearest", 0), ("linear", 1), ("cubic", 3)):
        out = gr.resample(x, grid, target=target, interpolation=interpolation, fill=np.nan)
        expected = ndimage.map_coordinates(x, u, order=order, mode="nearest").reshape(target.shape)
        np.testing.assert_allclose(out[inside], expected[inside], rtol=1e-10, atol=1e-10, err_msg=interpolation)
        assert np.isnan(out[~inside]).all()


@pytest.mark.parametrize("out_dtype", ["uint8", "float16", "bool"])
def test_oblique_output_dtypes_round_and_clip(out_dtype):
    x = (random_volume((10, 10, 10), "float32", seed=10) * 3).astype(np.float32)
    grid = gr.Grid(x.shape, (1.0, 1.0, 1.0))
    target = gr.Grid(x.shape, (1.0, 1.0, 1.0), direction=rotation(0, 30.0))
    as_float = gr.resample(x, grid, target=target, interpolation="linear", dtype="float64")
    out = gr.resample(x, grid, target=target, interpolation="linear", dtype=out_dtype)
    expected = as_float.astype(np.float32)
    if out_dtype != "float16":
        info = (0, 1) if out_dtype == "bool" else (0, 255)
        expected = np.clip(np.rint(expected), *info)
    np.testing.assert_allclose(out.astype(np.float64), expected.astype(out_dtype).astype(np.float64), atol=1.0)


def test_permuted_target_into_an_out_array_like(tmp_path):
    zarr = pytest.importorskip("zarr")
    x = random_volume((12, 8, 6), "float32", seed=11)
    grid = gr.Grid(x.shape, (1.0, 1.0, 1.0))
    swap = np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])
    target = gr.Grid.from_affine((8, 14, 6), grid.affine @ swap)  # 2 rows beyond the source along its axis 0
    expected = gr.resample(x, grid, target=target, fill=-1)
    assert (expected[:, 12:] == -1).all()
    store = zarr.open(str(tmp_path / "out.zarr"), mode="w", shape=expected.shape, chunks=(4, 4, 4), dtype="float32")
    gr.resample(x, grid, target=target, fill=-1, out=store, max_memory=20_000)
    np.testing.assert_array_equal(store[...], expected)


def test_plan_shows_the_targets_origin_and_direction_when_they_differ():
    scene = gr.sample.phantom((12, 14, 16))
    target = gr.Grid((10, 10, 10), (2.0, 2.0, 2.0), origin=(1.0, 2.0, 3.0), direction=rotation(0, 20.0))
    text = str(scene.plan(target=target))
    assert "origin (mm)" in text and "1 x 2 x 3" in text
    assert "direction (columns)" in text and "(0, 0.9397, 0.342)" in text
    assert "origin (mm)" in scene.plan(target=target)._repr_html_()
    derived = str(scene.plan(target_spacing=(2.0, 2.0, 2.0)))
    assert "origin (mm)" not in derived and "direction" not in derived
    shifted = gr.Grid((12, 14, 16), scene.grid.spacing, origin=(0.0, 0.0, 0.0))
    shifted_text = str(scene.plan(target=shifted))
    assert "origin (mm)" in shifted_text and "direction" not in shifted_text


def test_scene_onto_another_grid_keeps_labels_and_agrees_with_resample():
    scene = gr.sample.phantom((20, 24, 24))
    target = gr.Grid((16, 20, 20), (2.0, 1.2, 1.2), origin=(-15.0, -10.0, -10.0), direction=rotation(0, 20.0))
    new = scene.resample(target=target, mask_interpolation="label", fill=0)
    assert new.grid == target
    assert set(np.unique(new.masks["Organs"])) <= set(np.unique(scene.masks["Organs"]))
    np.testing.assert_array_equal(new.volumes["CT"], gr.resample(scene.volumes["CT"], scene.grid, target=target))


def test_label_fill_into_another_dtype_must_be_an_input_label():
    grid = gr.Grid((4, 4, 4), (1.0, 1.0, 1.0))
    target = gr.Grid((4, 4, 4), (1.0, 1.0, 1.0), origin=(2.0, 0.0, 0.0), direction=rotation(0, 20.0))
    with pytest.raises(ValueError, match="fill=-1.0 is not a value of the input dtype uint8"):
        gr.resample(np.zeros((4, 4, 4), np.uint8), grid, target=target, interpolation="label", dtype="int16", fill=-1)
    out = gr.resample(np.ones((4, 4, 4), np.uint8), grid, target=target, interpolation="label", dtype="int16", fill=7)
    assert out.dtype == np.int16 and set(np.unique(out)) == {1, 7}


def test_index_map_is_source_inverse_times_target():
    source = gr.Grid((5, 6, 7), (0.5, 1.5, 2.5), origin=(1.0, 2.0, 3.0), direction=rotation(2, 40.0))
    target = gr.Grid((3, 4, 5), (1.0, 2.0, 3.0), origin=(-1.0, 0.0, 1.0), direction=rotation(1, -15.0))
    expected = (np.linalg.inv(source.affine) @ target.affine)[:-1]
    np.testing.assert_allclose(index_map(source, target), expected, rtol=0, atol=1e-13)


def test_aligned_tables_carry_the_outside_indices_per_axis():
    source = gr.Grid((10, 10, 10), (1.0, 1.0, 1.0))
    target = gr.Grid((12, 10, 10), (1.0, 1.0, 1.0), origin=(-1.0, 0.0, 0.0), direction=np.diag([-1.0, 1.0, 1.0]))
    tables = aligned_tables(source, target, "linear", axis_correspondence(source, target))
    # positions along axis 0: u(j) = -1 - j, all below the band [-0.5, 9.5]
    assert tables.axes[0].outside.tolist() == [True] * 12
    assert tables.axes[1].outside is None and tables.axes[2].outside is None
    with pytest.warns(UserWarning, match="does not overlap"):
        onto_sampling(source, target, "linear", 0.0)


# ------------------------------------------------------------------ SimpleITK, real files
def _write_nifti(path, array, affine):
    nib = pytest.importorskip("nibabel")
    image = nib.Nifti1Image(array, affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    nib.save(image, str(path))
    return path


def _affine(spacing, origin, direction) -> np.ndarray:
    affine = np.eye(4)
    affine[:3, :3] = np.asarray(direction) * np.asarray(spacing)[None, :]
    affine[:3, 3] = origin
    return affine


@pytest.fixture
def scan_files(tmp_path):
    """A source scan (float32 CT-like and a uint8 mask) and target files: the source's own
    grid, a flipped-axis grid, a grid rotated 20 degrees about one axis, and one far away."""
    scene = gr.sample.phantom((28, 34, 30), spacing=(2.2, 0.9, 1.1))
    source_affine = _affine((2.2, 0.9, 1.1), (30.0, -15.0, -16.0), np.diag([-1.0, 1.0, 1.0]))
    files = {
        "ct": _write_nifti(tmp_path / "ct.nii.gz", scene.volumes["CT"], source_affine),
        "mask": _write_nifti(tmp_path / "mask.nii.gz", scene.masks["Organs"], source_affine),
    }
    flipped = _affine((1.7, 1.3, 0.95), (-28.0, 14.0, -12.0), np.diag([1.0, -1.0, 1.0]))
    oblique = _affine((1.6, 1.2, 1.05), (40.0, -14.0, -18.0), np.diag([-1.0, 1.0, 1.0]) @ rotation(0, 20.0))
    far = _affine((1.0, 1.0, 1.0), (500.0, 0.0, 0.0), np.eye(3))
    for name, affine, shape in (("flipped", flipped, (36, 26, 34)), ("oblique", oblique, (38, 30, 33)),
                                ("far", far, (5, 5, 5))):
        files[name] = _write_nifti(tmp_path / f"{name}.nii.gz", np.zeros(shape, np.int16), affine)
    files["same"] = files["ct"]
    return files


def _simpleitk_resample(source_path, reference_path, interpolator, fill):
    sitk = pytest.importorskip("SimpleITK")
    result = sitk.Resample(sitk.ReadImage(str(source_path)), sitk.ReadImage(str(reference_path)), sitk.Transform(),
                           getattr(sitk, interpolator), float(fill))
    return sitk.GetArrayFromImage(result).transpose(2, 1, 0)  # ITK's (k, j, i) -> the file's index axes


@pytest.mark.parametrize("reference", ["same", "flipped", "oblique"])
@pytest.mark.parametrize("interpolation,interpolator", [("nearest", "sitkNearestNeighbor"), ("linear", "sitkLinear")])
def test_volume_onto_a_reference_file_matches_simpleitk(scan_files, reference, interpolation, interpolator):
    from gpuresample import io
    data, grid = io.read(scan_files["ct"])
    _, target = io.read(scan_files[reference])
    ours = gr.resample(data, grid, target=target, interpolation=interpolation, fill=-1024)
    theirs = _simpleitk_resample(scan_files["ct"], scan_files[reference], interpolator, -1024)
    assert ours.shape == theirs.shape == target.shape and ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours == -1024, theirs == -1024)  # the same voxels are outside
    if interpolation == "nearest":
        np.testing.assert_array_equal(ours, theirs)
    else:
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=FLOAT32_ATOL * float(np.abs(data).max()))
    if reference == "same":
        np.testing.assert_array_equal(ours, data)
    else:
        assert 0.05 < np.mean(ours == -1024) < 0.95  # partly outside: fill is really exercised


@pytest.mark.parametrize("reference", ["flipped", "oblique"])
def test_mask_onto_a_reference_file_keeps_its_labels(scan_files, reference):
    from gpuresample import io
    mask, grid = io.read(scan_files["mask"])
    _, target = io.read(scan_files[reference])
    nearest = gr.resample(mask, grid, target=target, interpolation="nearest")
    np.testing.assert_array_equal(nearest, _simpleitk_resample(scan_files["mask"], scan_files[reference],
                                                               "sitkNearestNeighbor", 0))
    label = gr.resample(mask, grid, target=target, interpolation="label")
    assert label.dtype == mask.dtype and set(np.unique(label)) == set(np.unique(mask))
    agree = np.mean(label == nearest)
    assert agree > 0.95, agree  # smoother boundaries, the same objects


def test_scene_from_files_onto_a_reference_with_the_io_loader(scan_files):
    from gpuresample import io
    scene = io.load(scan_files["ct"], masks={"organs": scan_files["mask"]})
    _, target = io.read(scan_files["oblique"])
    new = scene.resample(target=target, fill=-1024)
    np.testing.assert_array_equal(new.masks["organs"], _simpleitk_resample(
        scan_files["mask"], scan_files["oblique"], "sitkNearestNeighbor", 0))
    np.testing.assert_allclose(new.volumes["ct"], _simpleitk_resample(scan_files["ct"], scan_files["oblique"],
                                                                     "sitkLinear", -1024), atol=1e-2)


def test_reference_file_that_does_not_overlap_warns(scan_files):
    from gpuresample import io
    data, grid = io.read(scan_files["ct"])
    _, target = io.read(scan_files["far"])
    with pytest.warns(UserWarning, match="does not overlap"):
        out = gr.resample(data, grid, target=target, fill=np.nan)
    assert np.isnan(out).all()
    assert np.isnan(_simpleitk_resample(scan_files["ct"], scan_files["far"], "sitkLinear", np.nan)).all()


# ------------------------------------------------- axis-aligned targets on every backend
def _aligned_case(interpolation):
    """Source data and fast-path tables of a target flipped on two axes, permuted and shifted
    partly outside the source (so tables hold decreasing positions and outside indices)."""
    x = random_volume((13, 11, 9), "float32", seed=12)
    if interpolation == "label":
        x = (np.abs(x) // 60).astype(np.uint8)
    grid = gr.Grid(x.shape, (1.0, 1.5, 2.0), origin=(0.0, 0.0, 0.0))
    direction = np.array([[0.0, -1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # swap axes 0 and 1, both reversed
    target = gr.Grid((12, 16, 10), (1.2, 0.9, 1.7), origin=(14.0, 12.0, -3.0), direction=direction)
    tables = onto_sampling(grid, target, interpolation, 0.0)
    assert tables.output_axes == (1, 0, 2) and any(t.outside is not None for t in tables.axes)
    return x, tables


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_aligned_target_tables_run_on_the_cupyx_code_bit_for_bit(interpolation):
    from gpuresample.backends._array import resample_with

    x, tables = _aligned_case(interpolation)
    expected = np.empty(tables.output_shape, x.dtype)
    CpuBackend().resample_block(x, tables, expected)
    result = np.empty(tables.output_shape, x.dtype)
    resample_with(np, ndimage, x, tables, result)
    np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_aligned_target_tables_run_on_the_cuda_kernels_bit_for_bit(interpolation, tmp_path_factory):
    harness = pytest.importorskip("harness.device")
    if harness.compiler() is None:
        pytest.skip("no C++ compiler (g++ or $CXX) to build the kernels as C++")
    from gpuresample.backends.cuda import kernel_names, run_kernels

    x, tables = _aligned_case(interpolation)
    names = list(kernel_names(x.dtype, x.dtype, interpolation))
    device = harness.HarnessDevice(harness.build(names, tmp_path_factory.mktemp("aligned_kernels")))
    result = np.empty(tables.output_shape, x.dtype)
    run_kernels(device, x, tables, result)
    expected = np.empty(tables.output_shape, x.dtype)
    CpuBackend().resample_block(x, tables, expected)
    np.testing.assert_array_equal(result, expected)


# ------------------------------------------------------ oblique targets on the cupyx code
XP_CASES = [("float32", "float32"), ("float16", "float16"), ("float64", "float64"), ("uint16", "uint16"),
            ("bool", "bool"), ("float32", "uint8"), ("float32", "float16"), ("float64", "float32"),
            ("uint8", "int16")]


#: Label masks are converted between integer dtypes only (float labels into another dtype are no use case).
XP_PARAMS = [(i, a, b) for i in INTERPOLATIONS for a, b in XP_CASES
             if not (i == "label" and np.dtype(a).kind == "f" and a != b)]


@pytest.mark.parametrize("interpolation,in_dtype,out_dtype", XP_PARAMS)
def test_oblique_on_the_cupyx_code_matches_cpu(interpolation, in_dtype, out_dtype, monkeypatch):
    """CupyxBackend with NumPy as "CuPy" and scipy.ndimage as cupyx's: nearest, linear and
    label bit for bit, cubic within float rounding (its prefilter is SciPy's)."""
    import gpuresample._cupy
    from gpuresample.backends import cupyx

    monkeypatch.setattr(gpuresample._cupy, "import_cupy", lambda: np)
    monkeypatch.setattr(cupyx.backend, "_ndimage", lambda: ndimage)
    x = random_volume((24, 13, 11), in_dtype, seed=13)
    if interpolation == "label" and np.dtype(in_dtype).kind != "b":
        x = (np.abs(x.astype(np.float64)) % 5).astype(in_dtype)
    grid = gr.Grid(x.shape, (1.0, 1.0, 1.0))
    target = gr.Grid((20, 14, 12), (1.2, 1.0, 0.9), origin=(2.0, -1.0, 0.5), direction=rotation(0, 20.0) @ rotation(1, 5.0))
    fill = 1 if out_dtype == "bool" else 2
    for sampling in (affine_sampling(grid, target, interpolation, fill),
                     affine_sampling(grid, target, interpolation, fill).rows(5, 13)):
        first, stop = sampling.input_rows
        result = np.empty(sampling.output_shape, out_dtype)
        cupyx.CupyxBackend().resample_block(x[first:stop], sampling, result)
        expected = np.empty(sampling.output_shape, out_dtype)
        CpuBackend().resample_block(x[first:stop], sampling, expected)
        if interpolation == "cubic" and np.dtype(out_dtype).kind == "f":
            scale = float(np.abs(expected[np.isfinite(expected)]).max())
            np.testing.assert_allclose(result, expected, rtol=1e-6, atol=1e-6 * scale)
        elif interpolation == "cubic":  # integer outputs: only a value at a rounding tie may move
            assert np.abs(result.astype(np.int64) - expected.astype(np.int64)).max() <= 1
        else:
            np.testing.assert_array_equal(result, expected)
        assert (result == fill).any()


def test_cupyx_counts_the_oblique_scratch():
    from gpuresample.backends import cupyx

    grid = gr.Grid((40, 30, 20), (1.0, 1.0, 1.0))
    target = gr.Grid((40, 30, 20), (1.0, 1.0, 1.0), direction=rotation(0, 20.0))
    linear = cupyx.CupyxBackend().scratch_bytes(affine_sampling(grid, target, "linear", 0.0), "float32", "float32")
    cubic = cupyx.CupyxBackend().scratch_bytes(affine_sampling(grid, target, "cubic", 0.0), "float32", "float32")
    assert linear >= 40 * 30 * 20 * 8 * 3  # at least the three float64 positions per voxel
    assert cubic >= linear + 64 * 54 * 44 * 8  # and the float64 coefficients of the extended lines


# ------------------------------------------------------------------------------- Dask
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize("kind", ["oblique", "flipped_permuted"])
def test_dask_onto_another_grid_equals_the_whole_run(interpolation, kind):
    da = pytest.importorskip("dask.array")
    import gpuresample.dask as grd

    x = random_volume((30, 22, 18), "float32", seed=14)
    if interpolation == "label":
        x = (np.abs(x) // 60).astype(np.uint8)
    grid = gr.Grid(x.shape, (1.0, 1.2, 1.5), origin=(3.0, -2.0, 1.0))
    if kind == "oblique":
        target = gr.Grid((26, 20, 21), (1.1, 1.2, 1.3), origin=(4.0, -1.0, 0.0), direction=rotation(0, 20.0))
    else:
        direction = np.array([[0.0, -1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
        target = gr.Grid((24, 28, 15), (1.1, 0.9, 1.7), origin=(28.0, 30.0, -3.0), direction=direction)
    whole = gr.resample(x, grid, target=target, interpolation=interpolation, fill=5)
    lazy = grd.resample(da.from_array(x, chunks=(7, 9, 8)), grid, target=target, interpolation=interpolation,
                        fill=5, output_chunks=(6, 8, 7))
    assert lazy.shape == target.shape and lazy.dtype == x.dtype
    if kind == "oblique":
        assert lazy.chunks[1:] == ((20,), (21,)) and len(lazy.chunks[0]) > 2  # row blocks, whole planes
    got = lazy.compute(scheduler="sync")
    assert (got == 5).any() and (got != 5).any()
    if interpolation == "cubic":
        np.testing.assert_allclose(got, whole, rtol=CUBIC_CHUNK_RTOL, atol=CUBIC_CHUNK_RTOL * 300)
    else:
        np.testing.assert_array_equal(got, whole)


# ------------------------------------------------------------------ dictionary transform
@pytest.mark.filterwarnings("error::UserWarning")
def test_transform_onto_a_target_grid_or_reference_image():
    from gpuresample.transforms import Resampled

    rng = np.random.default_rng(15)
    image = rng.normal(size=(1, 20, 18, 16)).astype(np.float32)
    label = (rng.random((1, 20, 18, 16)) * 3).astype(np.uint8)
    source = gr.Grid((20, 18, 16), (1.2, 1.0, 1.5), origin=(10.0, -8.0, -12.0), direction=np.diag([-1.0, 1.0, 1.0]))
    case = {"image": image, "label": label, "image_meta_dict": {"affine": source.affine}}
    target = gr.Grid((14, 16, 12), (1.5, 1.2, 1.8), origin=(-2.0, -9.0, -10.0), direction=rotation(0, 20.0))
    reference = {"data": np.zeros((1,) + target.shape, np.float32), "affine": target.affine}  # TorchIO-style
    for target_form in (target, reference):
        transform = Resampled(["image", "label"], target=target_form, interpolation={"image": "linear", "label": "label"},
                              fill={"image": -5.0, "label": 0})
        out = transform(case)
        np.testing.assert_array_equal(out["image"][0], gr.resample(image[0], source, target=target, fill=-5.0))
        np.testing.assert_array_equal(out["label"][0], gr.resample(label[0], source, target=target,
                                                                   interpolation="label"))
        np.testing.assert_allclose(out["image_meta_dict"]["affine"], target.affine)
        assert (out["image"] == -5.0).any() and (out["image"] != -5.0).mean() > 0.2
        assert set(np.unique(out["label"])) == {0, 1, 2}
    with pytest.raises(ValueError, match="target= and target_spacing= were both given"):
        Resampled(["image"], target=target, target_spacing=(1.0, 1.0, 1.0))
    with pytest.raises(TypeError, match="target must be a gpuresample.Grid, a nibabel or SimpleITK image"):
        Resampled(["image"], target=(14, 16, 12))
    with pytest.raises(ValueError, match="no geometry"):
        Resampled(["image"], target=target)({"image": image})


def test_channels_into_an_out_array_like_onto_a_permuted_target(tmp_path):
    zarr = pytest.importorskip("zarr")
    x = random_volume((2, 12, 8, 6), "float32", seed=16)  # channels first
    grid = gr.Grid((12, 8, 6), (1.0, 1.0, 1.0))
    swap = np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])
    target = gr.Grid.from_affine((8, 14, 6), grid.affine @ swap)  # 2 rows beyond the source: fill there
    expected = gr.resample(x, grid, target=target, fill=-1, channel_axis=0)
    assert (expected[:, :, 12:] == -1).all()
    store = zarr.open(str(tmp_path / "out.zarr"), mode="w", shape=expected.shape, chunks=(1, 4, 4, 4),
                      dtype="float32")
    gr.resample(x, grid, target=target, fill=-1, channel_axis=0, out=store)
    np.testing.assert_array_equal(store[...], expected)


def test_overlap_test_matches_the_voxels_that_get_sampled():
    """``overlaps`` (the no-overlap warning) agrees with the fill mask computed voxel by voxel,
    for targets that only graze the source, miss it, or cover it."""
    from gpuresample.onto import overlaps

    source = gr.Grid((10, 9, 8), (1.0, 1.2, 1.5))
    rng = np.random.default_rng(17)
    seen = set()
    for _ in range(60):
        axis = int(rng.integers(3))
        origin = rng.uniform(-25.0, 25.0, 3)
        target = gr.Grid((5, 6, 4), (2.0, 2.0, 2.0), origin=origin, direction=rotation(axis, float(rng.uniform(0, 90))))
        inside = inside_band(source, physical_positions(source, target))
        assert overlaps(source, target) == bool(inside.any())
        seen.add(bool(inside.any()))
    assert seen == {True, False}
