"""The compiled CPU loops (``gpuresample._core``, C++ over the arithmetic of ``kernels/*.cuh``)
give the array path's results bit for bit (the other implementation of the same arithmetic),
check their arguments at the border, and are
found (or reported missing) as ``gpuresample/backends/_native.py`` says."""

from __future__ import annotations

import os
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
from gpuresample.backends.cpu import backend as cpu_backend
from gpuresample.backends.cpu._cubic import CubicLayout
from gpuresample.job import build_job
from gpuresample.tables import CUBIC_POLE, prefilter_constants

INTERPOLATIONS = ["nearest", "linear", "cubic", "label"]
@pytest.fixture
def use_loops(monkeypatch):
    """``use_loops("native" | "array")`` picks the compiled loops or the NumPy/SciPy array path
    for the calls that follow."""
    def use(choice):
        backends.clear_caches()
        monkeypatch.setenv(_loops.LOOPS_VARIABLE, choice)
        if choice == "native":
            assert _native.library() is not None, _native.unavailable_reason()
    yield use
    backends.clear_caches()


def both(use_loops, run):
    """``run()`` with the compiled loops, then with the array path (the other implementation of
    the same arithmetic: docs/design.md §2)."""
    use_loops("native")
    native = run()
    assert _loops.is_compiled()
    use_loops("array")
    array = run()
    assert not _loops.is_compiled()
    return native, array


def needs_oblique_loops():
    if not hasattr(_native.library(), "affine_nearest"):
        pytest.skip("gpuresample._core has no oblique loops in this build")


def assert_same_bits(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    assert np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes(), np.abs(
        a.astype(np.float64) - b.astype(np.float64)).max()


def test_the_module_loads_here():
    """Test machines build the extension: the compiled loops must be there, the package's own
    (next to it, or where an editable install put it)."""
    library = _native.library()
    assert library is not None, _native.unavailable_reason()
    assert _native.unavailable_reason() is None
    assert library.__name__ == "gpuresample._core" and Path(library.__file__).name.startswith("_core.")
    assert Path(library.__file__).parent.name == "gpuresample"
    for name in _native.LOOPS[:10]:
        assert callable(getattr(_native, name))


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "uint8", "int16", "uint64", "float16", "bool"])
def test_resample_agrees_with_the_array_path(use_loops, dtype, interpolation):
    x = random_volume((20, 23, 17), dtype, seed=1)
    for shape in [(31, 12, 40), (7, 50, 9)]:
        native, array = both(use_loops, lambda: gr.resample(x, (1.0, 0.8, 1.3), target_shape=shape,
                                                            interpolation=interpolation, backend="cpu"))
        assert_same_bits(native, array)


@pytest.mark.parametrize("interpolation", ["linear", "cubic"])
def test_strided_input_other_output_dtype_and_antialias(use_loops, interpolation):
    x = random_volume((30, 26, 40), "float32", seed=2)[::-1, :, ::2].transpose(1, 0, 2)  # no contiguous axis
    for kwargs in [{"target_shape": (17, 44, 9)}, {"target_shape": (11, 12, 7), "antialias": True},
                   {"target_shape": (17, 44, 9), "dtype": np.uint8}, {"target_shape": (17, 44, 9), "dtype": np.int64}]:
        native, array = both(use_loops, lambda: gr.resample(x, (1, 1, 1), interpolation=interpolation,
                                                            backend="cpu", **kwargs))
        assert_same_bits(native, array)


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

    native, array = both(use_loops, run)
    assert_same_bits(native, array)
    use_loops("native")
    assert_same_bits(native, gr.resample(x, (1, 1, 1), target_shape=shape, interpolation="cubic", backend="cpu",
                                         antialias=antialias))


#: Stands for "a budget that splits the job into slabs", worked out per loop set.
CHUNKED = object()


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
def test_oblique_targets_agree_with_the_array_path(use_loops, dtype, interpolation):
    """The oblique loops (a position per voxel), every output dtype kind, a fill, chunked
    and strided inputs."""
    needs_oblique_loops()
    x = random_volume((22, 19, 17), dtype, seed=7)
    grid = gr.Grid(x.shape, (1.0, 1.2, 1.4))
    target = gr.Grid((20, 21, 15), (1.1, 1.0, 1.3), origin=(2.0, -3.0, 1.0), direction=tilted(20.0))
    fill = 1 if dtype == "bool" else 7
    runs = [{}, {"fill": fill}, {"dtype": np.float32}, {"dtype": np.int16}]
    if interpolation != "cubic":  # (cubic slabs keep axis 0's whole line: no smaller budget)
        runs.append({"max_memory": CHUNKED})
    for kwargs in runs:
        if "dtype" in kwargs and (interpolation == "label" or (interpolation == "nearest" and dtype != "float32")):
            continue  # labels keep their dtype; nearest refuses values another dtype cannot hold

        def run():
            given = dict(kwargs)
            if given.get("max_memory") is CHUNKED:  # 60 % of this loop set's own one-slab peak: slabs
                peak = build_job(x, grid, onto=target, interpolation=interpolation).chunking.peak_bytes
                given["max_memory"] = int(peak * 0.6)
                assert build_job(x, grid, onto=target, interpolation=interpolation,
                                 max_memory=given["max_memory"]).chunking.count > 1
            return gr.resample(x, grid, target=target, interpolation=interpolation, backend="cpu", **given)

        native, array = both(use_loops, run)
        assert_same_bits(native, array)
    strided = np.asfortranarray(x)[:, ::-1]
    native, array = both(use_loops, lambda: gr.resample(strided, grid, target=target, interpolation=interpolation,
                                                        backend="cpu"))
    assert_same_bits(native, array)


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


def square_and_multiply(z: float, n: int) -> float:
    result, base = 1.0, z
    while n > 0:
        if n & 1:
            result *= base
        n >>= 1
        base *= base
    return result


@pytest.mark.parametrize("n_ext", [65_538, 70_001, 1_000_003])
def test_z_last_is_square_and_multiply_beyond_65536_rows(n_ext):
    """z ** (n_ext - 1) is square-and-multiply for every length, in tables.py and in the
    compiled loops (kernels/gr_spline.cuh: gr_int_power); a library pow could differ in the
    last bit. A pole near -1 keeps z_last away from 0, so the bits say something."""
    pole = -0.999999
    _, z_last = prefilter_constants(n_ext, pole)
    assert z_last == square_and_multiply(pole, n_ext - 1) and 0.3 < abs(z_last) < 1.0
    # The compiled recursion's row 0 is acc / (1 - z_last**2) with its own z_last.
    source = np.ones((1, 3), np.float64)
    acc = np.array([1.0, 2.0, -3.0])
    c_out = np.empty(3)
    lines = np.empty((1, 1, 3))
    _native.causal_segment(source, np.array([0]), 0, n_ext, pole, acc, acc, c_out, lines, 3)
    assert c_out.tobytes() == (acc / (1.0 - z_last * z_last)).tobytes()


def test_empty_and_thin_outputs(use_loops):
    x = random_volume((5, 6, 7), "float32", seed=6)
    for shape in [(1, 1, 1), (1, 9, 1), (2, 1, 13)]:
        for interpolation in INTERPOLATIONS:
            native, array = both(use_loops, lambda: gr.resample(x, (1, 1, 1), target_shape=shape,
                                                                interpolation=interpolation, backend="cpu"))
            assert_same_bits(native, array)


def test_loops_check_their_arguments():
    """Bad arguments raise TypeError or ValueError at the border; nothing runs on them."""
    src = np.zeros((4, 5, 6), np.float32)
    index, weight = np.zeros((3, 1), np.int64), np.ones((3, 1), np.float32)
    out = np.zeros((3, 3, 3), np.float32)
    planes, planes2 = np.zeros((1, 5, 6), np.float32), np.zeros((1, 3, 6), np.float32)

    def separable(**change):
        a = dict(src=src, i0=index, w0=weight, i1=index, w1=weight, i2=index, w2=weight, out=out,
                 round_to_int=False, lo=0.0, hi=0.0, planes=planes, planes2=planes2)
        a.update(change)
        _native.separable3(*a.values())

    separable()
    assert not out.any()
    with pytest.raises(ValueError, match="outside"):
        separable(i0=np.full((3, 1), 4))
    with pytest.raises(ValueError, match="outside"):
        separable(i2=np.full((3, 1), -1))
    with pytest.raises(ValueError, match="same shape"):
        separable(w1=np.ones((3, 2), np.float32))
    with pytest.raises(TypeError, match="working dtype"):
        separable(planes=np.zeros((1, 5, 6)))
    with pytest.raises(ValueError, match="planes"):
        separable(planes=np.zeros((1, 5, 5), np.float32))
    with pytest.raises(ValueError, match="shape"):
        separable(out=np.zeros((3, 3, 4), np.float32))
    with pytest.raises(ValueError, match="rounded"):
        separable(out=np.zeros((3, 3, 3), np.uint16))
    with pytest.raises(ValueError, match="dimensions"):
        separable(src=src[0])
    with pytest.raises(TypeError, match="float16"):
        separable(src=src.astype(np.float16))
    read_only = np.zeros((3, 3, 3), np.float32)
    read_only.flags.writeable = False
    with pytest.raises(TypeError):
        separable(out=read_only)
    labels = np.zeros((4, 5, 6), np.uint8)
    wide = np.zeros((3, 5), np.int64), np.full((3, 5), 0.2)
    with pytest.raises(ValueError, match="at most 64"):
        _native.label3(labels, *wide, *wide, *wide, np.zeros((3, 3, 3), np.uint8))
    with pytest.raises(TypeError, match="labels' dtype"):
        _native.label3(labels, index, weight, index, weight, index, weight, np.zeros((3, 3, 3), np.int8))
    coef, lines = np.zeros((6, 4, 5)), np.zeros((1, 30, 5))
    _native.spline_filter_axis0(coef, 12, 12, 6, 12, CUBIC_POLE, np.zeros((1, 31, 5)))
    with pytest.raises(ValueError, match="lines"):
        _native.spline_filter_axis0(coef, 12, 12, 6, 12, CUBIC_POLE, lines)
    with pytest.raises(ValueError, match="extended line"):
        _native.spline_filter_axis0(coef, 12, 12, 7, 12, CUBIC_POLE, np.zeros((1, 40, 5)))
    with pytest.raises(TypeError, match="float64"):
        _native.spline_filter_axis0(coef, 12, 12, 6, 12, CUBIC_POLE, np.zeros((1, 31, 5), np.float32))


@pytest.mark.parametrize("keep", ["none", "header", "half"])
def test_a_damaged_module_is_reported_not_fatal(tmp_path, keep):
    """A truncated extension gives library() None and a one-line reason in a fresh process:
    an ImportError, never a signal (a file cut short can still pass the loader's header checks
    and fault when a page past its end is touched)."""
    package = Path(gr.__file__).parent
    shutil.copytree(package, tmp_path / "gpuresample", ignore=shutil.ignore_patterns("__pycache__", "_core.*"))
    module = Path(_native.library().__file__)  # next to the package, or where an editable install put it
    built = tmp_path / "gpuresample" / module.name
    shutil.copy(module, built)
    size = {"none": 0, "header": 200, "half": built.stat().st_size // 2}[keep]
    with open(built, "r+b") as file:
        file.truncate(size)
    # an editable install's import hook would find the installed module, not this damaged copy
    script = ("import sys\n"
              "sys.meta_path[:] = [f for f in sys.meta_path if 'ScikitBuild' not in type(f).__name__]\n"
              "from gpuresample.backends import _native\n"
              "print(_native.library() is None)\n"
              "print(_native.unavailable_reason())\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(tmp_path)))
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    none, reason = done.stdout.splitlines()
    assert none == "True" and reason.startswith("gpuresample._core does not load:"), reason
    assert str(tmp_path) in reason


def test_a_process_using_the_native_loops_never_imports_numba():
    script = """
import sys, numpy as np, gpuresample as gr, gpuresample._core
x = np.random.default_rng(0).random((12, 14, 16)).astype(np.float32)
for interpolation in ("nearest", "linear", "cubic"):
    gr.resample(x, (1, 1, 1), target_shape=(20, 9, 17), interpolation=interpolation)
gr.resample((x > 0.5).astype(np.uint8), (1, 1, 1), target_shape=(20, 9, 17), interpolation="label")
gr.resample(x, (1, 1, 1), target_shape=(20, 9, 17), interpolation="cubic", max_memory="300KB")
if hasattr(gr._core, "affine_nearest"):
    tilted = gr.Grid((12, 14, 16), (1, 1, 1), direction=[[1, 0, 0], [0, 0.8, -0.6], [0, 0.6, 0.8]])
    for interpolation in ("nearest", "linear", "cubic", "label"):
        gr.resample(x, (1, 1, 1), target=tilted, interpolation=interpolation)
print("numba" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "False" and done.stderr == ""
