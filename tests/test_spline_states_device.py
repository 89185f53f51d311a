"""The cubic pre-pass as whole-array operations (``array_loops``: ``_array``'s recursion, what
runs on a device and on the CPU's array path) gives the compiled loops' states bit for bit:
every operation separate, in the loops' order."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import random_volume

from gpuresample.backends import _loops
from gpuresample.backends._spline_states import array_loops, boundary_states
from gpuresample.job import build_job
from gpuresample.spline_states import slab_needs_states


def cut_windows(x, target_shape, fraction):
    job = build_job(x, (1, 1, 1), target_shape=target_shape, interpolation="cubic")
    budget = int(job.chunking.peak_bytes * fraction)
    job = build_job(x, (1, 1, 1), target_shape=target_shape, interpolation="cubic", max_memory=budget)
    slabs = [job.tables.slab(a, b) for a, b in job.chunking.slabs]
    windows = [t.axes[0].kept_window() for t in slabs if slab_needs_states(t)]
    assert windows, "no slab cuts the prefilter"
    return job.tables.axes[0], windows


@pytest.mark.parametrize("dtype", ["float32", "uint8", "int16", "float64"])
@pytest.mark.parametrize("shape,target,fraction", [((90, 9, 7), (140, 8, 6), 0.7), ((200, 5, 4), (70, 5, 4), 0.6),
                                                   ((61, 3, 17), (61, 4, 9), 0.8)])
def test_array_loops_give_the_cpu_states(dtype, shape, target, fraction):
    if not _loops.is_compiled():
        pytest.skip("the compiled CPU loops do not run here: nothing to compare with")
    x = random_volume(shape, dtype, seed=3)
    table, windows = cut_windows(x, target, fraction)
    elements = math.prod(shape[1:])
    flat = x.reshape(shape[0], elements)
    cpu = boundary_states(None, table, windows, elements, 2, flat)
    array = boundary_states(None, table, windows, elements, 1, flat, loops=array_loops(np))
    for a, b in zip(cpu, array):
        assert a.dtype == b.dtype == np.float64 and a.tobytes() == b.tobytes()
