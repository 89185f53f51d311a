"""The compiled loops side by side: ``gpuresample._core`` against the previous ctypes library.

Usage (the previous library built from an older checkout, e.g. ``git worktree add OLD REV``
and ``python OLD/gpuresample/_native/build.py LIBDIR``)::

    python benchmarks/core_vs_ctypes.py --old-native OLD/gpuresample/backends/_native.py \\
        --old-library LIBDIR/libgrloops-avx2.so [--repeats 7] [--output FILE.md]

Both run in this one process on the same inputs, through the same CPU backend: for each
case the backend's loops are switched between the two (``_loops._current``), one call of
each per repeat, round-robin, so load on the machine hits both alike; the table shows the
medians and each side's fastest call. Results are compared bit for bit too.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import gpuresample as gr
from gpuresample.backends import _loops, _native

#: (name, input edge, output edge, dtype, interpolation).
CASES = [(f"{e}³ → {o}³ {d} {i}", e, o, d, i)
         for e, o in [(160, 240), (256, 128)]
         for d, i in [("float32", "nearest"), ("float32", "linear"), ("float32", "cubic"), ("int16", "linear"),
                      ("uint8", "linear"), ("int16", "cubic"), ("uint8", "label")]]


def old_loops(module_path: Path, library_path: Path):
    """The previous ``_native`` module, its loops bound to the library at ``library_path``."""
    spec = importlib.util.spec_from_file_location("gpuresample_previous_native", module_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    lib = ctypes.CDLL(str(library_path))
    for name, argtypes in module._SIGNATURES.items():
        function = getattr(lib, name)
        function.argtypes = argtypes
        function.restype = ctypes.c_int
    module.library = lambda: lib
    return module


def volume(edge: int, dtype: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    if dtype == "uint8":
        return rng.integers(0, 5, (edge,) * 3).astype(np.uint8)
    if dtype == "int16":
        return rng.integers(-1000, 3000, (edge,) * 3).astype(np.int16)
    return rng.random((edge,) * 3, dtype=np.float32)


def run(x, out_edge, interpolation):
    return gr.resample(x, (1.0, 1.0, 1.0), target_shape=(out_edge,) * 3, interpolation=interpolation, backend="cpu")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-native", type=Path, required=True)
    parser.add_argument("--old-library", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    old = old_loops(args.old_native, args.old_library)
    assert _native.library() is not None, _native.unavailable_reason()
    sides = {"ctypes": old, "_core": _native}
    rows = []
    for name, edge, out_edge, dtype, interpolation in CASES:
        x = volume(edge, dtype)
        times = {side: [] for side in sides}
        results = {}
        for side, module in sides.items():  # once each before timing
            _loops._current = module
            results[side] = run(x, out_edge, interpolation)
        assert results["ctypes"].tobytes() == results["_core"].tobytes(), name
        del results
        for _ in range(args.repeats):
            for side, module in sides.items():
                _loops._current = module
                start = time.perf_counter()
                out = run(x, out_edge, interpolation)
                times[side].append(time.perf_counter() - start)
                del out
        old_ms = statistics.median(times["ctypes"]) * 1e3
        new_ms = statistics.median(times["_core"]) * 1e3
        rows.append((name, old_ms, new_ms, min(times["ctypes"]) * 1e3, min(times["_core"]) * 1e3))
        print(f"{name}: ctypes {old_ms:.1f} ms, _core {new_ms:.1f} ms, speed {old_ms / new_ms:.3f}x", flush=True)
    _loops._current = None
    lines = [
        "# `gpuresample._core` against the previous ctypes library",
        "",
        f"`python benchmarks/core_vs_ctypes.py --repeats {args.repeats}`: the CPU backend's `gr.resample`",
        "with each set of loops in one process, round-robin, same inputs (results equal bit for bit).",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{_native.threads()} threads per call, shared with other jobs while measured (so medians, "
        "and each side's fastest call beside them).",
        "",
        "| case | ctypes median (ms) | `_core` median (ms) | speed (ctypes / `_core`) | ctypes fastest | `_core` fastest |",
        "|---|---|---|---|---|---|",
    ]
    for name, old_ms, new_ms, old_min, new_min in rows:
        lines.append(f"| {name} | {old_ms:.1f} | {new_ms:.1f} | {old_ms / new_ms:.3f}× | {old_min:.1f} | {new_min:.1f} |")
    text = "\n".join(lines) + "\n"
    if args.output:
        args.output.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
