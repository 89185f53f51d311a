"""First-call cost of the CPU backend: the compiled module ``gpuresample._core`` and the array path.

Usage::

    python benchmarks/first_call.py                  # writes benchmarks/results/first-call.md
    python benchmarks/first_call.py --repeats 1      # quicker, noisier
    python benchmarks/first_call.py --python /tmp/venv/bin/python   # an installed package

Measured in fresh interpreters, for each interpolation, float32 64³ → 96³ (label: uint8),
from process start to the first result:

* **compiled module**: ``gpuresample._core`` imported, nothing built at run time. By default
  the checkout with ``_core`` built in place (a CMake build of ``CMakeLists.txt``, then
  ``cmake --install build/dev --prefix . --component core``);
  with ``--python``, that interpreter's installed package (``pip install .``);
* **array path (checkout without the module)**: a copy of the package without ``_core``, run
  in place: the NumPy/SciPy array path, with its one line on stderr.

Each row gives medians over ``--repeats`` fresh processes.
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
assert sys.argv[2] == "-" or gr.__file__.startswith(sys.argv[2]), gr.__file__
print(json.dumps({"numpy": t1 - t0, "gpuresample": t2 - t1, "first call": t4 - t3, "total": (t2 - t0) + (t4 - t3),
                  "compiled": _loops.is_compiled()}))
"""


def fresh(args, env=None, python=None) -> dict:
    """FIRST_CALL in a fresh interpreter started outside the checkout (``-c`` puts the working
    folder first on ``sys.path``, which would shadow ``PYTHONPATH``)."""
    done = subprocess.run([python or sys.executable, "-c", FIRST_CALL, *map(str, args)], env={**os.environ, **(env or {})},
                          capture_output=True, text=True, check=True, cwd=tempfile.gettempdir())
    return json.loads(done.stdout.strip().splitlines()[-1])


def median_rows(runs: list) -> dict:
    return {key: statistics.median(float(r[key]) for r in runs) for key in ("numpy", "gpuresample", "first call",
                                                                              "total")} | {
        "compiled": all(r["compiled"] for r in runs)}


def unbuilt_copy(folder: Path) -> Path:
    """A copy of the package without the compiled module (a checkout run in place)."""
    shutil.copytree(ROOT / "gpuresample", folder / "gpuresample",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.dylib"))
    return folder


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--python", help="an interpreter with the package installed (default: this checkout, "
                                          "with _core built in place)")
    parser.add_argument("--output", type=Path, default=RESULTS / "first-call.md")
    args = parser.parse_args(argv)
    if args.python is None:
        sys.path.insert(0, str(ROOT))
        from gpuresample.backends import _native

        assert _native.library() is not None, ("build gpuresample._core in place first (cmake, see CMakeLists.txt) "
                                               "or give --python")
        compiled_env, compiled_args = {"PYTHONPATH": str(ROOT)}, [ROOT]
        compiled_how = "compiled module (checkout, built in place)"
    else:
        compiled_env, compiled_args = {"PYTHONPATH": ""}, ["-"]
        compiled_how = "compiled module (installed)"
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        for interpolation in INTERPOLATIONS:
            compiled, array = [], []
            for r in range(args.repeats):
                compiled.append(fresh([interpolation, *compiled_args], {**compiled_env, "GPURESAMPLE_CPU_LOOPS": "native"},
                                      python=args.python))
                copy = unbuilt_copy(scratch / f"copy-{interpolation}-{r}")
                array.append(fresh([interpolation, copy], {"PYTHONPATH": str(copy), "GPURESAMPLE_CPU_LOOPS": "auto"}))
            rows += [(interpolation, compiled_how, median_rows(compiled)),
                     (interpolation, "array path (checkout without the module)", median_rows(array))]
    load = os.getloadavg()
    lines = [
        "# First call of the CPU backend: the compiled module gpuresample._core and the array path",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; load average "
        f"{load[0]:.1f} at the end. float32 64³ → 96³ (label: uint8); seconds from process start, medians of "
        f"{args.repeats} fresh processes. Goals: cold ≤ {COLD_GOAL_S} s, warm ≤ {WARM_GOAL_S} s. Nothing is "
        "compiled at run time: the module is built with the package (`pip install .`, `pip wheel .`).",
        "",
        "| interpolation | how | import numpy | import gpuresample | first call | total | compiled loops ran |",
        "|---|---|---|---|---|---|---|",
    ]
    for interpolation, how, r in rows:
        lines.append(f"| {interpolation} | {how} | {r['numpy']:.2f} | {r['gpuresample']:.2f} | {r['first call']:.2f} "
                     f"| {r['total']:.2f} | {'yes' if r['compiled'] else 'no'} |")
    text = "\n".join(lines) + "\n"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
