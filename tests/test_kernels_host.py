"""The kernels backend's host path per call, on the stand-in CuPy of ``test_benchmarks``.

A repeated call with the same geometry must not touch the file system, rebuild or upload
its tables again, or ask the device for its free memory when the job obviously fits
(issue 9: a small call's cost was almost all host work). The kernels run in the g++
harness, so results are still checked against the CPU backend. Nothing here is timed.
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np
import pytest

import gpuresample as gr
from gpuresample import job as job_module
from gpuresample.backends import cuda as kernels
from gpuresample.tables import cached_tables
from harness.device import HarnessDevice, build, compiler
from test_benchmarks import fake_cupy, fake_cupyx, on_device

pytestmark = pytest.mark.skipif(compiler() is None, reason="no C++ compiler (g++ or $CXX) to build the kernels as C++")

SHAPE, TARGET = (9, 10, 11), (13, 12, 16)


@pytest.fixture(scope="module")
def harness_library(tmp_path_factory):
    names = list(kernels.kernel_names("float32", "float32", "linear"))
    return build(names, tmp_path_factory.mktemp("host_harness"))


@pytest.fixture
def cupy(harness_library, monkeypatch):
    """The stand-in ``cupy`` in ``sys.modules``, counting pinned allocations and memGetInfo calls."""
    cp = fake_cupy(HarnessDevice(harness_library))
    cp.counts = {"pinned": 0, "memGetInfo": 0}
    real_mem_get_info = cp.cuda.runtime.memGetInfo

    def alloc_pinned_memory(nbytes):
        cp.counts["pinned"] += 1
        return bytearray(nbytes)

    def mem_get_info():
        cp.counts["memGetInfo"] += 1
        return real_mem_get_info()

    cp.cuda.alloc_pinned_memory = alloc_pinned_memory
    cp.cuda.runtime.memGetInfo = mem_get_info
    cupyx, cupyx_scipy, ndimage = fake_cupyx()
    for name, module in [("cupy", cp), ("cupyx", cupyx), ("cupyx.scipy", cupyx_scipy),
                         ("cupyx.scipy.ndimage", ndimage)]:
        monkeypatch.setitem(sys.modules, name, module)
    kernels.clear_caches()
    cached_tables.cache_clear()
    yield cp
    kernels.clear_caches()


def volume(seed=0):
    return np.random.default_rng(seed).random(SHAPE, dtype=np.float32)


def resample(data):
    return gr.resample(on_device(data), (1.0, 1.0, 1.0), target_shape=TARGET, backend="kernels")


def test_repeated_calls_reuse_tables_and_read_no_files(cupy, monkeypatch):
    first = resample(volume(0))
    assert cupy.counts["pinned"] == 1  # one packed, pinned upload of the tables

    def no_file_access(*args, **kwargs):
        raise AssertionError("file-system access in a repeated call")

    data = volume(1)
    with monkeypatch.context() as patched:
        for name in ("is_file", "read_text", "stat", "resolve"):
            patched.setattr(pathlib.Path, name, no_file_access)
        second = resample(data)
    assert cupy.counts["pinned"] == 1  # the tables stayed on the device
    expected = gr.resample(data, (1.0, 1.0, 1.0), target_shape=TARGET, backend="cpu")
    np.testing.assert_array_equal(second.view(np.ndarray), expected)
    assert not np.array_equal(first.view(np.ndarray), second.view(np.ndarray))


def test_clear_caches_forgets_device_tables(cupy):
    resample(volume())
    resample(volume())
    assert cupy.counts["pinned"] == 1
    kernels.clear_caches()
    resample(volume())
    assert cupy.counts["pinned"] == 2


def test_other_geometry_uploads_its_own_tables(cupy):
    resample(volume())
    resample(volume())
    gr.resample(on_device(volume()), (1.0, 1.0, 1.0), target_shape=(7, 12, 16), backend="kernels")
    assert cupy.counts["pinned"] == 2


def test_small_jobs_do_not_query_free_memory(cupy, monkeypatch):
    resample(volume())
    assert cupy.counts["memGetInfo"] == 0
    monkeypatch.setattr(job_module, "SMALL_DEVICE_JOB_BYTES", 1000)
    resample(volume())
    assert cupy.counts["memGetInfo"] == 1


def test_tables_are_built_once_per_geometry(cupy):
    job_a = job_module.build_job(on_device(volume()), (1.0, 1.0, 1.0), target_shape=TARGET, backend="kernels")
    job_b = job_module.build_job(on_device(volume()), (1.0, 1.0, 1.0), target_shape=TARGET, backend="kernels")
    assert job_a.tables is job_b.tables
    assert not job_a.tables.axes[0].weight.flags.writeable
    job_c = job_module.build_job(on_device(volume()), [1.0, 1.0, 1.0], target_shape=[13, 12, 16], backend="kernels")
    assert job_c.tables is job_a.tables  # lists are not cached as grids, but give equal grids
