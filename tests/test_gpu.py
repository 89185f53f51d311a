"""GPU backends: dispatch and availability (run everywhere), parity with the CPU (on a GPU).

Tests marked ``gpu`` need CuPy and a CUDA device and skip with the reason otherwise. The
rest run on any machine: what the GPU backends report without CuPy, the dispatch rule,
and the ``cupyx`` backend's arithmetic run with NumPy and SciPy standing in for CuPy and
``cupyx.scipy.ndimage`` (the kernels' arithmetic is checked on the CPU by
``test_kernels_harness.py``).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import scipy.ndimage as ndi
from helpers import ALL_DTYPES, random_volume

import gpuresample as gr
from gpuresample import backends
from gpuresample.backends import choose_backend, cuda as kernels
from gpuresample.backends.cpu import CpuBackend
from gpuresample.backends._array import array_scratch_bytes, resample_with
from gpuresample.job import build_job
from gpuresample.planner import plan_slabs
from gpuresample.tables import build_tables

INTERPOLATIONS = ["nearest", "linear", "cubic", "label"]
GPU_BACKENDS = ["kernels", "cupyx"]
#: docs/design.md §2: float linear/cubic agree within 1e-6 relative; everything else exactly.
FLOAT_RTOL = 1e-6
#: The cupyx backend's cubic prefilter (cupyx/SciPy spline_filter1d) differs from the CPU
#: loops' only by float64 rounding.
CUBIC_FLOAT64_RTOL = 1e-12
SHAPE, TARGET = (21, 18, 25), (30, 13, 37)


def label_volume(shape, dtype, seed=0) -> np.ndarray:
    codes = np.random.default_rng(seed).integers(0, 5, size=shape)
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return codes > 2
    return (codes * 1.5 - 2.0).astype(dtype) if dtype.kind == "f" else codes.astype(dtype)


def volume_for(interpolation, dtype, shape=SHAPE, seed=0):
    return (label_volume if interpolation == "label" else random_volume)(shape, dtype, seed=seed)


def assert_parity(result, expected, interpolation, rtol=FLOAT_RTOL):
    """Exact for nearest, label and integer outputs; ``rtol`` of the range for float linear/cubic."""
    assert result.dtype == expected.dtype and result.shape == expected.shape
    if interpolation in ("linear", "cubic") and expected.dtype.kind == "f":
        scale = float(np.nanmax(np.abs(expected.astype(np.float64)))) or 1.0
        np.testing.assert_allclose(result.astype(np.float64), expected.astype(np.float64), rtol=rtol,
                                   atol=rtol * scale)
    else:
        np.testing.assert_array_equal(result, expected)


# ---------------------------------------------------------------------------------------
# Everywhere: availability, dispatch, import cost, the cupyx arithmetic on NumPy
# ---------------------------------------------------------------------------------------

def test_gpu_backend_modules_import_without_cupy():
    script = ("import sys, gpuresample, gpuresample.backends.cuda, gpuresample.backends.cupyx; "
              "gpuresample.available_backends(); print('cupy' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    has_cupy = subprocess.run([sys.executable, "-c", "import cupy"], capture_output=True).returncode == 0
    if not has_cupy:
        assert done.stdout.strip() == "False"


def test_available_backends_give_reasons():
    reasons = gr.available_backends()
    assert set(reasons) == {"kernels", "cupyx", "cpu"} and reasons["cpu"] is None
    for name in GPU_BACKENDS:
        assert reasons[name] is None or (isinstance(reasons[name], str) and reasons[name])
    try:
        import cupy  # noqa: F401
    except ImportError:
        assert "CuPy is not installed" in reasons["kernels"] and "CuPy is not installed" in reasons["cupyx"]


@pytest.mark.parametrize("name", GPU_BACKENDS)
def test_named_gpu_backend_says_why_it_cannot_run(name):
    reason = gr.available_backends()[name]
    if reason is None:
        pytest.skip(f"backend {name!r} runs here")
    x = random_volume((4, 5, 6), "float32")
    with pytest.raises(gr.BackendUnavailable) as info:
        gr.resample(x, (1, 1, 1), target_shape=(3, 3, 3), backend=name)
    assert f"backend={name!r} cannot run here" in str(info.value) and reason in str(info.value)


def test_missing_kernel_sources_are_the_reason(monkeypatch):
    import gpuresample._cupy

    monkeypatch.setattr(gpuresample._cupy, "import_cupy", lambda: object())  # as if CuPy and a GPU were there
    monkeypatch.setattr(kernels.compile, "kernel_source_dir", lambda: None)
    assert "kernel sources not found" in kernels.KernelsBackend().unavailable_reason()


def test_kernel_sources_are_found_and_inlined():
    directory = kernels.kernel_source_dir()
    assert directory is not None
    text = kernels.module_source(directory)
    assert '#include "gpuresample.cuh"' not in text
    for name in kernels.compile.KERNEL_FILES:
        assert f'#line 1 "{name}"' in text
    assert text.count("#ifndef GPURESAMPLE_CUH") == 1


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_one_module_per_dtype_and_interpolation(interpolation):
    """Names depend on dtypes and interpolation only (never on shapes), one per dtype pair."""
    for dtype in ALL_DTYPES:
        names = kernels.kernel_names(dtype, dtype, interpolation)
        assert names and len(set(names)) == len(names)
        assert all("<" in n or n in kernels.compile.EXTERN_C_NAMES for n in names)
    with pytest.raises(TypeError, match="complex128"):
        kernels.compile.c_type("complex128")


def _fake_reasons(monkeypatch, reasons):
    monkeypatch.setattr(backends, "unavailable_reason", lambda name: reasons.get(name))


def test_auto_prefers_kernels_then_cupyx_on_the_gpu(monkeypatch):
    _fake_reasons(monkeypatch, {"kernels": None, "cupyx": None})
    assert choose_backend("auto", on_gpu=True, interpolation=gr.Interpolation.CUBIC).name == "kernels"
    _fake_reasons(monkeypatch, {"kernels": "CUDA kernel sources not found", "cupyx": None})
    assert choose_backend("auto", on_gpu=True, interpolation=gr.Interpolation.LINEAR).name == "cupyx"
    _fake_reasons(monkeypatch, {"kernels": "no CuPy", "cupyx": "no CuPy either"})
    with pytest.raises(gr.BackendUnavailable, match="kernels: no CuPy; cupyx: no CuPy either"):
        choose_backend("auto", on_gpu=True)


def test_auto_keeps_host_data_on_the_cpu():
    assert choose_backend("auto", on_gpu=False).name == "cpu"


def test_device_cuda_without_a_gpu_says_why():
    if gr.available_backends()["kernels"] is None:
        pytest.skip("a GPU is available here")
    with pytest.raises(gr.BackendUnavailable, match="CuPy|CUDA"):
        gr.resample(random_volume((4, 5, 6), "uint8"), (1, 1, 1), target_shape=(3, 3, 3), device="cuda")


#: Anti-aliasing applies to linear and cubic only.
WITH_ANTIALIAS = [(i, False) for i in INTERPOLATIONS] + [("linear", True), ("cubic", True)]


@pytest.mark.parametrize("dtype", ["float32", "float16", "float64", "uint8", "int16", "uint32", "bool"])
@pytest.mark.parametrize("interpolation,antialias", WITH_ANTIALIAS)
def test_cupyx_arithmetic_matches_cpu_with_numpy(interpolation, dtype, antialias):
    """The cupyx backend's code, with NumPy/SciPy in place of CuPy/cupyx, against the CPU backend."""
    x = volume_for(interpolation, dtype, seed=2)
    source = gr.Grid(SHAPE, (1.0, 1.0, 1.0))
    target = (11, 23, 9) if antialias else TARGET
    tables = build_tables(source, source.with_shape(target), interpolation, antialias=antialias)
    expected = np.empty(tables.output_shape, x.dtype)
    CpuBackend().resample_block(x, tables, expected)
    result = np.empty(tables.output_shape, x.dtype)
    resample_with(np, ndi, x, tables, result)
    if interpolation == "cubic" and np.dtype(dtype) == np.float64:
        assert_parity(result, expected, interpolation, rtol=CUBIC_FLOAT64_RTOL)
    else:
        np.testing.assert_array_equal(result, expected)


def test_cupyx_arithmetic_2d_and_slab_with_numpy():
    from gpuresample.backends._spline_states import states_for_slabs

    x = random_volume((40, 23), "float32", seed=3)
    source = gr.Grid(x.shape, (1.0, 1.0))
    for interpolation in INTERPOLATIONS:
        whole = build_tables(source, source.with_shape((57, 15)), interpolation)
        [tables] = states_for_slabs(whole, [whole.slab(11, 30)], x, threads=1)
        first, stop = tables.input_rows
        expected = np.empty(tables.output_shape, x.dtype)
        CpuBackend().resample_block(x[first:stop], tables, expected)
        result = np.empty(tables.output_shape, x.dtype)
        resample_with(np, ndi, x[first:stop], tables, result)
        np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_cupyx_backend_glue_with_numpy_standing_in(interpolation, monkeypatch):
    """CupyxBackend itself, with NumPy as "CuPy" and scipy.ndimage as cupyx's ndimage."""
    import gpuresample._cupy
    from gpuresample.backends import cupyx

    monkeypatch.setattr(gpuresample._cupy, "import_cupy", lambda: np)
    monkeypatch.setattr(cupyx.backend, "_ndimage", lambda: ndi)
    backend = cupyx.CupyxBackend()
    assert backend.unavailable_reason() is None or "cupyx.scipy.ndimage" in backend.unavailable_reason()
    x = volume_for(interpolation, "uint16", shape=(14, 31), seed=12)
    source = gr.Grid(x.shape, (1.0, 1.0))
    tables = build_tables(source, source.with_shape((29, 10)), interpolation)
    result = backend.empty(tables.output_shape, np.float32)  # another output dtype
    backend.resample_block(x, tables, result)
    expected = np.empty(tables.output_shape, np.float32)
    CpuBackend().resample_block(x, tables, expected)
    np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_gpu_scratch_is_reported(interpolation):
    source = gr.Grid(SHAPE, (1.0, 1.0, 1.0))
    tables = build_tables(source, source.with_shape(TARGET), interpolation)
    kernel_scratch = kernels.kernels_scratch_bytes(tables, "float32", "float32")
    if interpolation == "cubic":  # the float64 coefficients
        assert kernel_scratch >= np.prod(SHAPE) * 8
    else:
        assert kernel_scratch == 0
    assert array_scratch_bytes(tables, "float32", "float32") >= np.prod(TARGET) * 4


# ---------------------------------------------------------------------------------------
# On a GPU
# ---------------------------------------------------------------------------------------

def _gpu_reason():
    return gr.available_backends()["cupyx"]


gpu = pytest.mark.skipif(_gpu_reason() is not None, reason=f"no GPU backend: {_gpu_reason()}")


@pytest.fixture
def cupy():
    import cupy
    return cupy


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_gpu_backend_matches_cpu(cupy, backend, interpolation, dtype):
    if gr.available_backends()[backend] is not None:
        pytest.skip(f"backend {backend!r}: {gr.available_backends()[backend]}")
    x = volume_for(interpolation, dtype, seed=4)
    expected = gr.resample(x, (1, 1, 1), target_shape=TARGET, interpolation=interpolation, backend="cpu")
    result = gr.resample(cupy.asarray(x), (1, 1, 1), target_shape=TARGET, interpolation=interpolation,
                         backend=backend)
    assert isinstance(result, cupy.ndarray)
    rtol = CUBIC_FLOAT64_RTOL if (backend == "cupyx" and dtype == "float64") else FLOAT_RTOL
    assert_parity(result.get(), expected, interpolation, rtol)


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("interpolation", ["nearest", "linear", "cubic", "label"])
@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_gpu_2d_strided_and_output_dtype(cupy, backend, interpolation):
    base = volume_for(interpolation, "int16", shape=(30, 41), seed=5)
    x = cupy.asarray(base)[::-1, 1::2]
    expected = gr.resample(base[::-1, 1::2], (1, 1), target_shape=(44, 13), interpolation=interpolation)
    result = gr.resample(x, (1, 1), target_shape=(44, 13), interpolation=interpolation, backend=backend)
    assert_parity(result.get(), expected, interpolation)
    if interpolation != "label":
        f = cupy.asarray(random_volume((12, 9, 10), "float32", seed=6) * 400)
        want = gr.resample(f.get(), (1, 1, 1), target_shape=(7, 15, 10), interpolation=interpolation, dtype="uint8")
        got = gr.resample(f, (1, 1, 1), target_shape=(7, 15, 10), interpolation=interpolation, dtype="uint8",
                          backend=backend)
        np.testing.assert_array_equal(got.get(), want)


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("interpolation", ["linear", "cubic"])
@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_gpu_antialias_equals_cpu(cupy, backend, interpolation):
    """The Gaussian runs as sampling tables through each backend's separable passes: linear
    gives the CPU's bits on both GPU backends, cubic on the kernels (cupyx's prefilter along
    axes 1 and 2 is its own, to rounding)."""
    for dtype in ("float32", "uint8", "int16", "uint16"):
        x = random_volume((40, 36, 30), dtype, seed=7)
        kw = dict(target_shape=(13, 12, 11), interpolation=interpolation, antialias=True)
        expected = gr.resample(x, (1, 1, 1), **kw)
        result = gr.resample(cupy.asarray(x), (1, 1, 1), backend=backend, **kw).get()
        if interpolation == "cubic" and backend == "cupyx":
            if dtype == "float32":
                np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
            else:
                assert np.abs(result.astype(np.int64) - expected.astype(np.int64)).max() <= 1
        else:
            np.testing.assert_array_equal(result, expected)


def _split_budget(job) -> int:
    """Half way between one output row's planned peak and the unsplit one: splits on any device."""
    from gpuresample.planner import slab_bytes

    one_row = slab_bytes(job.tables.slab(0, 1), job.in_dtype, job.out_dtype, job.source.shape, job.backend,
                         job.staged)
    return (one_row + job.chunking.peak_bytes) // 2


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("backend", GPU_BACKENDS)
@pytest.mark.parametrize("interpolation,antialias", WITH_ANTIALIAS)
def test_gpu_chunked_equals_whole(cupy, backend, interpolation, antialias):
    """Bit for bit (docs/design.md §2), on the device and staged from the host, with axis 0 long
    enough that slabs cut the cubic prefilter; the budget lies half way between one row's
    planned peak and the unsplit one, so the job splits on any device."""
    if gr.available_backends()[backend] is not None:
        pytest.skip(f"backend {backend!r}: {gr.available_backends()[backend]}")
    host = volume_for(interpolation, "float32", shape=(150, 20, 18), seed=8)
    x = cupy.asarray(host)
    kw = dict(target_shape=(190, 17, 25) if not antialias else (60, 11, 9), interpolation=interpolation,
              antialias=antialias, backend=backend)
    whole = gr.resample(x, (1, 1, 1), **kw).get()
    budget = _split_budget(build_job(x, (1, 1, 1), **kw))
    job = build_job(x, (1, 1, 1), max_memory=budget, **kw)
    assert job.chunking.count > 1
    chunked = gr.resample(x, (1, 1, 1), max_memory=budget, **kw).get()
    assert np.array_equal(chunked, whole), f"{np.count_nonzero(chunked != whole)} values differ"
    staged_budget = _split_budget(build_job(host, (1, 1, 1), device="cuda", **kw))
    assert build_job(host, (1, 1, 1), device="cuda", max_memory=staged_budget, **kw).chunking.count > 1
    staged = gr.resample(host, (1, 1, 1), device="cuda", max_memory=staged_budget, **kw)
    assert np.array_equal(staged, whole), f"{np.count_nonzero(staged != whole)} values differ"


@gpu
@pytest.mark.gpu
def test_gpu_auto_dispatch_picks_kernels(cupy):
    job = build_job(cupy.asarray(random_volume(SHAPE, "float32")), (1, 1, 1), target_shape=TARGET)
    assert job.backend.name == "kernels"
    host_job = build_job(random_volume(SHAPE, "float32"), (1, 1, 1), target_shape=TARGET)
    assert host_job.backend.name == "cpu"


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("interpolation", ["linear", "label"])
def test_device_cuda_with_numpy_returns_numpy(interpolation):
    x = volume_for(interpolation, "uint8", seed=9)
    result = gr.resample(x, (1, 1, 1), target_shape=TARGET, interpolation=interpolation, device="cuda")
    assert isinstance(result, np.ndarray)
    np.testing.assert_array_equal(result, gr.resample(x, (1, 1, 1), target_shape=TARGET, interpolation=interpolation))


@gpu
@pytest.mark.gpu
def test_torch_cuda_round_trip():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here (the test extra pins a CPU build)")
    x = random_volume(SHAPE, "float32", seed=10)
    tensor = torch.from_numpy(x).cuda()
    result = gr.resample(tensor, (1, 1, 1), target_shape=TARGET)
    assert isinstance(result, torch.Tensor) and result.is_cuda and result.device == tensor.device
    assert_parity(result.cpu().numpy(), gr.resample(x, (1, 1, 1), target_shape=TARGET), "linear")
    assert torch.equal(tensor.cpu(), torch.from_numpy(x))  # the input is never modified


@gpu
@pytest.mark.gpu
def test_kernels_compile_once_per_dtype_and_interpolation(cupy):
    x = cupy.asarray(random_volume((9, 10, 11), "float32"))
    gr.resample(x, (1, 1, 1), target_shape=(12, 5, 17), interpolation="cubic", backend="kernels")
    compiled = len(kernels.compile._compile_cache)
    for target in ((3, 4, 5), (31, 7, 2), (9, 10, 11)):
        gr.resample(x, (1, 1, 1), target_shape=target, interpolation="cubic", backend="kernels")
    assert len(kernels.compile._compile_cache) == compiled


@gpu
@pytest.mark.gpu
def test_free_bytes_on_the_device():
    for name in GPU_BACKENDS:
        free = backends.get_backend(name).free_bytes()
        assert free is not None and free > 0


# ---------------------------------------------------------------------------------------
# The staged pipeline (host data through a device backend), with a CuPy stand-in
# ---------------------------------------------------------------------------------------

class _StandInDeviceArray:
    """A "device" array: NumPy inside, CuPy's set/get copy API outside."""

    def __init__(self, array):
        self.array = array
        self.shape, self.dtype = array.shape, array.dtype

    def set(self, host, stream=None):
        self.array[...] = host

    def get(self, stream=None, out=None, blocking=True):
        out[...] = self.array
        return out


class _StandInStream:
    def __init__(self, non_blocking=False):
        self.records = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def record(self):
        self.records += 1
        return self

    def synchronize(self):
        pass


class _HostAsDevice(CpuBackend):
    """The CPU backend reading and writing stand-in device arrays; can fail on one slab."""

    on_device = True

    def __init__(self, fail_on_call=None):
        self.calls = 0
        self.fail_on_call = fail_on_call

    def resample_block(self, source, tables, out):
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise MemoryError("injected out of memory")
        super().resample_block(source.array, tables, out.array)


def _stand_in_cupy():
    from types import SimpleNamespace

    return SimpleNamespace(cuda=SimpleNamespace(Stream=_StandInStream, alloc_pinned_memory=bytearray),
                           empty=lambda shape, dtype: _StandInDeviceArray(np.empty(shape, dtype)))


class _SliceAssignOnly:
    """An output that only takes slice assignment (like Zarr)."""

    def __init__(self, shape, dtype):
        self.data = np.zeros(shape, dtype)
        self.shape, self.dtype = shape, np.dtype(dtype)

    def __setitem__(self, rows, value):
        self.data[rows] = value


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize("out_kind", ["numpy", "slice-assign"])
def test_staged_pipeline_equals_whole_run(interpolation, out_kind):
    from gpuresample.backends._staging import StagedPipeline

    x = volume_for(interpolation, "int16", shape=(70, 12, 11), seed=13)
    source = gr.Grid(x.shape, (1.0, 1.0, 1.0))
    tables = build_tables(source, source.with_shape((97, 9, 15)), interpolation)
    expected = np.empty(tables.output_shape, x.dtype)
    CpuBackend().resample_block(x, tables, expected)
    shape = tables.output_shape
    out = np.zeros(shape, x.dtype) if out_kind == "numpy" else _SliceAssignOnly(shape, x.dtype)
    slabs = [(0, 1), (1, 14), (14, 40), (40, 41), (41, 80), (80, 97)]
    done = []
    pipeline = StagedPipeline(_HostAsDevice(), x, out, cupy=_stand_in_cupy())
    from gpuresample.backends._spline_states import states_for_slabs

    per_slab = dict(zip(slabs, states_for_slabs(tables, [tables.slab(a, b) for a, b in slabs], x, 1)))  # cubic states
    assert interpolation != "cubic" or all(t.axes[0].is_cut and t.axes[0].states for t in per_slab.values())
    pipeline.run(tables, slabs, on_slab_done=lambda: done.append(pipeline.done_until),
                 slab_tables=lambda a, b: per_slab[(a, b)])
    assert done == [stop for _, stop in slabs]
    np.testing.assert_array_equal(out if out_kind == "numpy" else out.data, expected)


def test_staged_pipeline_reports_where_to_resume_after_running_out_of_memory():
    from gpuresample.backends._staging import StagedPipeline

    x = random_volume((60, 10, 9), "float32", seed=14)
    source = gr.Grid(x.shape, (1.0, 1.0, 1.0))
    tables = build_tables(source, source.with_shape((80, 10, 9)), "linear")
    slabs = [(0, 20), (20, 40), (40, 60), (60, 80)]
    out = np.full(tables.output_shape, np.nan, np.float32)
    pipeline = StagedPipeline(_HostAsDevice(fail_on_call=4), x, out, cupy=_stand_in_cupy())
    with pytest.raises(MemoryError, match="injected"):
        pipeline.run(tables, slabs)
    assert pipeline.done_until in (40, 60)  # slabs before the failing one, as far as they landed
    expected = np.empty(tables.output_shape, np.float32)
    CpuBackend().resample_block(x, tables, expected)
    np.testing.assert_array_equal(out[:pipeline.done_until], expected[:pipeline.done_until])
    resumed = StagedPipeline(_HostAsDevice(), x, out, cupy=_stand_in_cupy())
    resumed.run(tables, [(pipeline.done_until, 80)])
    np.testing.assert_array_equal(out, expected)


def test_host_copies_split_over_threads():
    from concurrent.futures import ThreadPoolExecutor

    from gpuresample.backends._staging import PARALLEL_COPY_BYTES, copy_rows

    src = np.arange(PARALLEL_COPY_BYTES // 4 + 4096, dtype=np.float32).reshape(-1, 64)[::-1]  # strided rows
    dst = np.zeros(src.shape, np.float32)
    with ThreadPoolExecutor(4) as pool:
        copy_rows(dst, src, pool)
    np.testing.assert_array_equal(dst, src)


class _PipelinedHostAsDevice(_HostAsDevice):
    """A device backend whose staged pipeline runs on the CuPy stand-in."""

    def staged_pipeline(self, source, out):
        from gpuresample.backends._staging import StagedPipeline

        self.pipelines = getattr(self, "pipelines", 0) + 1
        return StagedPipeline(self, source, out, cupy=_stand_in_cupy())


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_executor_runs_staged_work_through_the_pipeline_and_resumes_after_oom(interpolation):
    """gr.resample's executor: host data, a pipelined device backend, an injected OOM mid-run."""
    from gpuresample.job import build_job

    x = volume_for(interpolation, "uint16", shape=(80, 12, 10), seed=21)
    whole = gr.resample(x, (1, 1, 1), target_shape=(100, 9, 13), interpolation=interpolation)
    job = build_job(x, (1, 1, 1), target_shape=(100, 9, 13), interpolation=interpolation)
    device = _PipelinedHostAsDevice(fail_on_call=2)
    whole_peak = plan_slabs(job.tables, x.dtype, x.dtype, x.shape, None, device, staged=True).peak_bytes
    fraction = 0.6 if interpolation == "cubic" else 0.3
    job = replace(job, backend=device, staged=True,
                  chunking=plan_slabs(job.tables, x.dtype, x.dtype, x.shape, int(whole_peak * fraction), device,
                                      staged=True))
    first_count = job.chunking.count
    assert first_count >= 2
    execution = job.execute()
    out = execution.result
    # the second slab failed once; the rest were replanned smaller: more calls than first planned
    assert job.backend.pipelines == 1 and job.backend.calls > first_count
    assert execution.replanned and execution.chunkings[0].count > first_count - 1
    assert job.chunking.count == first_count  # the plan that was shown is left as it was
    np.testing.assert_array_equal(out, whole)


def test_planner_counts_a_device_backends_own_scratch():
    from gpuresample.backends import cuda as kernels_module

    x = random_volume((40, 30, 30), "float32", seed=2)
    source = gr.Grid(x.shape, (1.0, 1.0, 1.0))
    tables = build_tables(source, source.with_shape((60, 45, 45)), "cubic")
    from gpuresample.backends import _loops

    cpu = plan_slabs(tables, x.dtype, x.dtype, x.shape, None, CpuBackend())
    gpu = plan_slabs(tables, x.dtype, x.dtype, x.shape, None, kernels_module.KernelsBackend())
    # the kernels keep cubic coefficients in float64: more scratch than the compiled CPU loops'
    # float32 array (the CPU's array path holds whole-volume intermediates instead)
    assert gpu.peak_bytes > cpu.peak_bytes or not _loops.is_compiled()
    coefficient_bytes = kernels_module.kernels_scratch_bytes(tables, x.dtype, x.dtype)
    assert gpu.peak_bytes == x.nbytes + 60 * 45 * 45 * 4 + coefficient_bytes


def test_staged_pipeline_fills_the_next_inputs_while_the_device_works():
    """The host copies slab k + 2's rows into pinned memory before slab k leaves the device.

    The stand-in device finishes slab k only once slab k + 2's input rows have been read
    (a timeout fails the test). Before the fills overlapped, the host read slab k + 2 only
    after slab k had finished and been copied out, so this waited forever.
    """
    import threading
    from types import SimpleNamespace

    from gpuresample.backends._staging import STAGES, StagedPipeline

    x = random_volume((60, 10, 9), "float32", seed=15)
    source_grid = gr.Grid(x.shape, (1.0, 1.0, 1.0))
    tables = build_tables(source_grid, source_grid.with_shape((80, 10, 9)), "linear")
    slabs = [(a, a + 10) for a in range(0, 80, 10)]
    filled = [threading.Event() for _ in slabs]
    reads = []

    class Rows:
        shape, dtype = x.shape, x.dtype

        def __getitem__(self, rows):
            filled[len(reads)].set()
            reads.append(rows)
            return x[rows]

    copies_out = {"count": 0, "last": False}  # slabs copied out so far; whether that was the last operation

    class DeviceArray(_StandInDeviceArray):
        def set(self, host, stream=None):
            copies_out["last"] = False
            super().set(host, stream)

        def get(self, stream=None, out=None, blocking=True):
            copies_out["count"] += 1
            copies_out["last"] = True
            return super().get(stream, out, blocking)

    class Stream(_StandInStream):
        def record(self):
            k = copies_out["count"] - 1 if copies_out["last"] else None  # slab k's copy out, just queued

            def synchronize():
                if k is not None and k + 2 < len(slabs):
                    assert filled[k + 2].wait(timeout=10), f"slab {k + 2} not filled while slab {k} ran"
            return SimpleNamespace(synchronize=synchronize)

    cupy = SimpleNamespace(cuda=SimpleNamespace(Stream=Stream, alloc_pinned_memory=bytearray),
                           empty=lambda shape, dtype: DeviceArray(np.empty(shape, dtype)))
    out = np.zeros(tables.output_shape, np.float32)
    pipeline = StagedPipeline(_HostAsDevice(), Rows(), out, cupy=cupy)
    pipeline.run(tables, slabs)
    expected = np.empty(tables.output_shape, np.float32)
    CpuBackend().resample_block(x, tables, expected)
    np.testing.assert_array_equal(out, expected)
    assert len(reads) == len(slabs) and set(pipeline.stage_seconds) == set(STAGES)
