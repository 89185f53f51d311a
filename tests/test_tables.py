"""Sampling tables (docs/design.md §2): what every backend reads about the geometry."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import random_volume
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuresample import Grid
from gpuresample.backends._spline_states import states_for_slabs
from gpuresample.backends.cpu import CpuBackend, smooth
from gpuresample.interpolation import Interpolation
from gpuresample.tables import (
    CUBIC_PAD,
    MIN_PARALLEL_ROWS,
    antialias_sigma,
    as_3d,
    axis_table,
    build_tables,
    gaussian_radius,
    pass_order,
)

SEPARABLE = [Interpolation.NEAREST, Interpolation.LINEAR, Interpolation.CUBIC]


@pytest.mark.parametrize("interpolation", SEPARABLE + [Interpolation.LABEL])
def test_weights_sum_to_one_and_indices_stay_on_the_line(interpolation):
    positions = np.linspace(-3.2, 12.7, 41)
    table = axis_table(positions, 10, interpolation)
    np.testing.assert_allclose(table.weight.sum(axis=1), 1.0, rtol=1e-12)
    assert table.index.min() >= 0 and table.index.max() < table.line_length
    assert table.n_out == 41 and table.taps == {"nearest": 1, "linear": 2, "label": 2, "cubic": 4}[interpolation.value]


def test_nearest_ties_go_up_and_edges_clamp():
    table = axis_table(np.array([-0.7, 0.5, 1.5, 2.49, 9.6]), 5, Interpolation.NEAREST)
    assert table.index[:, 0].tolist() == [0, 1, 2, 2, 4]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-5, 30, allow_nan=False), min_size=1, max_size=20), st.integers(1, 25))
def test_linear_weights_reproduce_the_clamped_position(positions, n_in):
    table = axis_table(np.array(positions), n_in, Interpolation.LINEAR)
    expected = np.clip(positions, 0, n_in - 1)
    np.testing.assert_allclose((table.index * table.weight).sum(axis=1), expected, atol=1e-9)


def test_zero_weight_taps_point_at_the_heaviest_tap():
    """An output on an exact input row touches only that row (NaN elsewhere cannot reach it)."""
    table = axis_table(np.array([2.0, 3.0]), 6, Interpolation.LINEAR)
    assert table.index.tolist() == [[2, 2], [3, 3]] and table.weight[:, 1].tolist() == [0.0, 0.0]


def test_cubic_pads_the_line_as_scipy_mode_nearest():
    table = axis_table(np.array([0.0, 4.0]), 5, Interpolation.CUBIC)
    assert (table.pad_before, table.pad_after) == (CUBIC_PAD, CUBIC_PAD)
    first, stop = table.coefficient_rows()
    assert first <= CUBIC_PAD and stop >= CUBIC_PAD + 5  # every data row is kept
    rows = table.coefficient_source_rows()
    assert rows.min() == 0 and rows.max() == 4 and len(rows) == stop - first


def test_whole_slab_is_the_table_itself():
    source = Grid((12, 7, 5), (1, 1, 1))
    tables = build_tables(source, source.with_shape((20, 7, 5)), "cubic")
    assert tables.slab(0, 20) is tables
    assert tables.axes[0].slab(0, 20) is tables.axes[0]
    part = tables.slab(4, 9)
    assert part.output_shape == (5, 7, 5) and part.axes[1:] == tables.axes[1:]


@pytest.mark.parametrize("interpolation,antialias", [(i, False) for i in SEPARABLE + [Interpolation.LABEL]]
                         + [(Interpolation.LINEAR, True), (Interpolation.CUBIC, True)])
def test_slab_tables_read_their_rows_and_give_the_whole_result(interpolation, antialias):
    x = random_volume((60, 9, 8), "float32", seed=4)
    if interpolation is Interpolation.LABEL:
        x = np.round(np.abs(x) / 60).astype(np.float32)
    source = Grid(x.shape, (1, 1, 1))
    tables = build_tables(source, source.with_shape((25, 6, 11)), interpolation, antialias=antialias)
    whole = np.empty(tables.output_shape, np.float32)
    CpuBackend().resample_block(x, tables, whole)
    slabs = [(0, 1), (3, 11), (11, 25)]
    parts = states_for_slabs(tables, [tables.slab(a, b) for a, b in slabs], x, 1, lambda b, t: smooth(b, t, np.float32))
    for (start, stop), part in zip(slabs, parts):
        first, last = part.input_rows
        assert 0 <= first < last <= 60
        out = np.empty(part.output_shape, np.float32)
        CpuBackend().resample_block(x[first:last], part, out)
        np.testing.assert_array_equal(out, whole[start:stop])  # cubic too: slabs start from the prefilter states


def test_cubic_slab_reads_only_the_rows_of_its_coefficients():
    """No halo: a slab's prefilter continues the whole line's recursion from its states instead."""
    source = Grid((200, 4, 4), (1, 1, 1))
    table = build_tables(source, source.with_shape((200, 4, 4)), "cubic").axes[0]
    part = table.rows(100, 110)
    assert (part.source_start, part.source_stop) == (99, 111)  # taps of outputs 100..109 (zero-weight taps dropped)
    assert (part.pad_before, part.pad_after) == (0, 0)  # far from the edges: no edge pad
    assert part.is_cut and part.whole_line == 200 + 2 * CUBIC_PAD
    assert part.kept_window() == (99 + CUBIC_PAD, 111 + CUBIC_PAD)
    assert not table.is_cut and table.slab(0, 200) is table


def test_antialias_margin_covers_the_gaussian():
    source = Grid((80, 5, 5), (1, 1, 1))
    tables = build_tables(source, source.with_spacing((4.0, 1.0, 1.0)), "linear", antialias=True)
    sigma = antialias_sigma(1.0, 4.0)
    assert tables.axes[0].sigma == sigma == 1.5
    part = tables.axes[0].rows(8, 12)
    assert part.margin_before == part.margin_after == gaussian_radius(sigma) == 6


def test_pass_order_is_cheapest_and_parallel_first():
    source = Grid((40, 40, 40), (1, 1, 1))
    tables = build_tables(source, source.with_shape((10, 80, 80)), "linear")
    order = pass_order(as_3d(tables))
    assert sorted(order) == [0, 1, 2] and tables.order == order
    assert tables.axes[order[0]].n_out >= MIN_PARALLEL_ROWS
    assert order[0] == 0  # downsampling axis 0 first makes every later pass smaller


def test_2d_tables_get_a_dummy_leading_axis():
    source = Grid((6, 8), (1, 1))
    axes = as_3d(build_tables(source, source.with_shape((3, 4)), "linear"))
    assert len(axes) == 3 and axes[0].n_out == 1 and axes[0].index.tolist() == [[0]]


def test_grids_of_different_dimensions_are_refused():
    with pytest.raises(ValueError, match="source grid has 3 axes, target grid has 2"):
        build_tables(Grid((4, 4, 4), (1, 1, 1)), Grid((4, 4), (1, 1)), "linear")
