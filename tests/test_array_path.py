"""The CPU backend without the compiled loops: the NumPy/SciPy array path (docs/design.md §2).

It runs the cupyx backend's array code on NumPy and gives the compiled loops' results bit for
bit (cubic too: its prefilter is the recursion along every axis), chunked or not; it says so
once per process on stderr, unless ``GPURESAMPLE_CPU_LOOPS=array`` asked for it.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import random_volume

import gpuresample as gr
from gpuresample.backends import _loops, _native, clear_caches
from gpuresample.job import build_job

INTERPOLATIONS = ["nearest", "linear", "cubic", "label"]


def rotation(axis: int, degrees: float) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    i, j = [a for a in range(3) if a != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


@pytest.fixture
def use_loops(monkeypatch):
    """``use_loops("auto" | "array")`` switches the CPU loops for the calls that follow."""

    def use(choice):
        monkeypatch.setenv(_loops.LOOPS_VARIABLE, choice)
        clear_caches()

    yield use
    monkeypatch.undo()
    clear_caches()


@pytest.fixture
def both(use_loops):
    """``both(run)``: ``run()`` with the compiled loops, then on the array path."""

    def run_both(run):
        use_loops("auto")
        if not _loops.is_compiled():
            pytest.skip("the compiled CPU loops are not built here: nothing to compare the array path with")
        compiled = run()
        use_loops("array")
        assert not _loops.is_compiled() and _loops.threads() == 1
        return compiled, run()

    return run_both


def volume(shape, dtype, interpolation, seed=3):
    x = random_volume(shape, dtype, seed=seed)
    if interpolation == "label" and np.dtype(dtype).kind != "b":
        x = np.floor(np.abs(x.astype(np.float64)) % 5).astype(dtype)
    return x


def assert_same_bits(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    assert np.array_equal(a.view(np.uint8), b.view(np.uint8)), f"{np.count_nonzero(a != b)} values differ"


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize("dtype,out_dtype", [("float32", None), ("uint8", "int16"), ("float16", "float16"),
                                             ("float64", "uint8"), ("int64", None)])
def test_same_bits_as_the_compiled_loops(both, interpolation, dtype, out_dtype):
    """Up and down (anti-aliased), 3-D and 2-D, other output dtypes (rounded and clipped)."""
    x = volume((17, 12, 15), dtype, interpolation)

    def run():
        return [gr.resample(x, (1.0, 0.8, 1.3), target_shape=(23, 9, 16), interpolation=interpolation, dtype=out_dtype),
                gr.resample(x, (1.0, 1.0, 1.0), target_shape=(6, 20, 5), interpolation=interpolation, dtype=out_dtype),
                gr.resample(x[4], (1.0, 1.0), target_shape=(19, 7), interpolation=interpolation, dtype=out_dtype)]

    for compiled, array in zip(*both(run)):
        assert_same_bits(compiled, array)


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize("dtype", ["float32", "uint16", "float16"])
def test_oblique_targets_same_bits(both, interpolation, dtype):
    x = volume((16, 13, 11), dtype, interpolation, seed=5)
    grid = gr.Grid(x.shape, (1.0, 1.1, 0.9))
    target = gr.Grid((14, 12, 13), (1.2, 1.0, 1.1), origin=(2.0, -1.0, 0.5),
                     direction=rotation(0, 20.0) @ rotation(1, 5.0))
    compiled, array = both(lambda: gr.resample(x, grid, target=target, interpolation=interpolation, fill=3))
    assert_same_bits(compiled, array)


@pytest.mark.parametrize("interpolation,antialias", [("cubic", False), ("cubic", True), ("linear", True),
                                                     ("label", False)])
def test_chunked_equals_whole_on_the_array_path(use_loops, interpolation, antialias):
    """Slabs cut the cubic prefilter's line: they continue it from the pre-pass's states."""
    use_loops("array")
    x = volume((90, 11, 9), "uint8" if interpolation == "label" else "float32", interpolation, seed=7)
    options = dict(target_shape=(70, 8, 10), interpolation=interpolation, antialias=antialias)
    whole = gr.resample(x, (1, 1, 1), **options)
    budget = build_job(x, (1, 1, 1), **options).chunking.peak_bytes // 3
    assert build_job(x, (1, 1, 1), max_memory=budget, **options).chunking.count >= 2
    assert_same_bits(gr.resample(x, (1, 1, 1), max_memory=budget, **options), whole)


def test_missing_compiled_loops_are_announced_once(use_loops, monkeypatch, capfd):
    """One line on stderr with the reason, once per process; the results stay the same."""
    use_loops("auto")
    x = random_volume((9, 8, 7), "float32", seed=1)
    expected = gr.resample(x, (1, 1, 1), target_shape=(5, 11, 6), interpolation="cubic")
    capfd.readouterr()
    monkeypatch.setattr(_native, "library", lambda: None)
    monkeypatch.setattr(_native, "unavailable_reason", lambda: "no compiled module here", raising=False)
    monkeypatch.setattr(_loops, "_announced", False)
    for _ in range(2):
        clear_caches()
        got = gr.resample(x, (1, 1, 1), target_shape=(5, 11, 6), interpolation="cubic")
        assert not _loops.is_compiled()
        assert_same_bits(got, expected)
    assert capfd.readouterr().err.splitlines() == [_loops.NOTICE.format(reason="no compiled module here")]


def test_choices(use_loops, monkeypatch, capfd):
    """``array`` asks for the array path (silently); ``native`` requires the compiled loops;
    anything else is refused, naming the variable."""
    use_loops("array")
    gr.resample(np.ones((3, 4, 5), np.float32), (1, 1, 1), target_shape=(4, 4, 4))
    assert not _loops.is_compiled() and capfd.readouterr().err == ""
    use_loops("fortran")
    with pytest.raises(ValueError, match=_loops.LOOPS_VARIABLE):
        _loops.current()
    use_loops("native")
    monkeypatch.setattr(_native, "library", lambda: None)
    with pytest.raises(RuntimeError, match="compiled CPU loops are not available"):
        _loops.current()
