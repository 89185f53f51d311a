"""Chunked equals whole bit for bit on the GPU backends, run on the CPU through stand-ins.

The fake ``cupy``/``cupyx`` of ``test_benchmarks.py`` (device arrays are NumPy arrays with
CuPy's module name; ``RawModule`` launches run ``kernels/*.cu`` compiled as C++ by g++;
``cupyx.scipy.ndimage`` is SciPy's) carry ``gr.resample`` through the real
``KernelsBackend`` and ``CupyxBackend`` glue, the executor, the cubic pre-pass and the
staged pipeline. Sizes make slabs cut the cubic prefilter's reach (axis 0 far longer
than the 12-row edge pad and the ~28 rows over which |z|^d reaches float64 rounding).
What this cannot show: real CUDA behaviour (streams, NVRTC, cupyx's own Gaussian, which
differs from SciPy's by rounding) and speed.
"""

from __future__ import annotations

import numpy as np
import pytest

import gpuresample as gr
from helpers import random_volume
from gpuresample.backends.cuda import kernel_names
from gpuresample.job import build_job
from harness.device import build, compiler
from test_benchmarks import Stream, stand_ins  # noqa: F401 (stand_ins: the fixture, on this module's harness_library)

pytestmark = pytest.mark.skipif(compiler() is None, reason="no C++ compiler (g++ or $CXX) to build the kernels as C++")

SHAPE, TARGET = (110, 12, 10), (140, 9, 13)
CASES = [("nearest", False), ("linear", False), ("cubic", False), ("label", False), ("linear", True),
         ("cubic", True)]


@pytest.fixture(scope="module")
def harness_library(tmp_path_factory):
    names = []
    for dtype in ("float32", "uint8"):
        for interpolation in ("nearest", "linear", "cubic", "label"):
            names += [n for n in kernel_names(dtype, dtype, interpolation) if n not in names]
    return build(names, tmp_path_factory.mktemp("chunked_harness"))




def budgets(x, options, fractions, **extra):
    """``max_memory`` values between one output row's peak and the unsplit peak.

    (The cupyx label path's fixed scratch is most of either, so fractions of the unsplit
    peak alone would not split it.)"""
    from gpuresample.planner import slab_bytes

    job = build_job(x, (1, 1, 1), **options, **extra)
    one_row = slab_bytes(job.tables.slab(0, 1), job.in_dtype, job.out_dtype, job.source.shape, job.backend,
                         job.staged)
    whole = job.chunking.peak_bytes
    return [int(one_row + f * (whole - one_row)) for f in fractions]


def volume(interpolation):
    x = random_volume(SHAPE, "uint8" if interpolation == "label" else "float32", seed=31)
    return x % 5 if interpolation == "label" else x


@pytest.mark.parametrize("backend", ["kernels", "cupyx"])
@pytest.mark.parametrize("interpolation,antialias", CASES)
def test_device_data_chunked_equals_whole(stand_ins, backend, interpolation, antialias):
    """CuPy in, CuPy out: slabs on the device (the pre-pass on the device, or, with
    anti-aliasing, over smoothed rows read back)."""
    x = stand_ins.asarray(volume(interpolation))
    options = dict(target_shape=TARGET, interpolation=interpolation, antialias=antialias, backend=backend)
    whole = gr.resample(x, (1, 1, 1), **options)
    for budget in budgets(x, options, (0.5, 0.2)):
        job = build_job(x, (1, 1, 1), max_memory=budget, **options)
        assert job.chunking.count >= 2 and job.backend.name == backend
        chunked = gr.resample(x, (1, 1, 1), max_memory=budget, **options)
        assert np.array_equal(chunked.get(), whole.get()), f"{np.count_nonzero(chunked.get() != whole.get())} differ"


@pytest.mark.parametrize("backend", ["kernels", "cupyx"])
@pytest.mark.parametrize("interpolation,antialias", CASES)
def test_staged_chunked_equals_whole(stand_ins, backend, interpolation, antialias):
    """NumPy in and out through the device (``device="cuda"``): the staged pipeline, slab by slab."""
    x = volume(interpolation)
    options = dict(target_shape=TARGET, interpolation=interpolation, antialias=antialias, backend=backend)
    whole = gr.resample(stand_ins.asarray(x), (1, 1, 1), **options).get()  # unchunked, on the device
    [budget] = budgets(x, options, (0.4,), device="cuda")
    job = build_job(x, (1, 1, 1), device="cuda", max_memory=budget, **options)
    assert job.staged and job.chunking.count >= 2
    chunked = gr.resample(x, (1, 1, 1), device="cuda", max_memory=budget, **options)
    assert type(chunked) is np.ndarray and Stream.created > 0
    assert np.array_equal(chunked, whole), f"{np.count_nonzero(chunked != whole)} values differ"


@pytest.mark.parametrize("backend", ["kernels", "cupyx"])
def test_device_data_states_come_from_the_device(stand_ins, monkeypatch, backend):
    """Cubic slabs of device data without anti-aliasing: the pre-pass runs on the device
    (``_array``'s recursion on CuPy), never reading rows back; with anti-aliasing it reads smoothed
    rows to the host (the compiled loops there, or ``_array``'s recursion on NumPy on the array path)."""
    from gpuresample.backends import _array, _loops

    calls = []
    real = _array.prepass_initial_sum

    def spy(xp, source, *args):
        calls.append(type(source).__module__)
        return real(xp, source, *args)

    monkeypatch.setattr(_array, "prepass_initial_sum", spy)
    x = stand_ins.asarray(volume("cubic"))
    for antialias, expected in ((False, {"cupy"}), (True, set() if _loops.is_compiled() else {"numpy"})):
        calls.clear()
        options = dict(target_shape=TARGET, interpolation="cubic", antialias=antialias, backend=backend)
        [budget] = budgets(x, options, (0.3,))
        chunked = gr.resample(x, (1, 1, 1), max_memory=budget, **options)
        assert set(calls) == expected  # the source rows it summed were device arrays
        assert np.array_equal(chunked.get(), gr.resample(x, (1, 1, 1), **options).get())
