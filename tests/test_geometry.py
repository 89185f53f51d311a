"""Geometry invariants (docs/design.md §1), as examples and as Hypothesis properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gpuresample as gr
from gpuresample.geometry import sampling_positions

shapes = st.lists(st.integers(1, 300), min_size=3, max_size=3).map(tuple)
spacings = st.lists(st.floats(0.05, 5.0, allow_nan=False), min_size=3, max_size=3).map(tuple)


def rotation(angle_deg: float) -> np.ndarray:
    a = math.radians(angle_deg)
    return np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])


def test_grid_basics():
    g = gr.Grid((10, 20, 30), (1.0, 0.5, 2.0), origin=(1, 2, 3))
    assert g.extent == (10.0, 10.0, 60.0)
    assert g.size == 6000
    np.testing.assert_allclose(g.center, (1 + 4.5, 2 + 4.75, 3 + 29.0))
    np.testing.assert_allclose(g.affine[:3, :3], np.diag([1.0, 0.5, 2.0]))
    np.testing.assert_allclose(g.affine[:3, 3], (1, 2, 3))


def test_grid_is_frozen():
    g = gr.Grid((2, 2, 2), (1, 1, 1))
    with pytest.raises(Exception):
        g.shape = (3, 3, 3)


def test_by_dimensions_spacing_formula():
    g = gr.Grid((512, 512, 300), (0.7, 0.7, 2.5))
    t = g.with_shape((256, 256, 150))
    assert t.spacing == (1.4, 1.4, 5.0)
    assert t.extent == pytest.approx(g.extent, rel=1e-15)


def test_by_spacing_shape_formula_and_centre():
    g = gr.Grid((512, 512, 300), (0.7, 0.7, 2.5))
    t = g.with_spacing((1.0, 1.0, 1.0))
    assert t.shape == (358, 358, 750)
    assert t.spacing == (1.0, 1.0, 1.0)
    np.testing.assert_allclose(t.center, g.center, atol=1e-9)


def test_origin_formula_with_direction():
    d = rotation(30)
    g = gr.Grid((10, 12, 14), (1.0, 2.0, 3.0), origin=(5, -3, 7), direction=d)
    t = g.with_spacing((3.0, 3.0, 3.0))
    extent, new_extent = np.array(g.extent), np.array(t.extent)
    expected = np.array(g.origin) + d @ ((extent - new_extent) / 2 + (np.array(t.spacing) - np.array(g.spacing)) / 2)
    np.testing.assert_allclose(t.origin, expected, atol=1e-12)
    np.testing.assert_allclose(t.center, g.center, atol=1e-9)


def test_sampling_positions_match_scipy_grid_mode_by_dimensions():
    g = gr.Grid((6,), (1.0,))
    t = g.with_shape((4,))
    np.testing.assert_array_equal(sampling_positions(g, t, 0), (np.arange(4) + 0.5) * 1.5 - 0.5)


def test_isotropic_and_coarsest():
    assert gr.isotropic((0.7, 0.7, 2.5)) == (0.7, 0.7, 0.7)
    assert gr.coarsest_spacing((0.5, 0.5, 1.0), (0.8, 0.4, 3.0)) == (0.8, 0.5, 3.0)


def test_resolve_both_agreeing_and_disagreeing():
    g = gr.Grid((512, 512, 256), (0.25, 0.25, 0.5))
    t = g.resolve((256, 256, 128), (0.5, 0.5, 1.0))
    assert t.shape == (256, 256, 128)
    with pytest.raises(ValueError, match="disagree"):
        g.resolve((256, 256, 128), (0.5, 0.5, 1.1))


@settings(max_examples=200, deadline=None)
@given(shapes, spacings, shapes)
def test_extent_kept_by_dimensions(shape, spacing, target_shape):
    g = gr.Grid(shape, spacing)
    t = g.with_shape(target_shape)
    np.testing.assert_allclose(t.extent, g.extent, rtol=1e-12)
    np.testing.assert_allclose(t.center, g.center, rtol=1e-9, atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(shapes, spacings, spacings)
def test_centre_kept_by_spacing(shape, spacing, target_spacing):
    g = gr.Grid(shape, spacing, origin=(3.0, -2.0, 10.0))
    t = g.with_spacing(target_spacing)
    assert t.spacing == tuple(target_spacing)
    np.testing.assert_allclose(t.center, g.center, rtol=1e-9, atol=1e-9)
    for e, e2, s2 in zip(g.extent, t.extent, t.spacing):
        # the extent changes by less than one target voxel (or the grid is a single voxel)
        assert abs(e - e2) <= s2 * (1 + 1e-9) or e2 == s2


@settings(max_examples=100, deadline=None)
@given(shapes, spacings, st.floats(-180, 180))
def test_affine_consistent(shape, spacing, angle):
    g = gr.Grid(shape, spacing, origin=(1.0, 2.0, 3.0), direction=rotation(angle))
    idx = np.array([[0, 0, 0], [shape[0] - 1, shape[1] - 1, shape[2] - 1], [1, 2, 3]], dtype=float)
    homog = np.c_[idx, np.ones(3)] @ g.affine.T
    np.testing.assert_allclose(homog[:, :3], g.index_to_physical(idx), atol=1e-9)
    # the centre is the physical position of the middle index
    np.testing.assert_allclose(g.index_to_physical((np.array(shape) - 1) / 2), g.center, atol=1e-9)


@settings(max_examples=100, deadline=None)
@given(shapes, spacings, spacings)
def test_positions_stay_inside_half_voxel(shape, spacing, target_spacing):
    """Every sampling position lies within the input's bounding box (u in (-0.5, n - 0.5))."""
    g = gr.Grid(shape, spacing)
    t = g.with_spacing(target_spacing)
    for axis in range(3):
        u = sampling_positions(g, t, axis)
        assert u.min() > -0.5 - 1e-9 and u.max() < shape[axis] - 0.5 + 1e-9
