"""What each fork-safety option costs: the Numba fallback's CPU loops under each Numba threading layer.

Usage::

    python benchmarks/threading_layers.py                        # writes benchmarks/results/threading-layers.md
    python benchmarks/threading_layers.py --tbb-lib /path/to/lib  # also times TBB (``pip install tbb``)

GNU OpenMP (Numba's ``omp`` layer, the default pick on Linux without TBB) cannot be used
in a child made by ``fork()`` after the parent used it: the child's first parallel loop
kills it ("fork() called from a process already using GNU OpenMP"), so a
``multiprocessing.Pool`` or a PyTorch ``DataLoader(num_workers>0)`` hangs. The options:

* ``workqueue``: Numba's own pool, fork-safe, not safe for two threads at once (the
  backend then runs blocks one at a time);
* ``tbb``: fork-safe and thread-safe, needs the ``tbb`` package (not a dependency);
* keep ``omp`` in the parent and run the loops on one thread in a forked child
  (``os.register_at_fork``): the child's speed is the ``1 thread`` row, and every loop
  needs a second, serial compilation.

Each layer runs in fresh processes (the layer is fixed per process), round-robin over
``--rounds`` rounds of ``--repeats`` calls per case; the table shows medians over all
calls. The Numba cache is warmed first, so no row includes compilation.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
#: (input edge, output edge, interpolation): float32 cubes, the cases issue 13 names.
CASES = [(160, 240, "linear"), (160, 240, "cubic")]

CHILD = r"""
import json, sys, time
import numpy as np
import gpuresample as gr
import numba
cases, repeats = json.loads(sys.argv[1]), int(sys.argv[2])
times = {}
for n_in, n_out, interp in cases:
    x = np.random.default_rng(0).normal(size=(n_in,) * 3).astype(np.float32)
    gr.resample(x, (1, 1, 1), target_shape=(n_out,) * 3, interpolation=interp)
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        gr.resample(x, (1, 1, 1), target_shape=(n_out,) * 3, interpolation=interp)
        runs.append(time.perf_counter() - t)
    times[f"{n_in}->{n_out} {interp}"] = runs
print(json.dumps({"layer": numba.threading_layer(), "threads": numba.get_num_threads(), "times": times}))
"""


def run_layer(layer: str, threads: int | None, repeats: int, tbb_lib: str | None) -> dict:
    env = dict(os.environ, NUMBA_THREADING_LAYER=layer, GPURESAMPLE_CPU_LOOPS="numba")  # the Numba fallback's layers
    if threads:
        env["NUMBA_NUM_THREADS"] = str(threads)
    if layer == "tbb" and tbb_lib:
        env["LD_LIBRARY_PATH"] = tbb_lib + os.pathsep + env.get("LD_LIBRARY_PATH", "")
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(CASES), str(repeats)], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--tbb-lib", help="folder holding libtbb.so.12 (times the tbb layer)")
    parser.add_argument("--output", type=Path, default=RESULTS / "threading-layers.md")
    args = parser.parse_args(argv)
    configs = [("omp", None), ("workqueue", None), ("workqueue", 1)]
    if args.tbb_lib:
        configs.insert(2, ("tbb", None))
    run_layer("workqueue", None, 1, None)  # warm the on-disk cache
    samples = {c: {} for c in configs}
    for _ in range(args.rounds):
        for config in configs:
            result = run_layer(*config, args.repeats, args.tbb_lib)
            for case, runs in result["times"].items():
                samples[config].setdefault(case, []).extend(runs)
    load = os.getloadavg()
    lines = [
        "# Numba threading layers: cost of each fork-safety option",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; load average {load[0]:.1f} at the end (machine shared with other "
        f"sessions). Medians of {args.rounds} x {args.repeats} calls, ms, float32.",
        "",
        "| layer | threads | " + " | ".join(f"{a}³→{b}³ {i}" for a, b, i in CASES) + " |",
        "|---|---|" + "---|" * len(CASES),
    ]
    base = {case: statistics.median(runs) for case, runs in samples[configs[0]].items()}
    for (layer, threads), per_case in samples.items():
        cells = []
        for case, runs in per_case.items():
            m = statistics.median(runs)
            cells.append(f"{m * 1e3:.1f} ({m / base[case]:.2f}×)")
        lines.append(f"| {layer} | {threads or 'all'} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
