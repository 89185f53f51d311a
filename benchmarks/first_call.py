"""First-call cost of the CPU backend, and what an ahead-of-time (AOT) C++ extension would give.

Usage::

    python benchmarks/first_call.py                  # writes benchmarks/results/first-call.md
    python benchmarks/first_call.py --repeats 1      # quicker, noisier

Measured in fresh interpreters, for each interpolation, float32 64³ → 96³ (the issue's case):

* **cold**: an empty ``NUMBA_CACHE_DIR`` (a fresh install): Numba compiles the loops;
* **warm**: the cache that cold run filled (every later process);
* **serial loops, cold**: the same package with ``parallel=True`` removed from the loops
  (one thread): what Numba's parallel (parfor) compilation adds to the cold time;
* **AOT probe**: ``benchmarks/aot_probe/separable3.cpp``, the linear/nearest loop as C++,
  built with g++ (the build is timed), loaded with ctypes in a fresh interpreter and run
  once (no compilation at run time), then timed on 160³ → 240³ against the Numba loop in
  one process, and checked bit for bit against it.

Each row gives medians over ``--repeats`` fresh processes, split into the imports and the
first call. The machine is shared with other work (its load average is recorded).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
PROBE = Path(__file__).parent / "aot_probe" / "separable3.cpp"
INTERPOLATIONS = ["nearest", "linear", "cubic", "label"]
#: Goals of issue 13 item 11, seconds.
COLD_GOAL_S, WARM_GOAL_S = 3.0, 0.3

FIRST_CALL = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
t1 = time.perf_counter()
import numba
t2 = time.perf_counter()
import gpuresample as gr
t3 = time.perf_counter()
interpolation = sys.argv[1]
x = np.random.default_rng(0).random((64, 64, 64), dtype=np.float32)
if interpolation == "label":
    x = (x * 4).astype(np.uint8)
t4 = time.perf_counter()
gr.resample(x, (1, 1, 1), target_shape=(96, 96, 96), interpolation=interpolation)
t5 = time.perf_counter()
print(json.dumps({"numpy": t1 - t0, "numba": t2 - t1, "gpuresample": t3 - t2, "first call": t5 - t4,
                  "total": (t3 - t0) + (t5 - t4)}))
"""

AOT_CALL = r"""
import ctypes, json, statistics, sys, time
t0 = time.perf_counter()
import numpy as np
t1 = time.perf_counter()
lib = ctypes.CDLL(sys.argv[1])
t2 = time.perf_counter()
P, I = ctypes.c_void_p, ctypes.c_int64
lib.separable3_f32.argtypes = [P, I, I, I, I, I, P, P, I, I, P, P, I, I, P, P, I, I, P, I, I, I, ctypes.c_int]

def linear_table(n_in, n_out):
    u = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    lo = np.floor(u).astype(np.int64)
    f = u - lo
    index = np.stack([np.clip(lo, 0, n_in - 1), np.clip(lo + 1, 0, n_in - 1)], 1)
    return np.ascontiguousarray(index), np.ascontiguousarray(np.stack([1 - f, f], 1).astype(np.float32))

def run(src, tables, out, threads):
    (i0, w0), (i1, w1), (i2, w2) = tables
    e = src.itemsize
    lib.separable3_f32(src.ctypes.data, src.strides[0] // e, src.strides[1] // e, src.strides[2] // e,
                       src.shape[1], src.shape[2], i0.ctypes.data, w0.ctypes.data, i0.shape[0], i0.shape[1],
                       i1.ctypes.data, w1.ctypes.data, i1.shape[0], i1.shape[1], i2.ctypes.data, w2.ctypes.data,
                       i2.shape[0], i2.shape[1], out.ctypes.data, out.strides[0] // 4, out.strides[1] // 4,
                       out.strides[2] // 4, threads)

n, m, threads = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
x = np.random.default_rng(0).random((n,) * 3, dtype=np.float32)
tables = [linear_table(n, m)] * 3
out = np.empty((m,) * 3, np.float32)
t3 = time.perf_counter()
run(x, tables, out, threads)
t4 = time.perf_counter()
result = {"numpy": t1 - t0, "load": t2 - t1, "first call": t4 - t3, "total": (t2 - t0) + (t4 - t3)}
if len(sys.argv) > 5:                       # speed and bit-identity against the Numba loop
    from gpuresample.backends import _cpu_loops as loops
    ref = np.empty_like(out)
    planes, planes2 = np.empty((threads, n, n), np.float32), np.empty((threads, m, n), np.float32)
    numba_call = lambda: loops.separable3(x, *tables[0], *tables[1], *tables[2], ref, False, 0.0, 0.0, planes, planes2)
    numba_call()
    aot, nb = [], []
    for _ in range(int(sys.argv[5])):
        t = time.perf_counter(); run(x, tables, out, threads); aot.append(time.perf_counter() - t)
        t = time.perf_counter(); numba_call(); nb.append(time.perf_counter() - t)
    result.update(aot_ms=statistics.median(aot) * 1e3, numba_ms=statistics.median(nb) * 1e3,
                  identical=bool(np.array_equal(ref.view(np.uint32), out.view(np.uint32))))
print(json.dumps(result))
"""


def fresh(code: str, args, env=None, cwd=None) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)], env={**os.environ, **(env or {})},
                          capture_output=True, text=True, check=True, cwd=cwd)
    return json.loads(done.stdout.strip().splitlines()[-1])


def serial_copy(folder: Path) -> Path:
    """A copy of the package whose loops are compiled without ``parallel=True``."""
    shutil.copytree(ROOT / "gpuresample", folder / "gpuresample", ignore=shutil.ignore_patterns("__pycache__"))
    loops = folder / "gpuresample" / "backends" / "_cpu_loops.py"
    loops.write_text(loops.read_text().replace("parallel=True, ", ""))
    return folder


def median_rows(runs: list) -> dict:
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS / "first-call.md")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        package_env = {"PYTHONPATH": str(ROOT)}
        serial_env = {"PYTHONPATH": str(serial_copy(scratch / "serial"))}
        for interpolation in INTERPOLATIONS:
            cold, warm, serial = [], [], []
            for r in range(args.repeats):
                cache = scratch / f"cache-{interpolation}-{r}"
                cold.append(fresh(FIRST_CALL, [interpolation], {**package_env, "NUMBA_CACHE_DIR": str(cache)}))
                warm.append(fresh(FIRST_CALL, [interpolation], {**package_env, "NUMBA_CACHE_DIR": str(cache)}))
                serial_cache = scratch / f"serial-{interpolation}-{r}"
                serial.append(fresh(FIRST_CALL, [interpolation], {**serial_env, "NUMBA_CACHE_DIR": str(serial_cache)}))
            rows += [(interpolation, "Numba, cold cache", median_rows(cold)),
                     (interpolation, "Numba, warm cache", median_rows(warm)),
                     (interpolation, "Numba serial loops, cold cache", median_rows(serial))]
        library = scratch / "libseparable3.so"
        builds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            subprocess.run(["g++", "-O3", "-ffp-contract=off", "-shared", "-fPIC", "-pthread", str(PROBE), "-o",
                            str(library)], check=True)
            builds.append(time.perf_counter() - start)
        threads = os.cpu_count() or 1
        aot = [fresh(AOT_CALL, [library, 64, 96, threads]) for _ in range(args.repeats)]
        speed = fresh(AOT_CALL, [library, 160, 240, threads, 15], package_env)
    load = os.getloadavg()
    lines = [
        "# First call of the CPU backend, and an ahead-of-time C++ probe",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; load average "
        f"{load[0]:.1f} at the end (shared with other sessions, so figures are medians of {args.repeats} fresh "
        f"processes each). float32 64³ → 96³ (label: uint8). Seconds. Goals: cold ≤ {COLD_GOAL_S} s, warm ≤ "
        f"{WARM_GOAL_S} s.",
        "",
        "| interpolation | how | import numpy | import numba | import gpuresample | first call | total |",
        "|---|---|---|---|---|---|---|",
    ]
    for interpolation, how, r in rows:
        lines.append(f"| {interpolation} | {how} | {r['numpy']:.2f} | {r['numba']:.2f} | {r['gpuresample']:.2f} | "
                     f"{r['first call']:.2f} | {r['total']:.2f} |")
    a = median_rows(aot)
    lines.append(f"| linear | AOT probe (C++, ctypes) | {a['numpy']:.2f} | — | {a['load']:.3f} (load .so) | "
                 f"{a['first call']:.3f} | {a['total']:.2f} |")
    lines += [
        "",
        f"AOT probe build (g++ -O3, one loop, one dtype): median {statistics.median(builds):.2f} s. "
        f"160³ → 240³ linear on {threads} threads: AOT {speed['aot_ms']:.1f} ms, Numba {speed['numba_ms']:.1f} ms "
        f"(medians of 15, same process); bit-identical to the Numba loop: {speed['identical']}.",
    ]
    text = "\n".join(lines) + "\n"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
