#!/usr/bin/env bash
# Before/after GPU measurement of the CUDA kernels in one short run, for a lent GPU.
#
#   bash benchmarks/gpu_probe.sh [OLD_REF]
#
# From the project root on a machine with CuPy and a CUDA device:
#   1. gpu_bench.py --quick on OLD_REF (default 887ac63: an earlier version of the kernels), taken
#      with `git archive` into $OUT/old (or from $OLD_DIR when there is no .git);
#   2. gpu_bench.py --quick on this tree;
#   3. tests/test_gpu.py -x on this tree (parity with the CPU on the device).
# Reports land in $OUT (default /tmp/gpu_probe; on the lent machine use OUT=$OUT). A cold
# machine compiles every kernel module with NVRTC first: expect a few minutes in all.
# FULL=1 also runs the whole benchmark on this tree and writes benchmarks/results/gpu-<device>.md.
set -u
OLD_REF=${1:-887ac63}
OUT=${OUT:-/tmp/gpu_probe}
PY=${PYTHON:-python3}
STEP_TIMEOUT=${STEP_TIMEOUT:-240}
mkdir -p "$OUT"
# The CPU side of every comparison: the lent machine reaches no package registry, so the C++
# module (scikit-build-core and nanobind at build time) is not built there; this checkout,
# run in place, takes the CPU backend's NumPy/SciPy array path instead, which gives the
# compiled loops' results bit for bit (tests/test_native.py) and says so in one line.
export GPURESAMPLE_CPU_LOOPS=array
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv 2>&1 | tee "$OUT/device.txt"

OLD=${OLD_DIR:-$OUT/old}
if [ -z "${OLD_DIR:-}" ]; then
    rm -rf "$OLD" && mkdir -p "$OLD"
    git archive "$OLD_REF" | tar -x -C "$OLD" || echo "could not extract $OLD_REF: the old run is skipped"
fi
if [ -f "$OLD/benchmarks/gpu_bench.py" ]; then
    echo "== old kernels ($OLD_REF)"
    (cd "$OLD" && PYTHONPATH=. timeout "$STEP_TIMEOUT" "$PY" benchmarks/gpu_bench.py --quick --out "$OUT/before") \
        > "$OUT/before.log" 2>&1; echo "exit $?"; tail -n 40 "$OUT/before.log"
fi

echo "== new kernels (this tree)"
PYTHONPATH=. timeout "$STEP_TIMEOUT" "$PY" benchmarks/gpu_bench.py --quick --out "$OUT/after" \
    > "$OUT/after.log" 2>&1; echo "exit $?"; tail -n 60 "$OUT/after.log"

echo "== GPU tests (this tree)"
PYTHONPATH=. timeout "$STEP_TIMEOUT" "$PY" -m pytest -x -q tests/test_gpu.py > "$OUT/tests.log" 2>&1
echo "exit $?"; tail -n 15 "$OUT/tests.log"

if [ "${FULL:-0}" = "1" ]; then
    echo "== full benchmark (this tree)"
    PYTHONPATH=. "$PY" benchmarks/gpu_bench.py > "$OUT/full.log" 2>&1; echo "exit $?"; tail -n 80 "$OUT/full.log"
fi
