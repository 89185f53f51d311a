"""Anti-aliasing as a sampling table: the Gaussian of every smoothed axis runs through each
backend's own separable passes (the compiled CPU loops' ``separable3``, the array code's passes,
the kernels' ``gr_table_pass``), so every backend smooths to the same bits, and the result is
SciPy's ``gaussian_filter1d`` (``mode='nearest'``) to rounding.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import random_volume
from scipy import ndimage

import gpuresample as gr
from gpuresample import Grid
from gpuresample.backends import _loops, clear_caches
from gpuresample.backends import cuda as kernels
from gpuresample.backends.cpu import smooth
from gpuresample.interpolation import working_dtype
from gpuresample.tables import (
    AxisTable,
    build_tables,
    gaussian_radius,
    gaussian_weights,
    smoothing_passes,
    smoothing_table,
)

SIGMAS = [0.2, 0.5, 1.0, 1.75, 3.5]
#: Antialiased downsampling: (input shape, target shape), sigmas between 0.5 and 1.5.
DOWN = ((40, 36, 30), (13, 12, 11))


@pytest.fixture(params=["auto", "array"])
def loops(request, monkeypatch):
    """Each test runs with the compiled CPU loops and on the array path."""
    monkeypatch.setenv(_loops.LOOPS_VARIABLE, request.param)
    clear_caches()
    if request.param == "auto":
        assert _loops.is_compiled(), "the compiled CPU loops are not built"
    yield request.param
    monkeypatch.undo()
    clear_caches()


def scipy_smoothed(volume: np.ndarray, tables) -> np.ndarray:
    """SciPy's Gaussian along each smoothed axis in float64, margins cropped."""
    values = volume.astype(np.float64)
    for axis, table in enumerate(tables.axes):
        if table.sigma > 0:
            values = ndimage.gaussian_filter1d(values, table.sigma, axis=axis, mode="nearest")
    return values[tuple(slice(t.margin_before, values.shape[a] - t.margin_after) for a, t in enumerate(tables.axes))]


def down_tables(shape, target, interpolation="linear"):
    source = Grid(shape, (1.0,) * len(shape))
    spacing = tuple(n / m for n, m in zip(shape, target))
    return build_tables(source, Grid(target, spacing), interpolation, antialias=True)


@pytest.mark.parametrize("sigma", SIGMAS)
def test_the_table_is_scipys_gaussian_clamped_to_the_block(sigma):
    radius = gaussian_radius(sigma)
    impulse = np.zeros(2 * radius + 1)
    impulse[radius] = 1.0
    kernel = ndimage.gaussian_filter1d(impulse, sigma, mode="constant")
    np.testing.assert_allclose(gaussian_weights(sigma), kernel, rtol=1e-14, atol=1e-17)
    assert gaussian_weights(sigma).sum() == pytest.approx(1.0, abs=1e-15)
    table = smoothing_table(AxisTable(np.zeros((1, 1), np.int64), np.ones((1, 1)), 5, 15, sigma=sigma,
                                      margin_before=min(radius, 5), margin_after=radius))
    n_in = min(radius, 5) + 10 + radius
    assert table.n_out == 10 and table.taps == 2 * radius + 1 and table.source_length == n_in
    want = np.clip(np.arange(10)[:, None] + min(radius, 5) + np.arange(-radius, radius + 1), 0, n_in - 1)
    np.testing.assert_array_equal(table.index, want)
    assert smoothing_table(AxisTable(np.zeros((1, 1), np.int64), np.ones((1, 1)), 0, 4)) is None


def test_only_smoothed_axes_get_a_pass():
    tables = build_tables(Grid((30, 8, 20), (1.0, 1.0, 1.0)), Grid((10, 16, 20), (3.0, 0.5, 1.0)), "linear",
                          antialias=True)
    passes = smoothing_passes(tables)
    assert passes[0] is not None and passes[0].taps == 2 * gaussian_radius(1.0) + 1
    assert passes[1] is None and passes[2] is None


def test_float64_smoothing_agrees_with_scipy(loops):
    volume = random_volume(DOWN[0], "float64", seed=1)
    tables = down_tables(*DOWN)
    assert all(t.sigma > 0 for t in tables.axes)
    got = smooth(volume, tables, np.dtype(np.float64))
    want = scipy_smoothed(volume, tables)
    assert got.dtype == np.float64 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())


@pytest.mark.parametrize("dtype", ["float32", "float16", "uint8", "int16"])
def test_smoothing_in_the_working_dtype_agrees_with_scipy(loops, dtype):
    volume = random_volume(DOWN[0], dtype, seed=2)
    tables = down_tables(*DOWN, "cubic")
    work = working_dtype(volume.dtype)
    got = smooth(volume, tables, work)
    want = scipy_smoothed(volume, tables)
    assert got.dtype == work
    rtol = 1e-12 if work == np.float64 else 1e-6
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max())


def test_2d_blocks_and_a_single_smoothed_axis(loops):
    volume = random_volume((50, 17), "float32", seed=3)
    tables = down_tables((50, 17), (10, 17))
    assert tables.axes[0].sigma > 0 and tables.axes[1].sigma == 0
    got = smooth(volume, tables, np.dtype(np.float32))
    assert got.shape == (50, 17)
    np.testing.assert_allclose(got, scipy_smoothed(volume, tables), rtol=1e-6, atol=1e-6 * np.abs(volume).max())


@pytest.mark.parametrize("rows", [(0, 3), (2, 9), (10, 13)])
def test_a_slabs_smoothed_rows_are_the_whole_volumes(loops, rows):
    volume = random_volume(DOWN[0], "float32", seed=4)
    tables = down_tables(*DOWN)
    whole = smooth(volume, tables, np.dtype(np.float32))
    slab = tables.slab(*rows)
    first, stop = slab.input_rows
    part = smooth(volume[first:stop], slab, np.dtype(np.float32))
    lo, hi = slab.axes[0].source_start, slab.axes[0].source_stop
    np.testing.assert_array_equal(part, whole[lo:hi])


# ---------------------------------------------------------------------------------------
# The compiled loops, the array path and the kernels (compiled as C++): the same bits
# ---------------------------------------------------------------------------------------

DTYPES = ["uint8", "int16", "float32"]
INTERPOLATIONS = ["linear", "cubic"]


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    from harness.device import build, compiler

    if compiler() is None:
        pytest.skip("no C++ compiler (g++ or $CXX) to build the kernels as C++")
    names = []
    for dtype in DTYPES:
        for interpolation in INTERPOLATIONS:
            names += [n for n in kernels.kernel_names(dtype, dtype, interpolation) if n not in names]
    return build(names, tmp_path_factory.mktemp("antialias_harness"))


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_cpu_loops_array_path_and_kernels_give_the_same_bits(harness, monkeypatch, dtype, interpolation):
    from harness.device import HarnessDevice

    volume = random_volume(DOWN[0], dtype, seed=5)
    options = {"target_shape": DOWN[1], "interpolation": interpolation, "antialias": True, "backend": "cpu"}
    results = {}
    for choice in ("native", "array"):
        monkeypatch.setenv(_loops.LOOPS_VARIABLE, choice)
        clear_caches()
        results[choice] = gr.resample(volume, (1.0, 1.0, 1.0), **options)
    monkeypatch.undo()
    clear_caches()
    source = Grid(DOWN[0], (1.0, 1.0, 1.0))
    tables = build_tables(source, source.with_shape(DOWN[1]), interpolation, antialias=True)
    assert all(t.sigma > 0 for t in tables.axes)
    device = HarnessDevice(harness)
    out = np.empty(tables.output_shape, volume.dtype)
    kernels.run_kernels(device, volume, tables, out)
    passes = [name for name in device.launched if name.startswith("gr_table_pass")]
    assert len(passes) == 3, device.launched  # the kernels smoothed, one pass per axis
    np.testing.assert_array_equal(results["array"], results["native"])
    np.testing.assert_array_equal(out, results["native"])
    assert out.dtype == results["native"].dtype == np.dtype(dtype)


def test_the_compiled_loops_import_no_scipy():
    """Anti-aliasing no longer needs ``scipy.ndimage``: with the compiled loops a process imports no
    SciPy (the array path imports it when it runs)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, numpy as np, gpuresample as gr\n"
            "x = np.random.default_rng(0).random((20, 18, 16), dtype=np.float32)\n"
            "for i in ('nearest', 'linear', 'cubic'):\n"
            "    gr.resample(x, (1, 1, 1), target_shape=(7, 6, 5), interpolation=i, antialias=i != 'nearest')\n"
            "gr.resample((x * 3).astype(np.uint8), (1, 1, 1), target_shape=(7, 6, 5), interpolation='label')\n"
            "print(sorted(m for m in sys.modules if m == 'scipy' or m.startswith('scipy.')))\n")
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root), **{_loops.LOOPS_VARIABLE: "native"})
    result = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
