"""First-call cost of the CPU backend: the native (ahead-of-time) loops and the Numba fallback.

Usage::

    python benchmarks/first_call.py                  # writes benchmarks/results/first-call.md
    python benchmarks/first_call.py --repeats 1      # quicker, noisier

Measured in fresh interpreters, for each interpolation, float32 64³ → 96³ (label: uint8),
from process start to the first result:

* **native, installed**: the library built at install time (``pip install``: the wheel's
  build hook) — every process of an installed package;
* **native, built at first use**: a copy of the package without a built library and an
  empty ``GPURESAMPLE_CACHE_DIR`` (a source checkout run in place): the first process
  compiles the library (once per environment);
* **Numba, cold / warm cache**: ``GPURESAMPLE_CPU_LOOPS=numba`` with an empty
  ``NUMBA_CACHE_DIR``, then the cache that run filled.

Also timed: building the library (``gpuresample/_native/build.py``, every variant, in
parallel). Each row gives medians over ``--repeats`` fresh processes.
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
INTERPOLATIONS = ["nearest", "linear", "cubic", "label"]
#: First-call goals, seconds.
COLD_GOAL_S, WARM_GOAL_S = 3.0, 0.3

FIRST_CALL = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
t1 = time.perf_counter()
import gpuresample as gr
t2 = time.perf_counter()
interpolation = sys.argv[1]
x = np.random.default_rng(0).random((64, 64, 64), dtype=np.float32)
if interpolation == "label":
    x = (x * 4).astype(np.uint8)
t3 = time.perf_counter()
gr.resample(x, (1, 1, 1), target_shape=(96, 96, 96), interpolation=interpolation)
t4 = time.perf_counter()
from gpuresample.backends import _loops
assert gr.__file__.startswith(sys.argv[2]), gr.__file__
print(json.dumps({"numpy": t1 - t0, "gpuresample": t2 - t1, "first call": t4 - t3, "total": (t2 - t0) + (t4 - t3),
                  "native": _loops.is_native(), "numba imported": "numba" in sys.modules}))
"""


def fresh(args, env=None) -> dict:
    """FIRST_CALL in a fresh interpreter started outside the checkout (``-c`` puts the working
    folder first on ``sys.path``, which would shadow ``PYTHONPATH``)."""
    done = subprocess.run([sys.executable, "-c", FIRST_CALL, *map(str, args)], env={**os.environ, **(env or {})},
                          capture_output=True, text=True, check=True, cwd=tempfile.gettempdir())
    return json.loads(done.stdout.strip().splitlines()[-1])


def median_rows(runs: list) -> dict:
    return {key: statistics.median(float(r[key]) for r in runs) for key in ("numpy", "gpuresample", "first call",
                                                                              "total")} | {
        "native": all(r["native"] for r in runs), "numba imported": any(r["numba imported"] for r in runs)}


def unbuilt_copy(folder: Path) -> Path:
    """A copy of the package without any built library (a checkout run in place)."""
    shutil.copytree(ROOT / "gpuresample", folder / "gpuresample",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.dylib"))
    return folder


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS / "first-call.md")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from gpuresample.backends import _native

    assert _native.library() is not None, "build the library first: python gpuresample/_native/build.py"
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        base = {"PYTHONPATH": str(ROOT), "GPURESAMPLE_CPU_LOOPS": "auto"}
        for interpolation in INTERPOLATIONS:
            installed, first_use, cold, warm = [], [], [], []
            for r in range(args.repeats):
                installed.append(fresh([interpolation, ROOT], base))
                copy = unbuilt_copy(scratch / f"copy-{interpolation}-{r}")
                first_use.append(fresh([interpolation, copy], {**base, "PYTHONPATH": str(copy),
                                                               "GPURESAMPLE_CACHE_DIR": str(copy / "cache")}))
                numba = {**base, "GPURESAMPLE_CPU_LOOPS": "numba", "NUMBA_CACHE_DIR": str(scratch / f"nb-{interpolation}-{r}")}
                cold.append(fresh([interpolation, ROOT], numba))
                warm.append(fresh([interpolation, ROOT], numba))
            rows += [(interpolation, "native, installed", median_rows(installed)),
                     (interpolation, "native, built at first use", median_rows(first_use)),
                     (interpolation, "Numba, cold cache", median_rows(cold)),
                     (interpolation, "Numba, warm cache", median_rows(warm))]
        builds = []
        build = _native._build_module()
        for r in range(args.repeats):
            start = time.perf_counter()
            build.build(scratch / f"build-{r}")
            builds.append(time.perf_counter() - start)
    load = os.getloadavg()
    lines = [
        "# First call of the CPU backend: native (ahead-of-time) loops and the Numba fallback",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; load average "
        f"{load[0]:.1f} at the end. float32 64³ → 96³ (label: uint8); seconds from process start, medians of "
        f"{args.repeats} fresh processes. Goals: cold ≤ {COLD_GOAL_S} s, warm ≤ {WARM_GOAL_S} s.",
        "",
        "| interpolation | how | import numpy | import gpuresample | first call | total | Numba imported |",
        "|---|---|---|---|---|---|---|",
    ]
    for interpolation, how, r in rows:
        lines.append(f"| {interpolation} | {how} | {r['numpy']:.2f} | {r['gpuresample']:.2f} | {r['first call']:.2f} "
                     f"| {r['total']:.2f} | {'yes' if r['numba imported'] else 'no'} |")
    variants = ", ".join(build.library_name(s) for s, _, _ in build.variants())
    lines += [
        "",
        f"Building the library ({variants}; `gpuresample/_native/build.py`, in parallel): median "
        f"{statistics.median(builds):.2f} s, paid once by an install (the wheel's build hook). A checkout run in "
        "place builds only the variant its CPU runs (both translation units in parallel) in its first process: "
        "the \"built at first use\" rows.",
    ]
    text = "\n".join(lines) + "\n"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
