"""The ahead-of-time CPU loops (``gpuresample/_native``) give Numba's loops' results bit for bit,
and are found, built and chosen as ``gpuresample/backends/_native.py`` says."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import random_volume

import gpuresample as gr
from gpuresample import backends
from gpuresample.backends import _loops, _native
from gpuresample.backends import cpu as cpu_backend
from gpuresample.backends._cpu_cubic import CubicLayout
from gpuresample.job import build_job
from gpuresample.tables import CUBIC_POLE, prefilter_constants

INTERPOLATIONS = ["nearest", "linear", "cubic", "label"]


@pytest.fixture
def use_loops(monkeypatch):
    """``use_loops("native" | "baseline" | "numba")`` picks the CPU loops for the calls that
    follow (``baseline``: the native library built without CPU-specific instructions)."""
    runs_here = _native._runs_here

    def use(choice):
        baseline_only = lambda feature: feature is None  # noqa: E731
        monkeypatch.setattr(_native, "_runs_here", baseline_only if choice == "baseline" else runs_here)
        monkeypatch.setenv(_native.LOOPS_VARIABLE, "native" if choice == "baseline" else choice)
        backends.clear_caches()
    yield use
    monkeypatch.setattr(_native, "_runs_here", runs_here)
    monkeypatch.delenv(_native.LOOPS_VARIABLE, raising=False)
    backends.clear_caches()


def both(use_loops, run):
    """``run()`` with the native loops, then Numba's; the native baseline build must agree too."""
    use_loops("native")
    native = run()
    assert _loops.is_native()
    use_loops("baseline")
    assert_same_bits(native, run())
    assert Path(_native.library()._name).name == _native._build_module().library_name()
    use_loops("numba")
    numba = run()
    assert not _loops.is_native()
    return native, numba


def assert_same_bits(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    assert np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes(), np.abs(
        a.astype(np.float64) - b.astype(np.float64)).max()


def test_the_library_loads_here():
    """CI machines have a C compiler: the native loops must be there, not silently Numba's, and
    built by the install (the wheel's build hook writes them next to their sources; a library
    found only in the cache would mean the hook failed and the first use built it)."""
    library = _native.library()
    assert library is not None
    assert Path(library._name).parent == _native._SOURCE_DIR, (
        f"{library._name} was not built by pip install (hatch_build.py); run pip install . again")


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "uint8", "int16", "uint64", "float16", "bool"])
def test_resample_agrees_with_numba(use_loops, dtype, interpolation):
    x = random_volume((20, 23, 17), dtype, seed=1)
    for shape in [(31, 12, 40), (7, 50, 9)]:
        native, numba = both(use_loops, lambda: gr.resample(x, (1.0, 0.8, 1.3), target_shape=shape,
                                                            interpolation=interpolation, backend="cpu"))
        assert_same_bits(native, numba)


@pytest.mark.parametrize("interpolation", ["linear", "cubic"])
def test_strided_input_other_output_dtype_and_antialias(use_loops, interpolation):
    x = random_volume((30, 26, 40), "float32", seed=2)[::-1, :, ::2].transpose(1, 0, 2)  # no contiguous axis
    for kwargs in [{"target_shape": (17, 44, 9)}, {"target_shape": (11, 12, 7), "antialias": True},
                   {"target_shape": (17, 44, 9), "dtype": np.uint8}, {"target_shape": (17, 44, 9), "dtype": np.int64}]:
        native, numba = both(use_loops, lambda: gr.resample(x, (1, 1, 1), interpolation=interpolation,
                                                            backend="cpu", **kwargs))
        assert_same_bits(native, numba)


@pytest.mark.parametrize("dtype", ["float32", "int16"])
def test_cubic_whole_array_and_streamed_agree(use_loops, monkeypatch, dtype):
    """Both ways of making the cubic coefficients, on both loop sets, give one result."""
    x = random_volume((26, 31, 29), dtype, seed=3)

    def run():
        return gr.resample(x, (1, 1, 1), target_shape=(40, 17, 33), interpolation="cubic", backend="cpu")

    streamed = both(use_loops, run)
    monkeypatch.setattr(cpu_backend, "cubic_layout", lambda *args: CubicLayout(False, 0))
    whole = both(use_loops, run)
    for result in streamed[1:] + whole:
        assert_same_bits(streamed[0], result)


@pytest.mark.parametrize("dtype", ["float32", "uint8"])
@pytest.mark.parametrize("antialias", [False, True])
def test_chunked_cubic_from_states_agrees(use_loops, dtype, antialias):
    """Slabs that cut the prefilter run the pre-pass and the from-states filter."""
    x = random_volume((60, 24, 20), dtype, seed=4)
    shape = (30, 30, 25) if antialias else (90, 30, 25)
    kwargs = {"target_shape": shape, "interpolation": "cubic", "backend": "cpu", "antialias": antialias}
    budget = int(build_job(x, (1, 1, 1), **kwargs).chunking.peak_bytes * 0.8)
    assert build_job(x, (1, 1, 1), max_memory=budget, **kwargs).chunking.count > 1

    def run():
        return gr.resample(x, (1, 1, 1), max_memory=budget, **kwargs)

    native, numba = both(use_loops, run)
    assert_same_bits(native, numba)
    use_loops("native")
    assert_same_bits(native, gr.resample(x, (1, 1, 1), target_shape=shape, interpolation="cubic", backend="cpu",
                                         antialias=antialias))


def tilted(degrees: float) -> np.ndarray:
    """A rotation by ``degrees`` about array axis 0, then 3 degrees about axis 2."""
    def about(axis, angle):
        a = np.deg2rad(angle)
        i, j = [k for k in range(3) if k != axis]
        r = np.eye(3)
        r[i, i], r[i, j], r[j, i], r[j, j] = np.cos(a), -np.sin(a), np.sin(a), np.cos(a)
        return r
    return about(0, degrees) @ about(2, 3.0)


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "uint8", "int16", "uint64", "float16", "bool"])
def test_oblique_targets_agree_with_numba(use_loops, dtype, interpolation):
    """The oblique loops (a position per voxel, SPEC section 8), every output dtype kind,
    a fill, chunked and strided inputs."""
    x = random_volume((22, 19, 17), dtype, seed=7)
    grid = gr.Grid(x.shape, (1.0, 1.2, 1.4))
    target = gr.Grid((20, 21, 15), (1.1, 1.0, 1.3), origin=(2.0, -3.0, 1.0), direction=tilted(20.0))
    fill = 1 if dtype == "bool" else 7
    runs = [{}, {"fill": fill}, {"dtype": np.float32}, {"dtype": np.int16}]
    if interpolation != "cubic":  # (cubic slabs keep axis 0's whole line: no smaller budget)
        peak = build_job(x, grid, onto=target, interpolation=interpolation).chunking.peak_bytes
        assert build_job(x, grid, onto=target, interpolation=interpolation, max_memory=int(peak * 0.6)).chunking.count > 1
        runs.append({"max_memory": int(peak * 0.6)})
    for kwargs in runs:
        if "dtype" in kwargs and (interpolation == "label" or (interpolation == "nearest" and dtype != "float32")):
            continue  # labels keep their dtype; nearest refuses values another dtype cannot hold
        native, numba = both(use_loops, lambda: gr.resample(x, grid, target=target, interpolation=interpolation,
                                                            backend="cpu", **kwargs))
        assert_same_bits(native, numba)
    strided = np.asfortranarray(x)[:, ::-1]
    native, numba = both(use_loops, lambda: gr.resample(strided, grid, target=target, interpolation=interpolation,
                                                        backend="cpu"))
    assert_same_bits(native, numba)


def test_thread_count_does_not_change_results(use_loops, monkeypatch):
    x = random_volume((33, 20, 28), "float32", seed=5)
    results = []
    for count in ("1", "3", "64"):
        monkeypatch.setenv(_native.THREADS_VARIABLE, count)
        use_loops("native")
        assert cpu_backend.CpuBackend().threads() == int(count)
        results.append([gr.resample(x, (1, 1, 1), target_shape=(41, 19, 30), interpolation=i, backend="cpu")
                        for i in ("linear", "cubic")])
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert_same_bits(a, b)
    for bad in ("0", "two"):
        monkeypatch.setenv(_native.THREADS_VARIABLE, bad)
        with pytest.raises(ValueError, match=_native.THREADS_VARIABLE):
            _native.threads()


def test_unknown_loops_choice_is_refused(use_loops):
    use_loops("fortran")
    with pytest.raises(ValueError, match="GPURESAMPLE_CPU_LOOPS"):
        gr.resample(np.zeros((4, 4, 4), np.float32), (1, 1, 1), target_shape=(5, 5, 5), backend="cpu")


def test_prefilter_constants_are_numbas():
    from gpuresample.backends._cpu_loops import prefilter_constants as numba_constants

    for n_ext in (1, 2, 3, 7, 64, 1000, 70_000):
        assert prefilter_constants(n_ext, CUBIC_POLE) == numba_constants(n_ext, CUBIC_POLE)


def test_empty_and_thin_outputs(use_loops):
    x = random_volume((5, 6, 7), "float32", seed=6)
    for shape in [(1, 1, 1), (1, 9, 1), (2, 1, 13)]:
        for interpolation in INTERPOLATIONS:
            native, numba = both(use_loops, lambda: gr.resample(x, (1, 1, 1), target_shape=shape,
                                                                interpolation=interpolation, backend="cpu"))
            assert_same_bits(native, numba)


# ---------------------------------------------------------------------------------------
# Finding and building the library
# ---------------------------------------------------------------------------------------


@pytest.fixture
def source_copy(tmp_path, monkeypatch):
    """The library's sources copied to a folder without a built library; the cache in tmp_path."""
    sources = tmp_path / "src"
    sources.mkdir()
    for name in _native._build_module().SOURCES + ("build.py",):
        shutil.copy(_native._SOURCE_DIR / name, sources / name)
    monkeypatch.setattr(_native, "_SOURCE_DIR", sources)
    monkeypatch.setenv(_native.CACHE_VARIABLE, str(tmp_path / "cache"))
    monkeypatch.delenv(_native.LOOPS_VARIABLE, raising=False)
    _native.library.cache_clear()
    yield sources
    _native.library.cache_clear()
    backends.clear_caches()


def test_built_at_first_use_once_then_loaded(source_copy, capfd):
    assert _native.library() is not None
    assert capfd.readouterr().err.count("building the CPU loops") == 1
    built = list((source_copy.parent / "cache").glob("native-*/libgrloops*"))
    assert len(built) == 1
    _native.library.cache_clear()
    assert _native.library() is not None
    assert capfd.readouterr().err == ""  # found in the cache
    with open(source_copy / "grloops.h", "a") as f:  # other sources: that library is not loaded
        f.write("\n/* changed */\n")
    _native.library.cache_clear()
    assert _native.library() is not None
    assert "building the CPU loops" in capfd.readouterr().err
    assert len(list((source_copy.parent / "cache").glob("native-*/libgrloops*"))) == 2
    with open(source_copy / "build.py", "a") as f:  # another build recipe (flags): not loaded either
        f.write("\n# changed\n")
    _native.library.cache_clear()
    assert _native.library() is not None
    assert "building the CPU loops" in capfd.readouterr().err
    assert len(list((source_copy.parent / "cache").glob("native-*/libgrloops*"))) == 3


def test_without_a_compiler(source_copy, monkeypatch, capfd):
    build = _native._build_module()
    build.compiler = lambda: None
    monkeypatch.setattr(_native, "_build_module", lambda: build)
    assert _native.library() is None  # auto: Numba's loops, with a line saying why
    assert "not available (no C compiler was found); using Numba's" in capfd.readouterr().err
    monkeypatch.setenv(_native.LOOPS_VARIABLE, "native")
    _native.library.cache_clear()
    with pytest.raises(RuntimeError, match="no C compiler"):
        _native.library()


def test_a_process_using_the_native_loops_never_imports_numba():
    script = """
import sys, numpy as np, gpuresample as gr
x = np.random.default_rng(0).random((12, 14, 16)).astype(np.float32)
for interpolation in ("nearest", "linear", "cubic"):
    gr.resample(x, (1, 1, 1), target_shape=(20, 9, 17), interpolation=interpolation)
gr.resample((x > 0.5).astype(np.uint8), (1, 1, 1), target_shape=(20, 9, 17), interpolation="label")
gr.resample(x, (1, 1, 1), target_shape=(20, 9, 17), interpolation="cubic", max_memory="300KB")
tilted = gr.Grid((12, 14, 16), (1, 1, 1), direction=[[1, 0, 0], [0, 0.8, -0.6], [0, 0.6, 0.8]])
for interpolation in ("nearest", "linear", "cubic", "label"):
    gr.resample(x, (1, 1, 1), target=tilted, interpolation=interpolation)
print("numba" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "False" and done.stderr == ""
