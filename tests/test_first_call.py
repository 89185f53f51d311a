"""First use of the CPU loops in a process: the compiled loops say nothing on stderr.

(Where they are missing, one line says so: ``test_array_path.py``.)
"""

from __future__ import annotations

import os
import subprocess
import sys

#: Seconds for a first call in a fresh interpreter on a busy CI machine.
FIRST_CALL_TIMEOUT_S = 300

CALL = """
import numpy as np, gpuresample as gr
from gpuresample.backends import _loops
x = np.arange(6 * 7 * 8, dtype=np.float32).reshape(6, 7, 8)
gr.resample(x, (1.0, 1.0, 1.0), target_shape=(9, 5, 12), interpolation="linear")
gr.resample(x, (1.0, 1.0, 1.0), target_shape=(4, 5, 6), interpolation="cubic")
assert _loops.is_compiled()
print("done")
"""


def test_compiled_loops_first_call_says_nothing():
    env = dict(os.environ, GPURESAMPLE_CPU_LOOPS="native")
    done = subprocess.run([sys.executable, "-c", CALL], env=env, capture_output=True, text=True,
                          timeout=FIRST_CALL_TIMEOUT_S)
    assert done.returncode == 0 and "done" in done.stdout, done.stderr[-3000:]
    assert done.stderr == ""
