"""First use of the CPU loops: the compiled module is imported, nothing is compiled, built or
cached at run time, and nothing is printed. (Where the module is missing, one line says so and
the array path runs: ``test_array_path.py``.)"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gpuresample.backends import _native

#: Seconds for the first call in a fresh process on a busy CI machine.
FIRST_CALL_TIMEOUT_S = 300

CALL = """
import sys
import numpy as np, gpuresample as gr
x = np.arange(6 * 7 * 8, dtype=np.float32).reshape(6, 7, 8)
for interpolation in ("nearest", "linear", "cubic"):
    gr.resample(x, (1.0, 1.0, 1.0), target_shape=(9, 5, 12), interpolation=interpolation)
gr.resample((x > 100).astype(np.uint8), (1.0, 1.0, 1.0), target_shape=(4, 5, 6), interpolation="label")
from gpuresample.backends import _loops
print(_loops.is_compiled(), "numba" in sys.modules)
"""


@pytest.mark.skipif(_native.library() is None, reason="gpuresample._core is not built")
def test_first_call_says_nothing_and_compiles_nothing(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), GPURESAMPLE_CPU_LOOPS="native")
    done = subprocess.run([sys.executable, "-c", CALL], env=env, capture_output=True, text=True,
                          timeout=FIRST_CALL_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["True", "False"]  # the compiled loops ran; Numba was never imported
    assert done.stderr == ""
    assert not any(home.iterdir())  # no cache, no build folder, nothing written
