"""The chunked planner and executor on the CPU backend (issue: volumes larger than memory).

A chunked result must equal the unchunked one bit for bit, for every interpolation,
cubic included (docs/design.md §2): slabs start the cubic prefilter from the whole line's states.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from helpers import random_volume, traced_peak

import gpuresample as gr
from gpuresample.backends.cpu import CpuBackend
from gpuresample.job import build_job
from gpuresample.planner import Chunking, plan_slabs, slab_bytes

CASES = [
    # (input shape, target shape): upsampling, downsampling (output rows share input rows), odd sizes
    ((23, 17, 19), (41, 9, 30)),
    ((40, 12, 15), (13, 12, 15)),
    ((31, 20, 9), (31, 33, 17)),
]


def split(n, pieces):
    """Slabs of output rows: uneven, with a one-row slab when possible."""
    edges = sorted(set([0, n] + list(np.linspace(0, n, pieces + 1).astype(int)) + ([1] if n > 2 else [])))
    return tuple(zip(edges[:-1], edges[1:]))


def run_with_slabs(x, target, interpolation, slabs, dtype=None, antialias=False):
    job = build_job(x, (1.0, 0.8, 1.3), target_shape=target, interpolation=interpolation, dtype=dtype,
                    antialias=antialias)
    job = replace(job, chunking=Chunking(slabs, job.chunking.peak_bytes, None))
    return job.run()


def assert_same(chunked, whole, interpolation=None):
    """Bit for bit, every interpolation (docs/design.md §2)."""
    assert chunked.dtype == whole.dtype and chunked.shape == whole.shape
    assert np.array_equal(chunked, whole, equal_nan=chunked.dtype.kind == "f"), (
        f"{interpolation}: {np.count_nonzero(chunked != whole)} values differ")


@pytest.mark.parametrize("pieces", [2, 7, 1000])
@pytest.mark.parametrize("interpolation", ["nearest", "linear", "cubic", "label"])
@pytest.mark.parametrize("shape,target", CASES)
def test_chunked_equals_whole(shape, target, interpolation, pieces):
    dtype = "uint8" if interpolation == "label" else "float32"
    x = random_volume(shape, dtype, seed=sum(shape))
    if interpolation == "label":
        x = x % 5
    whole = gr.resample(x, (1.0, 0.8, 1.3), target_shape=target, interpolation=interpolation)
    slabs = split(target[0], pieces)
    assert len(slabs) >= min(pieces, target[0]) and any(b - a == 1 for a, b in slabs)
    chunked = run_with_slabs(x, target, interpolation, slabs)
    assert_same(chunked, whole, interpolation)


@pytest.mark.parametrize("interpolation", ["linear", "cubic"])
@pytest.mark.parametrize("dtype", ["uint16", "int8", "float64"])
def test_chunked_integer_and_float64_outputs(interpolation, dtype):
    x = random_volume((26, 14, 11), dtype, seed=5)
    whole = gr.resample(x, (1.0, 0.8, 1.3), target_shape=(37, 10, 20), interpolation=interpolation)
    chunked = run_with_slabs(x, (37, 10, 20), interpolation, split(37, 7))
    assert_same(chunked, whole, interpolation)


@pytest.mark.parametrize("interpolation", ["linear", "cubic"])
def test_chunked_antialias(interpolation):
    x = random_volume((60, 20, 20), "float32", seed=2)
    whole = gr.resample(x, (1, 1, 1), target_shape=(13, 7, 20), interpolation=interpolation, antialias=True)
    job = build_job(x, (1, 1, 1), target_shape=(13, 7, 20), interpolation=interpolation, antialias=True)
    job = replace(job, chunking=Chunking(split(13, 5), 0, None))
    assert_same(job.run(), whole, interpolation)


@pytest.mark.parametrize("interpolation", ["nearest", "linear", "cubic", "label"])
def test_chunked_2d(interpolation):
    x = random_volume((57, 31), "uint8", seed=9) % 4
    whole = gr.resample(x, (1.0, 1.0), target_shape=(23, 40), interpolation=interpolation)
    job = build_job(x, (1.0, 1.0), target_shape=(23, 40), interpolation=interpolation)
    job = replace(job, chunking=Chunking(split(23, 6), 0, None))
    assert_same(job.run(), whole, interpolation)


@pytest.mark.parametrize("interpolation", ["linear", "cubic", "label"])
def test_max_memory_forces_slabs_and_stays_within(interpolation):
    dtype = "uint8" if interpolation == "label" else "float32"
    x = random_volume((48, 40, 36), dtype, seed=1)
    whole = gr.resample(x, (1, 1, 1), target_shape=(64, 30, 50), interpolation=interpolation)
    counts = []
    whole_peak = build_job(x, (1, 1, 1), target_shape=(64, 30, 50), interpolation=interpolation).chunking.peak_bytes
    budgets = [int(whole_peak * f) for f in (0.7, 0.35, 0.1)]
    if interpolation == "cubic":
        # cubic plans also hold the pre-pass's checkpoints and a slab's two float64 state planes, so
        # cannot get as thin (how thin depends on the engine): the first budgets that give more slabs
        budgets = first_budgets_splitting_more(x, whole_peak, target_shape=(64, 30, 50), interpolation="cubic")
    for budget in budgets:
        job = build_job(x, (1, 1, 1), target_shape=(64, 30, 50), interpolation=interpolation, max_memory=budget)
        assert job.chunking.peak_bytes <= budget
        counts.append(job.chunking.count)
        assert_same(job.run(), whole, interpolation)
    assert counts[0] > 1 and counts[0] < counts[1] < counts[2]


def first_budgets_splitting_more(x, whole_peak, count=3, **options) -> list:
    """Budgets down from 95 % of ``whole_peak`` in 5 % steps, each the first giving more slabs."""
    budgets, counts = [], [1]
    for percent in range(95, 0, -5):
        budget = whole_peak * percent // 100
        try:
            slabs = build_job(x, (1, 1, 1), max_memory=budget, **options).chunking.count
        except MemoryError:  # thinner than one output row allows
            break
        if slabs > counts[-1]:
            budgets.append(budget)
            counts.append(slabs)
    assert len(budgets) >= count, f"no {count} budgets give more slabs each: {counts[1:]}"
    return budgets[:count]


def test_max_memory_string():
    x = random_volume((40, 40, 40), "float32")
    job = build_job(x, (1, 1, 1), target_shape=(60, 60, 60), max_memory="0.5MB")
    assert job.chunking.count > 1 and job.chunking.budget == 500_000


def test_out_memmap(tmp_path):
    x = random_volume((30, 21, 17), "int16", seed=4)
    out = np.lib.format.open_memmap(tmp_path / "out.npy", mode="w+", dtype=np.int16, shape=(45, 21, 34))
    result = gr.resample(x, (1, 1, 1), target_shape=(45, 21, 34), out=out, max_memory="100KB")
    assert result is out
    out.flush()
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), gr.resample(x, (1, 1, 1), target_shape=(45, 21, 34)))


def test_out_zarr_and_zarr_input(tmp_path):
    zarr = pytest.importorskip("zarr")
    x = random_volume((30, 21, 17), "float32", seed=6)
    source = zarr.open_array(tmp_path / "in.zarr", mode="w", shape=x.shape, chunks=(7, 21, 17), dtype="float32")
    source[...] = x
    out = zarr.open_array(tmp_path / "out.zarr", mode="w", shape=(45, 10, 34), chunks=(5, 10, 34), dtype="float32")
    # cubic plans count the prefilter pre-pass's checkpoints: 225KB gives a few slabs
    assert build_job(source, (1, 1, 1), target_shape=(45, 10, 34), out=out, max_memory="225KB",
                     interpolation="cubic").chunking.count > 1
    result = gr.resample(source, (1, 1, 1), target_shape=(45, 10, 34), out=out, max_memory="225KB",
                         interpolation="cubic")
    assert result is out
    whole = gr.resample(x, (1, 1, 1), target_shape=(45, 10, 34), interpolation="cubic")
    assert_same(out[...], whole, "cubic")
    # a Zarr input without out= returns NumPy
    np.testing.assert_array_equal(gr.resample(source, (1, 1, 1), target_shape=(45, 10, 34)),
                                  gr.resample(x, (1, 1, 1), target_shape=(45, 10, 34)))


def test_channels_chunked_into_zarr(tmp_path):
    zarr = pytest.importorskip("zarr")
    x = random_volume((2, 20, 11, 9), "float32", seed=8)
    out = zarr.open_array(tmp_path / "out.zarr", mode="w", shape=(2, 30, 11, 5), chunks=(1, 8, 11, 5), dtype="float32")
    gr.resample(x, (1, 1, 1), target_shape=(30, 11, 5), channel_axis=0, out=out, max_memory="20KB")
    np.testing.assert_array_equal(out[...], gr.resample(x, (1, 1, 1), target_shape=(30, 11, 5), channel_axis=0))


class FlakyBackend(CpuBackend):
    """Runs out of memory on every block with more than ``limit`` output rows."""

    def __init__(self, limit, fail_always=False):
        self.limit, self.fail_always, self.failures = limit, fail_always, 0

    def resample_block(self, source, tables, out):
        if self.fail_always or tables.axes[0].n_out > self.limit:
            self.failures += 1
            raise MemoryError("injected: out of memory")
        super().resample_block(source, tables, out)


def test_oom_retry_resumes_with_smaller_slabs():
    x = random_volume((40, 20, 20), "float32", seed=3)
    whole = gr.resample(x, (1, 1, 1), target_shape=(50, 25, 25))
    job = build_job(x, (1, 1, 1), target_shape=(50, 25, 25), max_memory="2MB")
    assert job.chunking.count == 1
    job = replace(job, backend=FlakyBackend(limit=14))
    with pytest.warns(RuntimeWarning, match="out of memory at output rows 0:50.*replanned"):
        out = job.run()
    np.testing.assert_array_equal(out, whole)
    execution = job.execute()  # the replan is reported; the job still shows its plan
    (used,) = execution.chunkings
    assert job.backend.failures >= 2 and execution.replanned and used.count > 1
    assert all(b - a <= 14 for a, b in used.slabs)
    assert job.chunking.count == 1


def test_oom_gives_up_with_clear_error():
    x = random_volume((20, 10, 10), "float32")
    job = build_job(x, (1, 1, 1), target_shape=(30, 10, 10), max_memory="1MB")
    job = replace(job, backend=FlakyBackend(limit=0, fail_always=True))
    with pytest.raises(MemoryError, match="out of memory on backend 'cpu' after [1-5] retries.*needed about"):
        job.run()


@pytest.mark.parametrize("interpolation", ["nearest", "linear", "cubic", "label"])
@pytest.mark.parametrize("dtype", ["float32", "uint16", "float16"])
def test_reported_peak_covers_real_allocations(interpolation, dtype):
    """tracemalloc sees every buffer the CPU backend allocates (scratch comes from NumPy)."""
    x = random_volume((48, 36, 40), dtype, seed=0)
    if interpolation == "label":
        x = (x.astype(np.float64) % 3).astype(dtype)
    whole_peak = build_job(x, (1, 1, 1), target_shape=(60, 50, 22), interpolation=interpolation).chunking.peak_bytes
    # cubic plans count the prefilter pre-pass's checkpoints: they split less thin
    for budget in (None, int(whole_peak * 0.9) if interpolation == "cubic" else 400_000):
        job = build_job(x, (1, 1, 1), target_shape=(60, 50, 22), interpolation=interpolation, max_memory=budget)
        assert budget is None or interpolation != "cubic" or job.chunking.count > 1
        job = replace(job, out=np.empty(job.output_shape, job.out_dtype))
        job.run()  # compile first; measure the second run
        peak = traced_peak(job.run)
        assert peak <= job.chunking.peak_bytes, (peak, job.chunking.peak_bytes, job.chunking.count)


@pytest.mark.parametrize("loops", ["auto", "array"])
@pytest.mark.parametrize("interpolation", ["linear", "cubic"])
@pytest.mark.parametrize("dtype", ["float32", "uint16", "float16"])
def test_reported_peak_covers_antialiasing(monkeypatch, loops, interpolation, dtype):
    """The smoothing passes' buffers are in the plan too: with the compiled loops and on the array path."""
    from gpuresample.backends import _loops, clear_caches

    monkeypatch.setenv(_loops.LOOPS_VARIABLE, loops)
    clear_caches()
    try:
        x = random_volume((48, 36, 40), dtype, seed=0)
        options = dict(target_shape=(16, 30, 13), interpolation=interpolation, antialias=True)
        whole_peak = build_job(x, (1, 1, 1), **options).chunking.peak_bytes
        for budget in (None, int(whole_peak * 0.9) if interpolation == "cubic" else whole_peak // 3):
            job = build_job(x, (1, 1, 1), max_memory=budget, **options)
            assert budget is None or job.chunking.count > 1
            job = replace(job, out=np.empty(job.output_shape, job.out_dtype))
            job.run()
            peak = traced_peak(job.run)
            assert peak <= job.chunking.peak_bytes, (peak, job.chunking.peak_bytes, job.chunking.count)
    finally:
        monkeypatch.undo()
        clear_caches()


def test_planner_uses_memory_ratio():
    """Downsampling needs more input rows per output row: slabs have fewer output rows."""
    from gpuresample.geometry import Grid
    from gpuresample.tables import build_tables
    g = Grid((200, 64, 64), (1, 1, 1))
    down = build_tables(g, g.with_shape((50, 64, 64)), "linear")
    up = build_tables(g, g.with_shape((400, 64, 64)), "linear")
    budget = 2_000_000
    c_down = plan_slabs(down, "float32", "float32", g.shape, budget, CpuBackend())
    c_up = plan_slabs(up, "float32", "float32", g.shape, budget, CpuBackend())
    rows_down = c_down.slabs[0][1] - c_down.slabs[0][0]
    rows_up = c_up.slabs[0][1] - c_up.slabs[0][0]
    assert rows_up > rows_down
    for c, t in ((c_down, down), (c_up, up)):
        assert c.slabs[0][0] == 0 and c.slabs[-1][1] == t.axes[0].n_out
        assert all(a2 == b1 for (_, b1), (a2, _) in zip(c.slabs, c.slabs[1:]))
        assert max(slab_bytes(t.slab(a, b), "float32", "float32", g.shape, CpuBackend()) for a, b in c.slabs) <= budget


def test_progress_bar(capsys):
    x = random_volume((30, 10, 10), "float32")
    gr.resample(x, (1, 1, 1), target_shape=(40, 10, 10), max_memory="40KB", progress=True)
    err = capsys.readouterr().err
    assert "slab" in err


class HostAsDevice(CpuBackend):
    """A stand-in device backend on the CPU: blocks are copied in and results copied out."""

    on_device = True

    def __init__(self):
        self.copies_in = 0

    def from_host(self, array):
        self.copies_in += 1
        return np.array(array, copy=True)

    def to_host(self, array):
        return np.array(array, copy=True)


@pytest.mark.parametrize("interpolation", ["linear", "cubic", "label"])
def test_staged_slabs_through_a_device_backend(interpolation):
    """The staging path (host data, device backend, results back to the host) equals the whole run."""
    x = random_volume((90, 20, 18), "uint8", seed=12) % 6
    whole = gr.resample(x, (1, 1, 1), target_shape=(130, 11, 27), interpolation=interpolation)
    job = build_job(x, (1, 1, 1), target_shape=(130, 11, 27), interpolation=interpolation)
    device = HostAsDevice()
    staged_peak = plan_slabs(job.tables, x.dtype, x.dtype, x.shape, None, device, staged=True).peak_bytes
    assert staged_peak > job.chunking.peak_bytes  # double buffers are counted
    budget = int(staged_peak * (0.6 if interpolation == "cubic" else 0.34))
    job = replace(job, backend=device, staged=True,
                  chunking=plan_slabs(job.tables, x.dtype, x.dtype, x.shape, budget, device, staged=True))
    out = job.run()
    assert isinstance(out, np.ndarray) and job.backend.copies_in == job.chunking.count > 1
    assert_same(out, whole, interpolation)


#: (input shape, target shape, first pass axis): axis 0 much longer than the prefilter's
#: reach (|z|^d falls below float64 rounding after ~28 rows, the edge pad is 12), so
#: slabs cut the recursion; the pass order starts with axis 0 in one case and not in the other.
CUT_CASES = [((120, 16, 14), (150, 9, 10), 1), ((150, 12, 10), (45, 16, 15), 0)]


@pytest.mark.parametrize("interpolation,antialias", [("nearest", False), ("linear", False), ("cubic", False),
                                                     ("label", False), ("linear", True), ("cubic", True)])
@pytest.mark.parametrize("shape,target,first_axis", CUT_CASES)
def test_slabs_cutting_the_prefilter_equal_whole(shape, target, first_axis, interpolation, antialias):
    """Several max_memory values, each giving several slabs: every result equals the whole run bit for bit.

    Before slabs started the prefilter from the whole line's states, cubic differed from the
    whole run (by up to ~1e-7 relative) in many voxels here.
    """
    dtype = "uint8" if interpolation == "label" else "float32"
    x = random_volume(shape, dtype, seed=len(shape) + shape[0])
    if interpolation == "label":
        x = x % 5
    options = dict(target_shape=target, interpolation=interpolation, antialias=antialias)
    whole_job = build_job(x, (1, 1, 1), **options)
    assert whole_job.tables.order[0] == first_axis and whole_job.chunking.count == 1
    whole = gr.resample(x, (1, 1, 1), **options)
    counts = set()
    for fraction in (0.9, 0.75, 0.6, 0.45, 0.3):
        try:
            job = build_job(x, (1, 1, 1), max_memory=int(whole_job.chunking.peak_bytes * fraction), **options)
        except MemoryError:  # cubic plans count the pre-pass's checkpoints
            continue
        counts.add(job.chunking.count)
        if interpolation == "cubic":
            tables = [job.tables.slab(a, b) for a, b in job.chunking.slabs]
            assert all(t.axes[0].is_cut for t in tables)  # no slab reads the whole line
        assert_same(job.run(), whole, interpolation)
    assert min(counts) >= 2 and len(counts) >= 2


def test_cubic_slab_states_are_the_whole_lines():
    """The pre-pass states equal the whole-line recursion's values at the slab edges, as
    SciPy's own prefilter (the reference for cubic) computes them, to float64 rounding."""
    from scipy import ndimage

    from gpuresample.geometry import Grid
    from gpuresample.backends._spline_states import states_for_slabs
    from gpuresample.tables import build_tables

    x = random_volume((80, 5, 6), "float64", seed=3)
    grid = Grid(x.shape, (1, 1, 1))
    tables = build_tables(grid, grid.with_shape((97, 5, 6)), "cubic")
    slabs = [tables.slab(a, b) for a, b in ((0, 30), (30, 31), (31, 97))]
    with_states = states_for_slabs(tables, slabs, x, threads=1)
    padded = np.pad(x, ((12, 12), (0, 0), (0, 0)), mode="edge")
    coefficients = ndimage.spline_filter1d(padded, 3, axis=0, mode="mirror")
    for slab in with_states:
        table = slab.axes[0]
        first, stop = table.kept_window()
        assert table.is_cut and table.whole_line == 80 + 24
        causal, anticausal = table.states
        assert causal.shape == anticausal.shape == (5, 6)
        # the anti-causal value at the last kept row is the coefficient there
        np.testing.assert_allclose(anticausal, coefficients[stop - 1], rtol=1e-12, atol=1e-12)


def test_cut_tables_refuse_to_run_without_states():
    from gpuresample.geometry import Grid
    from gpuresample.tables import build_tables

    x = random_volume((60, 4, 5), "float32", seed=1)
    grid = Grid(x.shape, (1, 1, 1))
    slab = build_tables(grid, grid.with_shape((70, 4, 5)), "cubic").slab(20, 40)
    first, stop = slab.input_rows
    with pytest.raises(ValueError, match="carry no prefilter states"):
        CpuBackend().resample_block(x[first:stop], slab, np.empty(slab.output_shape, np.float32))


def test_staged_slabs_keep_pinned_host_buffers_within_the_limit(monkeypatch):
    """Staged runs hold at most max(HOST_STAGING_MIN_BYTES, 5% of input + output) of pinned host memory,
    whatever the device budget (none here): the plan splits to stay within it."""
    from gpuresample import planner
    from gpuresample.geometry import Grid
    from gpuresample.tables import build_tables

    grid = Grid((80, 30, 30), (1, 1, 1))
    tables = build_tables(grid, grid.with_shape((120, 40, 40)), "linear")
    whole = planner.pinned_bytes(tables, "float32", "float32", grid.shape)
    monkeypatch.setattr(planner, "HOST_STAGING_MIN_BYTES", whole // 5)
    limit = planner.host_staging_limit(grid.size * 4, 120 * 40 * 40 * 4)
    assert limit == whole // 5
    plan = plan_slabs(tables, "float32", "float32", grid.shape, None, CpuBackend(), staged=True)
    assert plan.count >= 5
    assert max(planner.pinned_bytes(tables.slab(a, b), "float32", "float32", grid.shape)
               for a, b in plan.slabs) <= limit
    assert plan_slabs(tables, "float32", "float32", grid.shape, None, CpuBackend()).count == 1  # not staged: no limit
