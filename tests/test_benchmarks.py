"""The GPU benchmark scripts run end to end on stand-ins for CuPy: a plumbing smoke test.

``benchmarks/gpu_bench.py --quick`` and ``benchmarks/chunked_bench.py --gpu [--huge]`` have
to work the first time a GPU is lent, since device time is scarce. Here they run in-process
on tiny cases with a fake ``cupy`` (and ``cupyx.scipy.ndimage``) put into ``sys.modules``:

* device arrays are NumPy arrays of a subclass whose module is ``cupy`` and which has
  ``__cuda_array_interface__``, ``get`` and ``set``, so gpuresample takes them as CuPy arrays;
* ``backend="kernels"`` runs our real ``KernelsBackend`` glue, and each ``RawModule``
  launch runs the CUDA kernels compiled as C++ by g++ (``tests/harness``) on the CPU;
* ``backend="cupyx"`` runs our real ``CupyxBackend`` with ``scipy.ndimage`` standing in for
  ``cupyx.scipy.ndimage`` (``zoom`` too);
* CUDA events read ``time.perf_counter``, streams are synchronous, pinned memory is a
  ``bytearray``, and the device reports fixed properties and free memory.

The timings, floors, bandwidths and goal verdicts this produces are meaningless: this is
a plumbing smoke test, not a measurement. It checks that each script completes, that
every figure is a number (not a swallowed "n/a" error), that the Markdown is written where
asked (never into ``benchmarks/results/``) with the expected columns and rows, that the
kernels and cupyx backends agree in the agreement column, and that the staged chunked run
gives the CPU backend's result. What it cannot check: real CuPy and CUDA behaviour (NVRTC
compilation, streams overlapping, events on a real device, out-of-memory on a card, torch
on CUDA), and anything about speed.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.ndimage

import gpuresample as gr
from gpuresample.backends import cuda as kernels
from gpuresample.backends.cuda import Launch, kernel_names
from harness.device import HarnessDevice, build, compiler

pytestmark = pytest.mark.skipif(compiler() is None, reason="no C++ compiler (g++ or $CXX) to build the kernels as C++")

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
DEVICE_NAME = "Stand-in Device"
#: What the scripts resample: float32 and uint16, nearest, linear and cubic; int16 (CT)
#: linear and cubic; uint8 masks, label and nearest.
KERNEL_COMBOS = [(d, d, i) for d in ("float32", "uint16") for i in ("nearest", "linear", "cubic")]
KERNEL_COMBOS += [("int16", "int16", "linear"), ("int16", "int16", "cubic"), ("uint8", "uint8", "label"),
                  ("uint8", "uint8", "nearest")]


# ---------------------------------------------------------------------------------------
# The stand-ins
# ---------------------------------------------------------------------------------------

class StandInDeviceArray(np.ndarray):
    """``cupy.ndarray``: NumPy memory, CuPy's module name, array interface and copy API."""

    __module__ = "cupy"

    @property
    def __cuda_array_interface__(self):
        return dict(self.__array_interface__, version=3)

    def get(self, stream=None, order="C", out=None, blocking=True):
        host = np.array(self.view(np.ndarray), order=order, copy=True)
        if out is None:
            return host
        if not isinstance(out, np.ndarray) or isinstance(out, StandInDeviceArray):
            raise TypeError("out must be a numpy.ndarray")
        if out.dtype != self.dtype or out.shape != self.shape:
            raise ValueError(f"out is {out.dtype} {out.shape}, the array {self.dtype} {self.shape}")
        out[...] = host
        return out

    def set(self, arr, stream=None):
        if arr.dtype != self.dtype:
            raise TypeError(f"{arr.dtype} array cannot be set to {self.dtype} array")
        if arr.shape != self.shape:
            raise ValueError(f"shape mismatch: {arr.shape} into {self.shape}")
        self.view(np.ndarray)[...] = arr


def on_device(value):
    return value.view(StandInDeviceArray) if isinstance(value, np.ndarray) else value


def on_host(array, what):
    """The NumPy view of a device array; host arrays are refused as CuPy/cupyx would."""
    if not isinstance(array, StandInDeviceArray):
        raise TypeError(f"{what} takes cupy arrays, got {type(array).__name__}")
    return array.view(np.ndarray)


class Event:
    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self.time = None

    def record(self, stream=None):
        self.time = time.perf_counter()

    def synchronize(self):
        if self.time is None:
            raise RuntimeError("cudaErrorInvalidResourceHandle: event not recorded")

    @property
    def done(self):
        return self.time is not None


def get_elapsed_time(start_event, end_event):
    """Milliseconds, as CuPy's."""
    if start_event.time is None or end_event.time is None:
        raise RuntimeError("cudaErrorInvalidResourceHandle: event not recorded")
    return (end_event.time - start_event.time) * 1e3


class Stream:
    created = 0

    def __init__(self, null=False, non_blocking=False, ptds=False):
        Stream.created += 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def record(self, event=None):
        event = event or Event()
        event.record(self)
        return event

    def synchronize(self):
        pass

    def wait_event(self, event):
        event.synchronize()


#: The stream work goes to when none is chosen (CuPy's current stream).
NULL_STREAM = Stream(null=True)


class Device:
    def __init__(self, device=None):
        self.id = 0 if device is None else int(device)

    def synchronize(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class MemoryPool:
    def free_all_blocks(self, stream=None):
        pass

    def free_bytes(self):
        return 0

    def used_bytes(self):
        return 0


class Generator:
    def __init__(self, seed=None):
        self.rng = np.random.default_rng(seed)

    def random(self, size=None, dtype=np.float64, out=None):
        if np.dtype(dtype).char not in "fd":
            raise TypeError("cupy.random only supports float32 and float64")
        return on_device(self.rng.random(size, dtype=dtype))


def fake_cupy(harness: HarnessDevice) -> types.ModuleType:
    """A ``cupy`` module with just what the scripts and gpuresample's GPU backends touch."""
    cp = types.ModuleType("cupy")
    cp.__version__ = "0.0-stand-in"
    cp.ndarray = StandInDeviceArray
    cp.modules = []

    def asarray(a, dtype=None, order=None):
        if isinstance(a, StandInDeviceArray):
            return on_device(np.asarray(a.view(np.ndarray), dtype=dtype))
        return on_device(np.array(a, dtype=dtype, order=order or "K", copy=True))  # host -> device copies

    cp.asarray = asarray
    cp.empty = lambda shape, dtype=float, order="C": on_device(np.empty(shape, dtype, order))
    cp.zeros = lambda shape, dtype=float, order="C": on_device(np.zeros(shape, dtype, order))
    cp.ones = lambda shape, dtype=float, order="C": on_device(np.ones(shape, dtype, order))
    cp.empty_like = lambda a, dtype=None: on_device(np.empty_like(on_host(a, "cupy.empty_like"), dtype))

    def copyto(dst, src, casting="same_kind", where=True):
        np.copyto(on_host(dst, "cupy.copyto"), src.view(np.ndarray) if isinstance(src, np.ndarray) else src,
                  casting=casting, where=where)

    cp.copyto = copyto

    def delegate(name):
        function = getattr(np, name)

        def call(*args, **kwargs):
            result = function(*args, **kwargs)
            return tuple(map(on_device, result)) if isinstance(result, tuple) else on_device(result)

        call.__name__ = name
        return call

    for name in ("take", "clip", "rint", "ix_", "where", "abs", "array_equal", "arange", "maximum", "argmax",
                 "stack", "zeros_like", "moveaxis", "floor", "minimum", "isnan"):  # floor, minimum: the oblique cupyx path; isnan: float labels
        setattr(cp, name, delegate(name))
    cp.random = types.SimpleNamespace(default_rng=Generator)
    pool = MemoryPool()
    cp.get_default_memory_pool = lambda: pool

    def RawModule(*, code, options=(), name_expressions=()):  # noqa: N802 (CuPy's name)
        def get_function(name):
            assert name in module.names or name in kernels.compile.EXTERN_C_NAMES, f"{name} is not in the module"

            def kernel(grid, block, args):
                for arg in args:
                    if isinstance(arg, np.ndarray) and not isinstance(arg, StandInDeviceArray):
                        raise TypeError(f"{name}: a host array passed to a kernel")
                harness.launch(Launch(name, tuple(grid), tuple(block), tuple(args)))

            return kernel

        module = types.SimpleNamespace(code=code, options=options, names=tuple(name_expressions),
                                       compile=lambda: None, get_function=get_function)
        cp.modules.append(module)
        return module

    cp.RawModule = RawModule
    properties = {"name": DEVICE_NAME.encode(), "totalGlobalMem": 16 << 30, "major": 9, "minor": 0}
    runtime = types.SimpleNamespace(
        getDeviceCount=lambda: 1, getDevice=lambda: 0, memGetInfo=lambda: (8 << 30, 16 << 30),
        getDeviceProperties=lambda device: dict(properties), runtimeGetVersion=lambda: 12040,
        driverGetVersion=lambda: 12040)
    cp.cuda = types.SimpleNamespace(Event=Event, Stream=Stream, Device=Device, get_elapsed_time=get_elapsed_time,
                                    alloc_pinned_memory=bytearray, runtime=runtime,
                                    get_current_stream=lambda: NULL_STREAM)
    return cp


def fake_cupyx() -> tuple:
    """``cupyx``, ``cupyx.scipy`` and ``cupyx.scipy.ndimage`` with SciPy's ndimage inside."""
    ndimage = types.ModuleType("cupyx.scipy.ndimage")

    def zoom(input, zoom, output=None, order=3, mode="constant", cval=0.0, prefilter=True, *, grid_mode=False):
        return on_device(scipy.ndimage.zoom(on_host(input, "zoom"), zoom, output=output, order=order, mode=mode,
                                            cval=cval, prefilter=prefilter, grid_mode=grid_mode))

    def spline_filter1d(input, order=3, axis=-1, output=np.float64, mode="mirror"):
        return on_device(scipy.ndimage.spline_filter1d(on_host(input, "spline_filter1d"), order, axis, output,
                                                       mode))

    def gaussian_filter1d(input, sigma, axis=-1, order=0, output=None, mode="reflect", cval=0.0, truncate=4.0):
        return on_device(scipy.ndimage.gaussian_filter1d(on_host(input, "gaussian_filter1d"), sigma, axis, order,
                                                         output, mode, cval, truncate))

    ndimage.zoom, ndimage.spline_filter1d, ndimage.gaussian_filter1d = zoom, spline_filter1d, gaussian_filter1d
    scipy_module = types.ModuleType("cupyx.scipy")
    scipy_module.ndimage = ndimage
    cupyx = types.ModuleType("cupyx")
    cupyx.scipy = scipy_module
    return cupyx, scipy_module, ndimage


@pytest.fixture(scope="module")
def harness_library(tmp_path_factory):
    """The kernels the scripts launch, built once for this module (about a second)."""
    names = []
    for combo in KERNEL_COMBOS:
        names += [n for n in kernel_names(*combo) if n not in names]
    return build(names, tmp_path_factory.mktemp("bench_harness"))


@pytest.fixture
def stand_ins(harness_library, monkeypatch):
    """The fake ``cupy`` and ``cupyx`` in ``sys.modules``; returns the fake ``cupy``."""
    harness = HarnessDevice(harness_library)
    cp = fake_cupy(harness)
    cp.harness = harness
    cupyx, cupyx_scipy, ndimage = fake_cupyx()
    for name, module in [("cupy", cp), ("cupyx", cupyx), ("cupyx.scipy", cupyx_scipy),
                         ("cupyx.scipy.ndimage", ndimage)]:
        monkeypatch.setitem(sys.modules, name, module)
    kernels.clear_caches()  # compile afresh on the stand-in, and forget it afterwards
    monkeypatch.setattr(Stream, "created", 0)
    assert gr.available_backends()["kernels"] is None and gr.available_backends()["cupyx"] is None
    yield cp
    kernels.clear_caches()


def load_script(name: str, monkeypatch):
    """``benchmarks/<name>.py`` as a fresh module (its constants can be patched per test)."""
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def table(text: str, header_start: str) -> tuple:
    """(header cells, rows of cells) of the Markdown table whose header starts with ``header_start``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    cells = lambda line: [c.strip() for c in line.strip().strip("|").split("|")]  # noqa: E731
    header = cells(lines[start])
    assert re.fullmatch(r"\|(---\|)+", lines[start + 1]) and lines[start + 1].count("|") == len(header) + 1
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append(cells(line))
        assert len(rows[-1]) == len(header), line
    return header, rows


def is_number(cell: str) -> bool:
    """A figure the script computed (not "n/a (...)", not empty)."""
    return re.fullmatch(r"\d+(\.\d+)?(e-\d+)?", cell) is not None


def results_listing():
    folder = BENCHMARKS / "results"
    return sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir()) if folder.is_dir() else []


# ---------------------------------------------------------------------------------------
# The scripts
# ---------------------------------------------------------------------------------------

GPU_BENCH_COLUMNS = ["case", "dtype", "interpolation", "floor", "kernels", "x floor", "cupyx backend", "cupyx zoom",
                     "zoom / kernels", "torch", "torch / kernels", "kernels vs cupyx", "goals"]


def test_gpu_bench_quick_runs_end_to_end(stand_ins, monkeypatch, tmp_path, capsys):
    """``gpu_bench.py --quick`` on tiny cases: every figure, the agreement, goals and report.

    A plumbing smoke test, not a measurement: the times are CPU times of stand-ins.
    """
    bench = load_script("gpu_bench", monkeypatch)
    Case = bench.Case
    quick = (Case("12^3 -> 18^3", (12, 12, 12), (1.0, 1.0, 1.0), target_shape=(18, 18, 18)),
             Case("16x16x8 (0.7, 0.7, 2.5 mm) -> 1 mm", (16, 16, 8), (0.7, 0.7, 2.5), target_spacing=(1.0, 1.0, 1.0)))
    monkeypatch.setattr(bench, "QUICK_CASES", quick)
    monkeypatch.setattr(bench, "OVERHEAD_CASE", Case("8^3 -> 12^3", (8, 8, 8), (1.0, 1.0, 1.0), target_shape=(12,) * 3))
    ct = Case("CT 10x12x12 -> 0.75 mm", (10, 12, 12), bench.CT_SPACING, target_spacing=(0.75,) * 3)
    monkeypatch.setattr(bench, "QUICK_CT_ROWS", ((ct, "int16", ("linear", "cubic")),))
    monkeypatch.setattr(bench, "QUICK_MASK_CASE", Case("mask 10x12x12", (10, 12, 12), bench.CT_SPACING,
                                                       target_spacing=(0.75,) * 3))
    monkeypatch.setattr(bench, "MANY_CASE", Case("6^3 -> 8^3", (6, 6, 6), (1.0, 1.0, 1.0), target_shape=(8,) * 3))
    monkeypatch.setattr(bench, "QUICK_MANY_CALLS", 4)
    monkeypatch.setattr(bench, "QUICK_OBLIQUE_CASE", (12, 20.0))
    monkeypatch.setattr(bench, "COPY_BYTES", 1 << 16)
    monkeypatch.setattr(bench, "OVERHEAD_CALLS", 3)
    try:  # torch's CPU build stands in for torch on CUDA: from_dlpack of the stand-in arrays works
        import torch
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        has_torch = True
    except ImportError:
        has_torch = False
    before = results_listing()

    assert bench.main(["--quick", "--repeats", str(bench.MIN_REPEATS), "--warmup", "1", "--out", str(tmp_path)]) == 0

    assert results_listing() == before, "the test wrote into benchmarks/results/"
    path = tmp_path / "gpu-stand-in-device-quick.md"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    text = path.read_text()
    assert text in capsys.readouterr().out
    assert f"- device: {DEVICE_NAME}" in text and "- compute capability: 9.0" in text
    assert re.search(r"copy bandwidth \(read \+ write\): \d+ GB/s", text)

    header, rows = table(text, "| case | dtype |")
    assert header == GPU_BENCH_COLUMNS
    col = {name: i for i, name in enumerate(header)}
    expected = [(c.name, d, i) for c in quick for d in bench.DTYPES for i in bench.INTERPOLATIONS]
    expected += [(ct.name, "int16", "linear"), (ct.name, "int16", "cubic")]
    assert [tuple(r[:3]) for r in rows] == expected
    for row in rows:
        _, dtype, interpolation = row[:3]
        for name in ("floor", "kernels", "x floor", "cupyx backend", "cupyx zoom", "zoom / kernels"):
            assert is_number(row[col[name]]), (name, row)
        # the backends agree: exactly, or (cubic) to a relative rounding difference
        agree = row[col["kernels vs cupyx"]]
        assert agree == "exact" or (interpolation == "cubic" and re.fullmatch(r"\d\.\de-\d+ rel", agree)
                                    and float(agree.split()[0]) < 1e-5), row
        torch_timed = has_torch and dtype == "float32" and interpolation in bench.TORCH_MODES
        assert is_number(row[col["torch"]]) if torch_timed else row[col["torch"]] == "n/a", row
        assert is_number(row[col["torch / kernels"]]) if torch_timed else row[col["torch / kernels"]] == "", row
        goals = row[col["goals"]]
        assert re.search(r"floor (met|NOT met) \(<= \d\.\dx (up|down)\)", goals), row
        assert ("zoom" in goals) == (interpolation in bench.ZOOM_SPEEDUP_GOAL), row
        assert ("torch" in goals) == torch_timed, row

    header, prefilter = table(text, "| case | our kernel |")
    assert header == ["case", "our kernel", "cupyx spline_filter1d"]
    assert [r[0] for r in prefilter] == [c.name for c in quick]
    assert all(is_number(r[1]) and is_number(r[2]) for r in prefilter), prefilter
    assert re.search(r"## Per-call overhead, 8\^3 -> 12\^3 float32 linear, backend='kernels'\n\n"
                     r"- CUDA events: \d+ µs \(goal < 100 µs: (met|NOT met)\)\n"
                     r"- host wall time including synchronisation: \d+ µs", text)
    header, mask = table(text, "| interpolation | floor |")
    assert header == ["interpolation", "floor", "kernels", "x floor", "cupyx backend", "goals"]
    assert [r[0] for r in mask] == ["label", "nearest"]
    assert all(is_number(r[1]) and is_number(r[2]) and is_number(r[4]) for r in mask), mask
    assert re.search(r"## Many small volumes: 4 calls of 6\^3 -> 8\^3 float32 linear\n\n- kernels: \d+ volumes/s", text)
    assert "limits it" in text
    header, oblique = table(text, "| backend | oblique |")
    assert header == ["backend", "oblique", "axis-aligned, same output size", "oblique / aligned", "goal"]
    assert [r[0] for r in oblique] == ["kernels", "cupyx"]
    assert all(is_number(r[1]) and is_number(r[2]) and is_number(r[3]) for r in oblique), oblique
    assert re.fullmatch(r"(met|NOT met) \(<= 2x\)", oblique[0][4]), oblique
    assert "kernels vs cupyx backend on the oblique target: exact" in text

    # the kernels really ran, through the backend's RawModule glue and the g++ harness
    launched = set(stand_ins.harness.launched)
    assert any(n.startswith("gr_affine_linear<float") for n in launched)
    assert kernels.compile.PREFILTER_NAME in launched
    assert {n for combo in KERNEL_COMBOS for n in kernel_names(*combo)} >= launched
    assert any(n.startswith("gr_separable<unsigned short") for n in launched)
    assert len(stand_ins.modules) == len(KERNEL_COMBOS)  # one compile per dtype and interpolation


def test_chunked_bench_gpu_runs_end_to_end(stand_ins, monkeypatch, tmp_path, capsys):
    """``chunked_bench.py --gpu --huge`` on tiny cases: staged slabs, the copy floor, the report.

    A plumbing smoke test, not a measurement. The host output of each timed call is checked
    against the CPU backend, so the staged pipeline's copies are exercised for real.
    """
    bench = load_script("chunked_bench", monkeypatch)
    monkeypatch.setattr(bench, "GPU_CASES", [((16, 16, 16), np.float32, (24, 24, 24), "linear", True)])
    monkeypatch.setattr(bench, "HUGE_CASE", ((10, 10, 10), np.uint16, (12, 12, 12), "linear", False))
    monkeypatch.setattr(bench, "PINNED_COPY_BYTES", 1 << 16)
    real_resample = gr.resample
    calls = []

    def resample_and_keep(data, *args, **kwargs):
        result = real_resample(data, *args, **kwargs)
        calls.append((data, args, kwargs, result))
        return result

    monkeypatch.setattr(bench.gr, "resample", resample_and_keep)
    before = results_listing()

    assert bench.main(["--gpu", "--huge", "--repeats", "1", "--out", str(tmp_path)]) == 0

    assert results_listing() == before, "the test wrote into benchmarks/results/"
    path = tmp_path / f"chunked-gpu-{bench.device_slug(DEVICE_NAME)}.md"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    text = path.read_text()
    assert text in capsys.readouterr().out
    assert re.search(rf"Device: {DEVICE_NAME}; CuPy 0.0-stand-in; pinned copy bandwidth \d+\.\d GB/s", text)
    header, rows = table(text, "| case | slabs |")
    assert header == ["case", "slabs", "total (median)", "copy floor", "ratio (goal <= 1.3x)",
                      "added host memory (anonymous, peak)", "VmHWM increase"]
    assert [r[0] for r in rows] == ["16^3 float32 -> 24^3 linear", "10^3 uint16 -> 12^3 linear"]
    assert int(rows[0][1]) >= bench.MIN_SLABS and int(rows[1][1]) >= 1
    for row in rows:
        assert re.fullmatch(r"\d+\.\d\d s", row[2]) and re.fullmatch(r"\d+\.\d\d s", row[3]), row
        assert re.fullmatch(r"\d+\.\d\dx", row[4]), row
        assert re.fullmatch(r"\d+\.\d\d GB", row[5]) and re.fullmatch(r"\d+\.\d\d GB", row[6]), row
    header, stage_rows = table(text, "| case | host rows to pinned |")
    assert header == ["case", *bench.STAGES] and [r[0] for r in stage_rows] == [r[0] for r in rows]
    assert all(re.fullmatch(r"\d+\.\d\d s", cell) for r in stage_rows for cell in r[1:]), stage_rows

    # host in, host out through the staged pipeline (streams, pinned buffers), as the CPU computes it
    assert Stream.created > 0
    assert len(calls) == 2 * (1 + 1 + 1)  # warm-up, one timed call and one measuring memory per case
    for data, args, kwargs, result in calls:
        assert kwargs["device"] == "cuda" and result is kwargs["out"] and isinstance(result, np.ndarray)
        assert isinstance(result, np.memmap) == (data.shape == bench.HUGE_CASE[0])  # --huge: memmaps on disk
        reference = {k: v for k, v in kwargs.items() if k not in ("device", "max_memory", "out")}
        np.testing.assert_array_equal(result, real_resample(data, *args, backend="cpu", **reference))


# ---------------------------------------------------------------------------------------
# The CPU oblique benchmark
# ---------------------------------------------------------------------------------------

def test_oblique_bench_runs_end_to_end(monkeypatch, tmp_path, capsys):
    """``oblique_bench.py`` on a 16^3 cube: gpuresample, SimpleITK and torch side by side, every
    median a number, the report where asked. A plumbing smoke test, not a measurement."""
    pytest.importorskip("SimpleITK")
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script puts benchmarks/ first
    monkeypatch.setenv("GPURESAMPLE_NUM_THREADS", "2")
    bench = load_script("oblique_bench", monkeypatch)
    out = tmp_path / "oblique.md"
    before = results_listing()
    monkeypatch.setattr(sys, "argv", ["oblique_bench.py", "--size", "16", "--repeats", str(bench.MIN_REPEATS),
                                      "--output", str(out)])
    assert bench.main() == 0
    assert results_listing() == before, "the test wrote into benchmarks/results/"
    text = out.read_text()
    assert "load average (1, 5, 15 min)" in capsys.readouterr().out
    header, rows = table(text, "| case | interpolation | gpuresample |")
    assert header[:5] == ["case", "interpolation", "gpuresample", "SimpleITK", "torch grid_sample"]
    assert [(r[0], r[1]) for r in rows] == [(case, i) for case, _, _ in bench.CASES for i in bench.INTERPOLATIONS]
    has_torch = bench.torch_version() is not None
    for r in rows:
        assert re.fullmatch(r"[0-9.]+ ms", r[2]) and re.fullmatch(r"[0-9.]+ ms", r[3]), r
        assert re.fullmatch(r"[0-9.]+ ms", r[4]) if has_torch and r[1] != "cubic" else r[4] == "n/a", r
        assert re.fullmatch(r"[0-9.]+x", r[5]), r
    assert "Numba" not in text and re.search(r"Goal \(linear, .*\): >= 1\.5x SimpleITK: (met|NOT met)", text)
    monkeypatch.setattr(sys, "argv", ["oblique_bench.py", "--repeats", "3", "--output", str(out)])
    with pytest.raises(SystemExit):  # fewer repeats than a median is taken over
        bench.main()
