"""Cubic plans hold the pre-pass's checkpoints and one slab's states, not two states per slab:
small budgets run, bit for bit as the whole run, and a budget too small names the least one."""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import replace

import numpy as np
import pytest
from helpers import random_volume, traced_peak

import gpuresample as gr
from gpuresample.backends import _loops, _spline_states
from gpuresample.job import build_job
from gpuresample.planner import slab_bytes
from gpuresample.spline_states import (
    STATE_ITEMSIZE,
    checkpoint_planes,
    prepass_bytes,
    segment_rows,
)

MNI = (197, 233, 189)


def least_budget(x, interpolation, **target) -> int:
    """The budget the MemoryError of a budget of 1000 bytes names."""
    with pytest.raises(MemoryError, match="even one output row") as caught:
        build_job(x, (1, 1, 1), interpolation=interpolation, backend="cpu", max_memory=1000, **target)
    return int(re.search(r"needs at least .* \((\d+) bytes\)", str(caught.value)).group(1))


@pytest.mark.parametrize("shape,target,budget", [
    ((128, 128, 128), {"target_shape": (192, 192, 192)}, "8MB"),
    (MNI, {"target_spacing": (0.8, 0.8, 0.8)}, "16MB"),
    (MNI, {"target_spacing": (0.8, 0.8, 0.8)}, "6MB"),
])
def test_small_budgets_run_cubic_bit_for_bit(shape, target, budget):
    """These budgets once asked for 52.6 MiB and 178.9 MiB (two states per slab); now they run."""
    x = random_volume(shape, "float32", seed=1)
    whole = gr.resample(x, (1, 1, 1), interpolation="cubic", backend="cpu", **target)
    job = build_job(x, (1, 1, 1), interpolation="cubic", backend="cpu", max_memory=budget, **target)
    assert job.chunking.count > 1
    assert job.chunking.peak_bytes <= job.chunking.budget
    execution = job.execute()
    assert not execution.replanned
    assert execution.result.tobytes() == whole.tobytes()


def test_the_least_budget_named_runs_and_one_byte_less_does_not():
    x = random_volume((60, 40, 50), "float32", seed=2)
    target = {"target_shape": (90, 60, 70)}
    least = least_budget(x, "cubic", **target)
    job = build_job(x, (1, 1, 1), interpolation="cubic", backend="cpu", max_memory=least, **target)
    assert job.chunking.peak_bytes <= least
    assert job.execute().result.tobytes() == gr.resample(x, (1, 1, 1), interpolation="cubic", **target).tobytes()
    with pytest.raises(MemoryError, match=f"needs at least .*{least} bytes"):
        build_job(x, (1, 1, 1), interpolation="cubic", backend="cpu", max_memory=least - 1, **target)


def test_cubic_floor_does_not_grow_with_the_slabs():
    """The least cubic budget is the linear one plus a one-row cubic slab's scratch and the
    pre-pass's checkpoints (a few planes), the same however many one-row slabs there are."""
    shape = (128, 128, 128)
    x = np.zeros(shape, np.float32)
    target = {"target_shape": (192, 192, 192)}
    plane = math.prod(shape[1:]) * STATE_ITEMSIZE
    cubic = least_budget(x, "cubic", **target)
    assert cubic < least_budget(x, "linear", **target) + 16 * plane
    job = build_job(x, (1, 1, 1), interpolation="cubic", backend="cpu", **target)
    one_row = max(slab_bytes(job.tables.slab(a, a + 1), job.in_dtype, job.out_dtype, shape, job.backend)
                  for a in range(job.output_shape[0]))
    held, _ = prepass_bytes(job.tables, job.in_dtype, shape, job.backend.threads(), in_place=True)
    assert held <= 5 * plane  # the checkpoints, not 2 x 192 slabs' states
    assert cubic <= max(one_row + held + 2 * plane, prepass_bytes(job.tables, job.in_dtype, shape,
                                                                 job.backend.threads(), in_place=True)[1])


@pytest.mark.parametrize("dtype,antialias", [("float32", False), ("float16", False), ("float32", True)])
def test_real_allocations_stay_within_the_least_budget(dtype, antialias):
    """tracemalloc sees the pre-pass and every slab at the least budget (many one-row slabs)."""
    x = random_volume((70, 30, 40), dtype, seed=4)
    target = {"target_shape": (40, 50, 45) if antialias else (105, 45, 60)}
    with pytest.raises(MemoryError) as caught:
        build_job(x, (1, 1, 1), interpolation="cubic", antialias=antialias, backend="cpu", max_memory=1000, **target)
    least = int(re.search(r"\((\d+) bytes\)", str(caught.value)).group(1))
    job = build_job(x, (1, 1, 1), interpolation="cubic", antialias=antialias, backend="cpu", max_memory=least,
                    **target)
    assert job.chunking.count > 10
    job = replace(job, out=np.empty(job.output_shape, job.out_dtype))
    job.execute()  # compile first; measure the second run
    peak = traced_peak(job.execute)
    assert peak <= job.chunking.peak_bytes <= least, (peak, job.chunking.peak_bytes, job.chunking.count)
    whole = gr.resample(x, (1, 1, 1), interpolation="cubic", antialias=antialias, **target)
    assert job.out.tobytes() == whole.tobytes()


def test_states_are_made_when_each_slab_runs(monkeypatch):
    """One pre-pass per channel, then one states computation per cut slab, in slab order, each
    just before its slab runs (never all of them first)."""
    x = random_volume((50, 20, 24), "float32", seed=5)
    job = build_job(x, (1, 1, 1), target_shape=(75, 30, 36), interpolation="cubic", backend="cpu", max_memory=200_000)
    assert job.chunking.count > 3
    events = []
    real_states, real_init = _spline_states.Checkpoints.states, _spline_states.Checkpoints.__init__
    monkeypatch.setattr(_spline_states.Checkpoints, "__init__",
                        lambda self, *a, **k: (events.append("build"), real_init(self, *a, **k))[1])
    monkeypatch.setattr(_spline_states.Checkpoints, "states",
                        lambda self, first, stop: (events.append(("states", first)), real_states(self, first, stop))[1])
    from gpuresample.backends.cpu import CpuBackend
    real_block = CpuBackend.resample_block
    monkeypatch.setattr(CpuBackend, "resample_block",
                        lambda self, block, tables, out: (events.append("slab"), real_block(self, block, tables, out))[1])
    job.execute()
    assert events[0] == "build" and events.count("build") == 1
    assert events.count("slab") == job.chunking.count
    kinds = ["states" if isinstance(e, tuple) else e for e in events[1:]]
    assert all(a != "states" or b == "slab" for a, b in itertools.pairwise(kinds))  # each states, then its slab
    firsts = [e[1] for e in events if isinstance(e, tuple)]
    assert firsts == sorted(firsts)


@pytest.mark.parametrize("n,rows", [(128, 16), (197, 64), (13, 37), (1, 1), (76, 7), (40, 1)])
def test_checkpoint_states_equal_one_pass_for_any_segments(n, rows):
    """Whatever the segment length, every window's states are one pass's (the old pre-pass
    kept them while passing; the checkpoints give them back in any order)."""
    if not _loops.is_compiled():
        pytest.skip("the compiled CPU loops do not run here")
    from gpuresample.geometry import Grid
    from gpuresample.tables import build_tables

    grid = Grid((n, 3, 5), (1, 1, 1))
    table = build_tables(grid, grid.with_shape((n + 7, 3, 5)), "cubic").axes[0]
    x = random_volume((n, 3, 5), "float64", seed=6).reshape(n, 15)
    length = table.extended_length
    windows = [(a, b) for a in range(0, length, max(1, length // 9)) for b in (a + 1, min(length, a + 5), length)]
    windows = [w for w in windows if w[0] < w[1]]
    reference = _spline_states.boundary_states(None, table, windows, 15, 2, x, rows_per_segment=length)
    checkpointed = _spline_states.boundary_states(None, table, windows[::-1], 15, 2, x, rows_per_segment=rows)
    for a, b in zip(reference, checkpointed):
        assert a.tobytes() == b[::-1].tobytes()


def test_segment_rows_keep_few_checkpoints():
    assert checkpoint_planes(221, segment_rows(221, 233 * 189, 2, 0)) <= 5
    assert checkpoint_planes(152, 152) == 1


def test_the_planner_asks_every_backend_for_its_plan_wide_memory():
    """No backend is special-cased: what ``prepass_bytes`` answers is in every chunked plan's peak,
    a device backend's included (its pre-pass on data already on the device)."""
    from gpuresample.backends.base import Backend
    from gpuresample.geometry import Grid
    from gpuresample.planner import plan_slabs
    from gpuresample.tables import build_tables

    class Answering(Backend):
        on_device = True

        def __init__(self):
            self.asked = []

        def prepass_bytes(self, tables, in_dtype, input_shape, staged=False, rows_in_place=False):
            self.asked.append((staged, rows_in_place))
            return 10_000, 25_000

    grid = Grid((40, 20, 20), (1, 1, 1))
    tables = build_tables(grid, grid.with_shape((60, 20, 20)), "cubic")
    backend = Answering()
    whole = plan_slabs(tables, "float32", "float32", grid.shape, None, backend)
    assert whole.count == 1 and not backend.asked  # one whole slab: no pre-pass
    plan = plan_slabs(tables, "float32", "float32", grid.shape, whole.peak_bytes // 2, backend, rows_in_place=True)
    assert plan.count > 1 and (False, True) in backend.asked
    one = max(slab_bytes(tables.slab(a, b), "float32", "float32", grid.shape, backend) for a, b in plan.slabs)
    assert plan.peak_bytes == max(one + 10_000, 25_000)


def test_array_path_prepass_stays_within_its_count(monkeypatch):
    """The CPU without its compiled loops runs the pre-pass as whole NumPy arrays; the plan
    counts that model (tracemalloc sees every buffer)."""
    from gpuresample.backends import clear_caches

    monkeypatch.setenv(_loops.LOOPS_VARIABLE, "array")
    clear_caches()
    try:
        x = random_volume((70, 30, 40), "float32", seed=7)
        target = {"target_shape": (105, 45, 60)}
        whole = gr.resample(x, (1, 1, 1), interpolation="cubic", **target)
        least = least_budget(x, "cubic", **target)
        job = build_job(x, (1, 1, 1), interpolation="cubic", backend="cpu", max_memory=least, **target)
        assert job.chunking.count > 10
        job = replace(job, out=np.empty(job.output_shape, job.out_dtype))
        peak = traced_peak(job.execute)
        assert peak <= job.chunking.peak_bytes, (peak, job.chunking.peak_bytes)
        assert job.out.tobytes() == whole.tobytes()
    finally:
        monkeypatch.undo()
        clear_caches()
