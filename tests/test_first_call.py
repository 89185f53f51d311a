"""First use of the CPU loops: silence with the native library; with Numba's, a one-line notice on
stderr when they compile and silence when cached."""

from __future__ import annotations

import os
import subprocess
import sys

from gpuresample.backends._compile_notice import NOTICE

#: Seconds for a cold first call: one loop compiles (a few seconds; a busy CI machine is slower).
COLD_CALL_TIMEOUT_S = 600

CALL = """
import numpy as np, gpuresample as gr
x = np.arange(6 * 7 * 8, dtype=np.float32).reshape(6, 7, 8)
gr.resample(x, (1.0, 1.0, 1.0), target_shape=(9, 5, 12), interpolation="linear")
gr.resample(x, (1.0, 1.0, 1.0), target_shape=(4, 5, 6), interpolation="linear")
print("done")
"""


def run_with_cache(cache_dir, loops="numba") -> subprocess.CompletedProcess:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), GPURESAMPLE_CPU_LOOPS=loops)
    return subprocess.run([sys.executable, "-c", CALL], env=env, capture_output=True, text=True,
                          timeout=COLD_CALL_TIMEOUT_S)


def test_compiling_is_announced_once_and_a_warm_cache_is_silent(tmp_path):
    cold = run_with_cache(tmp_path)
    assert cold.returncode == 0 and "done" in cold.stdout, cold.stderr[-3000:]
    assert cold.stderr.splitlines() == [NOTICE]
    warm = run_with_cache(tmp_path)
    assert warm.returncode == 0 and "done" in warm.stdout, warm.stderr[-3000:]
    assert warm.stderr == ""


def test_native_loops_first_call_says_nothing_and_compiles_nothing(tmp_path):
    done = run_with_cache(tmp_path, loops="native")
    assert done.returncode == 0 and "done" in done.stdout, done.stderr[-3000:]
    assert done.stderr == ""
    assert not any(tmp_path.iterdir())  # Numba cached nothing: it never ran
