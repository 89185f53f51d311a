"""The CPU loops compiled ahead of time (``gpuresample/_native``), through ctypes.

Every function here has the signature of the Numba loop of the same name in
``_cpu_loops`` or ``_affine_loops`` and gives its result bit for bit
(``tests/test_native.py``); ``_loops`` picks which of the two runs. The library is built
when the wheel is built (``hatch_build.py``); a checkout without one builds it at first
use into the user's cache (about 2 s, once, with a one-line notice). ``GPURESAMPLE_CPU_LOOPS=numba`` selects the
Numba loops instead; ``=native`` makes a missing library an error.

Threads: each call creates its threads and joins them before returning, so there is no
pool to break in a forked child and calls from several threads run side by side.
``GPURESAMPLE_NUM_THREADS`` (else ``NUMBA_NUM_THREADS``) sets how many; by default every
core this process may run on.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from pathlib import Path

import numpy as np

#: Selects the CPU loops: "native", "numba", or unset/"auto" (native when it loads or builds).
LOOPS_VARIABLE = "GPURESAMPLE_CPU_LOOPS"
#: Threads the native loops use (default: the cores this process may run on).
THREADS_VARIABLE = "GPURESAMPLE_NUM_THREADS"
#: Where a library built at first use is kept (default ``$XDG_CACHE_HOME/gpuresample``).
CACHE_VARIABLE = "GPURESAMPLE_CACHE_DIR"
#: The entry points' ABI this module calls (``GR_ABI`` in grloops.h).
ABI = 1
#: The most taps a label voxel scores (``GR_LABEL_TAPS``).
LABEL_TAPS = 64

_SOURCE_DIR = Path(__file__).resolve().parent.parent / "_native"
_CODES = {("u", 1): 0, ("b", 1): 0, ("i", 1): 1, ("u", 2): 2, ("i", 2): 3, ("u", 4): 4, ("i", 4): 5,
          ("u", 8): 6, ("i", 8): 7, ("f", 4): 8, ("f", 8): 9}
_F32, _F64 = 8, 9

_i64, _f64, _ptr, _int = ctypes.c_int64, ctypes.c_double, ctypes.c_void_p, ctypes.c_int
_SIGNATURES = {
    "gr_separable3": [_int, _int, _ptr, _ptr, _ptr, _ptr, _ptr, _i64, _i64, _ptr, _ptr, _i64, _i64, _ptr, _ptr, _i64,
                      _i64, _ptr, _ptr, _int, _f64, _f64, _ptr, _ptr, _i64],
    "gr_label3": [_int, _ptr, _ptr, _ptr, _ptr, _i64, _i64, _ptr, _ptr, _i64, _i64, _ptr, _ptr, _i64, _i64, _ptr, _ptr,
                  _i64],
    "gr_gather_clamped": [_int, _ptr, _ptr, _ptr, _i64, _ptr, _i64, _ptr, _i64, _ptr, _i64],
    "gr_spline_filter_axis0": [_int, _ptr, _ptr, _ptr, _i64, _i64, _i64, _i64, _f64, _ptr, _i64, _i64, _i64],
    "gr_gather_planes": [_int, _ptr, _ptr, _ptr, _ptr, _i64, _ptr, _i64, _ptr, _i64, _i64, _i64, _ptr, _ptr, _i64, _f64,
                         _ptr, _i64, _i64, _i64],
    "gr_filter_planes": [_int, _ptr, _i64, _i64, _ptr, _i64, _ptr, _i64, _f64, _ptr, _i64, _i64, _i64],
    "gr_causal_initial_sum": [_int, _ptr, _i64, _ptr, _ptr, _i64, _i64, _i64, _f64, _ptr, _ptr, _i64, _i64, _i64],
    "gr_causal_segment": [_int, _ptr, _i64, _ptr, _i64, _i64, _i64, _f64, _ptr, _ptr, _ptr, _i64, _ptr, _i64, _i64,
                          _i64, _i64],
    "gr_anticausal_segment": [_int, _int, _ptr, _i64, _ptr, _i64, _i64, _i64, _f64, _ptr, _ptr, _ptr, _i64, _ptr, _i64,
                              _i64, _i64, _i64, _ptr, _i64, _ptr],
    "gr_affine": [_int, _int, _int, _ptr, _ptr, _ptr, _ptr, _ptr, _ptr, _i64, _f64, _f64, _ptr, _ptr, _ptr, _int, _f64,
                  _f64, _i64],
    "gr_filter_from_states": [_int, _int, _ptr, _i64, _ptr, _i64, _i64, _f64, _ptr, _ptr, _ptr, _i64, _i64, _ptr, _i64,
                              _i64, _i64, _i64],
}


def _build_module():
    """``gpuresample/_native/build.py``, loaded by path (it is a script, not a subpackage)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_gpuresample_native_build", _SOURCE_DIR / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cache_dir() -> Path:
    """Where a library built at first use is kept."""
    if os.environ.get(CACHE_VARIABLE):
        return Path(os.environ[CACHE_VARIABLE])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gpuresample"


def _open(path: Path, expected_hash: str):
    """The library at ``path`` with its signatures set, or None if it is missing, stale or foreign."""
    if not path.is_file():
        return None
    try:
        lib = ctypes.CDLL(str(path))
        lib.gr_abi.restype = ctypes.c_int
        lib.gr_source_hash.restype = ctypes.c_char_p
        if lib.gr_abi() != ABI or lib.gr_source_hash().decode() != expected_hash:
            return None
        for name, argtypes in _SIGNATURES.items():
            function = getattr(lib, name)
            function.argtypes = argtypes
            function.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return lib


@functools.cache
def library():
    """The loaded library, or None when the Numba loops are to run (see the module doc).

    Looks next to the sources (a wheel's or a build hook's library), then in the cache;
    builds into the cache when neither matches the sources and a C compiler is there.
    """
    choice = os.environ.get(LOOPS_VARIABLE, "auto").strip().lower() or "auto"
    if choice not in ("auto", "native", "numba"):
        raise ValueError(f"{LOOPS_VARIABLE} must be 'native', 'numba' or 'auto', not {choice!r}")
    if choice == "numba":
        return None
    build = _build_module()
    expected = build.source_hash(_SOURCE_DIR)
    # the variants this CPU runs, the best first
    runnable = [suffix for suffix, _, feature in build.variants()[::-1] if _runs_here(feature)]
    names = [build.library_name(suffix) for suffix in runnable]
    cached = cache_dir() / f"native-{expected}"
    for directory in (_SOURCE_DIR, cached):
        for name in names:  # the best variant this CPU runs first
            lib = _open(directory / name, expected)
            if lib is not None:
                return lib
    reason = None
    if os.name != "posix":
        reason = "they build on POSIX systems only"
    elif build.compiler() is None:
        reason = "no C compiler was found"
    else:
        print("gpuresample: building the CPU loops (once per environment, a few seconds) ...",
              file=sys.stderr, flush=True)
        try:  # only the best variant this CPU runs: every unit of it compiles in parallel
            build.build(cached, _SOURCE_DIR, suffixes=runnable[:1])
        except (OSError, RuntimeError) as error:
            reason = f"building them failed: {error}"
        else:
            for name in names:
                lib = _open(cached / name, expected)
                if lib is not None:
                    return lib
            reason = "the library built does not load"
    if choice == "native":
        raise RuntimeError(f"{LOOPS_VARIABLE}=native, but the ahead-of-time CPU loops are not available: {reason}")
    print(f"gpuresample: the ahead-of-time CPU loops are not available ({reason}); using Numba's",
          file=sys.stderr, flush=True)
    return None


def _runs_here(feature) -> bool:
    """Whether this CPU has ``feature`` (NumPy's name for it; None: the baseline, always)."""
    if feature is None:
        return True
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # NumPy 1.x
        from numpy.core._multiarray_umath import __cpu_features__
    return bool(__cpu_features__.get(feature))


def threads() -> int:
    """Threads the native loops run on."""
    for variable in (THREADS_VARIABLE, "NUMBA_NUM_THREADS"):
        value = os.environ.get(variable, "").strip()
        if value:
            try:
                count = int(value)
            except ValueError:
                raise ValueError(f"{variable} must be a positive integer, not {value!r}") from None
            if count < 1:
                raise ValueError(f"{variable} must be a positive integer, not {value!r}")
            return count
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# ---------------------------------------------------------------------------------------
# The loops (signatures of _cpu_loops)
# ---------------------------------------------------------------------------------------


def _require(condition, detail="") -> None:
    """An argument check that also holds under ``python -O`` (the loops trust their arguments)."""
    if not condition:
        raise RuntimeError(f"native CPU loop called with inconsistent arguments {detail}".rstrip())


def _code(array: np.ndarray) -> int:
    dtype = array.dtype
    code = _CODES.get((dtype.kind, dtype.itemsize))
    if code is None or not dtype.isnative:
        raise TypeError(f"the native CPU loops do not read {dtype} arrays")
    return code


def _work_code(array: np.ndarray) -> int:
    """The working dtype's code of an input array (float32 for float32, else float64)."""
    return _F32 if _code(array) == _F32 else _F64


def _float_code(array: np.ndarray) -> int:
    code = _code(array)
    if code not in (_F32, _F64):
        raise TypeError(f"expected a float32 or float64 array, got {array.dtype}")
    return code


def _address(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


def _contiguous(array: np.ndarray, dtype=None) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=dtype)


def _triple(values) -> ctypes.Array:
    return (ctypes.c_int64 * 3)(*values)


def _check(status: int, name: str) -> None:
    if status != 0:
        raise TypeError(f"the native CPU loop {name} has no version for these dtypes")


def _tables(index, weight, dtype):
    index = _contiguous(index, np.int64)
    weight = _contiguous(weight, dtype)
    return index, weight, index.shape[0], index.shape[1]


def _scratch(lines: np.ndarray) -> tuple:
    """``(threads, rows, pitch)`` of float64 per-thread scratch ``(threads, rows, pitch)``."""
    _require(lines.dtype == np.float64 and lines.flags.c_contiguous and lines.ndim == 3)
    return lines.shape[0], lines.shape[1], lines.shape[2]


def _rows_2d(array: np.ndarray) -> int:
    """Row stride of a 2-D array whose columns are contiguous (rows of flattened planes)."""
    _require(array.ndim == 2 and (array.shape[1] <= 1 or array.strides[1] == array.itemsize), array.strides)
    return array.strides[0]


def separable3(src, i0, w0, i1, w1, i2, w2, out, round_to_int, lo, hi, planes, planes2):
    """See ``_cpu_loops.separable3``."""
    work = np.float32 if _code(src) == _F32 else np.float64
    _require(planes.dtype == planes2.dtype == work and planes.flags.c_contiguous and planes2.flags.c_contiguous)
    i0, w0, n0o, t0 = _tables(i0, w0, work)
    i1, w1, n1o, t1 = _tables(i1, w1, work)
    i2, w2, n2o, t2 = _tables(i2, w2, work)
    _require(out.shape == (n0o, n1o, n2o) and planes.shape[1:] == src.shape[1:] and planes2.shape[1] >= n1o)
    _check(library().gr_separable3(
        _code(src), _code(out), _address(src), _triple(src.shape), _triple(src.strides),
        _address(i0), _address(w0), n0o, t0, _address(i1), _address(w1), n1o, t1, _address(i2), _address(w2), n2o, t2,
        _address(out), _triple(out.strides), int(bool(round_to_int)), float(lo), float(hi),
        _address(planes), _address(planes2), planes.shape[0]), "separable3")


def label3(src, i0, w0, i1, w1, i2, w2, out):
    """See ``_cpu_loops.label3``."""
    i0, w0, n0o, t0 = _tables(i0, w0, np.float64)
    i1, w1, n1o, t1 = _tables(i1, w1, np.float64)
    i2, w2, n2o, t2 = _tables(i2, w2, np.float64)
    _require(out.dtype == src.dtype and out.shape == (n0o, n1o, n2o))
    if t0 * t1 * t2 > LABEL_TAPS:
        raise ValueError(f"a label voxel reads {t0 * t1 * t2} taps; the native loop scores at most {LABEL_TAPS}")
    _check(library().gr_label3(
        _code(src), _address(src), _triple(src.strides), _address(i0), _address(w0), n0o, t0,
        _address(i1), _address(w1), n1o, t1, _address(i2), _address(w2), n2o, t2,
        _address(out), _triple(out.strides), threads()), "label3")


def gather_clamped(src, m0, m1, m2, out):
    """See ``_cpu_loops.gather_clamped`` (``out``: C-contiguous, the input's working dtype)."""
    m0, m1, m2 = (_contiguous(m, np.int64) for m in (m0, m1, m2))
    _require(out.flags.c_contiguous and _code(out) == _work_code(src) and out.shape == (len(m0), len(m1), len(m2)))
    _check(library().gr_gather_clamped(
        _code(src), _address(src), _triple(src.strides), _address(m0), len(m0), _address(m1), len(m1),
        _address(m2), len(m2), _address(out), threads()), "gather_clamped")


def spline_filter_axis0(coef, first, pad_before, length, pad_after, pole, lines):
    """See ``_cpu_loops.spline_filter_axis0``."""
    n_threads, rows, pitch = _scratch(lines)
    _require(rows >= pad_before + length + pad_after + 1 and pitch >= coef.shape[2])
    _check(library().gr_spline_filter_axis0(
        _float_code(coef), _address(coef), _triple(coef.shape), _triple(coef.strides), int(first), int(pad_before),
        int(length), int(pad_after), float(pole), _address(lines), n_threads, rows, pitch), "spline_filter_axis0")


def _stages(stages) -> np.ndarray:
    stages = _contiguous(stages, np.int64)
    _require(stages.ndim == 2 and stages.shape[1] == 5)
    return stages


def gather_planes(src, rows, slots, map1, map2, run_lo, run_hi, planes, stages, pole, lines):
    """See ``_cpu_loops.gather_planes``."""
    rows, slots, map1, map2 = (_contiguous(m, np.int64) for m in (rows, slots, map1, map2))
    stages = _stages(stages)
    n_threads, line_rows, pitch = _scratch(lines)
    _require(planes.flags.c_contiguous and _code(planes) == _work_code(src) and len(slots) == len(rows))
    _require(planes.shape[1:] == (len(map1), len(map2)))
    _check(library().gr_gather_planes(
        _code(src), _address(src), _triple(src.strides), _address(rows), _address(slots), len(rows),
        _address(map1), len(map1), _address(map2), len(map2), int(run_lo), int(run_hi), _address(planes),
        _address(stages), len(stages), float(pole), _address(lines), n_threads, line_rows, pitch), "gather_planes")


def filter_planes(planes, slots, stages, pole, lines):
    """See ``_cpu_loops.filter_planes``."""
    slots = _contiguous(slots, np.int64)
    stages = _stages(stages)
    n_threads, line_rows, pitch = _scratch(lines)
    _require(planes.flags.c_contiguous and planes.ndim == 3)
    _check(library().gr_filter_planes(
        _float_code(planes), _address(planes), planes.shape[1], planes.shape[2], _address(slots), len(slots),
        _address(stages), len(stages), float(pole), _address(lines), n_threads, line_rows, pitch), "filter_planes")


def _vector(array: np.ndarray) -> np.ndarray:
    _require(array.dtype == np.float64 and array.flags.c_contiguous, (array.dtype, array.flags))
    return array


def causal_initial_sum(source, front, back, i_start, n_ext, pole, powers, acc, block):
    """See ``_cpu_loops.causal_initial_sum``."""
    front, back = _contiguous(front, np.int64), _contiguous(back, np.int64)
    _require(len(front) == len(back) and source.shape[1] >= acc.shape[0])
    _check(library().gr_causal_initial_sum(
        _code(source), _address(source), _rows_2d(source), _address(front), _address(back), len(front), int(i_start),
        int(n_ext), float(pole), _address(_vector(powers)), _address(_vector(acc)), acc.shape[0], int(block),
        threads()), "causal_initial_sum")


def causal_segment(source, rows, i_start, n_ext, pole, acc, c_in, c_out, lines, block):
    """See ``_cpu_loops.causal_segment``."""
    rows = _contiguous(rows, np.int64)
    n_threads, line_rows, pitch = _scratch(lines)
    _require(line_rows >= len(rows) and pitch >= min(block, acc.shape[0]))
    _check(library().gr_causal_segment(
        _code(source), _address(source), _rows_2d(source), _address(rows), len(rows), int(i_start), int(n_ext),
        float(pole), _address(_vector(acc)), _address(_vector(c_in)), _address(_vector(c_out)), acc.shape[0],
        _address(lines), n_threads, line_rows, pitch, int(block)), "causal_segment")


def anticausal_segment(source, rows, i_start, n_ext, pole, acc, c_in, y_next, lines, block, dest, dest_rows):
    """See ``_cpu_loops.anticausal_segment``."""
    rows, dest_rows = _contiguous(rows, np.int64), _contiguous(dest_rows, np.int64)
    n_threads, line_rows, pitch = _scratch(lines)
    _require(line_rows >= len(rows) and pitch >= min(block, acc.shape[0]) and len(dest_rows) == len(rows))
    _check(library().gr_anticausal_segment(
        _code(source), _float_code(dest), _address(source), _rows_2d(source), _address(rows), len(rows), int(i_start),
        int(n_ext), float(pole), _address(_vector(acc)), _address(_vector(c_in)), _address(_vector(y_next)),
        acc.shape[0], _address(lines), n_threads, line_rows, pitch, int(block), _address(dest), _rows_2d(dest),
        _address(dest_rows)), "anticausal_segment")


def filter_from_states(source, rows, n_ext, pole, causal_first, anticausal_last, dest, lines, block):
    """See ``_cpu_loops.filter_from_states``."""
    rows = _contiguous(rows, np.int64)
    n_threads, line_rows, pitch = _scratch(lines)
    n = causal_first.shape[0]
    _require(line_rows >= len(rows) and pitch >= min(block, n) and dest.shape[0] >= len(rows))
    _check(library().gr_filter_from_states(
        _code(source), _float_code(dest), _address(source), _rows_2d(source), _address(rows), len(rows), int(n_ext),
        float(pole), _address(_vector(causal_first)), _address(_vector(anticausal_last)), _address(dest),
        _rows_2d(dest), n, _address(lines), n_threads, line_rows, pitch, int(block)), "filter_from_states")


# The oblique loops (signatures of _affine_loops; their scratch arguments are not needed here)

_NEAREST_COPY, _NEAREST, _LINEAR, _CUBIC, _LABEL = range(5)


def _affine(kind, src, m, n_src, first, pads, j0_start, band_atol, fill, out, round_to_int=False, lo=0.0, hi=0.0):
    m = _contiguous(m, np.float64)
    n_src, first, pads = (_contiguous(v, np.int64) for v in (n_src, first, pads))
    _require(m.shape == (3, 4) and n_src.shape == first.shape == pads.shape == (3,) and src.ndim == out.ndim == 3)
    _check(library().gr_affine(
        kind, _code(src), _code(out), _address(src), _triple(src.strides), _address(m), _address(n_src),
        _address(first), _address(pads), int(j0_start), float(band_atol), float(fill), _address(out),
        _triple(out.shape), _triple(out.strides), int(bool(round_to_int)), float(lo), float(hi), threads()), "affine")


def affine_nearest(src, m, n_src, first, j0_start, band_atol, fill, out, same_dtype, round_to_int, lo, hi):
    """See ``_affine_loops.affine_nearest``."""
    if same_dtype:
        _require(src.dtype == out.dtype)
    _affine(_NEAREST_COPY if same_dtype else _NEAREST, src, m, n_src, first, np.zeros(3, np.int64), j0_start,
            band_atol, fill, out, round_to_int, lo, hi)


def affine_linear(src, m, n_src, first, j0_start, band_atol, fill, out, round_to_int, lo, hi, weights=None):
    """See ``_affine_loops.affine_linear``."""
    _affine(_LINEAR, src, m, n_src, first, np.zeros(3, np.int64), j0_start, band_atol, fill, out, round_to_int, lo,
            hi)


def affine_cubic(coef, m, n_src, first, pads, j0_start, band_atol, fill, out, round_to_int, lo, hi, weights=None,
                 taps=None):
    """See ``_affine_loops.affine_cubic`` (``coef``: float32 or float64 coefficients)."""
    _float_code(coef)
    _affine(_CUBIC, coef, m, n_src, first, pads, j0_start, band_atol, fill, out, round_to_int, lo, hi)


def affine_label(src, m, n_src, first, j0_start, band_atol, fill, out, labels=None, scores=None):
    """See ``_affine_loops.affine_label`` (labels of ``src``'s dtype into ``out`` of the same)."""
    _require(src.dtype == out.dtype)
    _affine(_LABEL, src, m, n_src, first, np.zeros(3, np.int64), j0_start, band_atol, fill, out)
