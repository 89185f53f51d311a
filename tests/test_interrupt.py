"""Ctrl-C stops a long compiled call within a fraction of a second.

The compiled CPU loops run with the GIL released on threads created per call; the calling
thread looks for a pending signal between its work items (``gr::parallel_for``), so SIGINT
raises ``KeyboardInterrupt`` soon after it arrives instead of after the whole call. Each
scenario runs a resample in a fresh interpreter that says when its first compiled loop
starts; the test sends SIGINT a moment later and times the exit. The same run left alone
must take several times as long, so a quick exit means the call was cut short.

After the interrupt the child checks that no thread is left running (Linux: its task
count is what it was before the call) and that the loops still give the same result.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest
from helpers import communicate_or_kill

from gpuresample.backends import _loops

pytestmark = [
    pytest.mark.skipif(not _loops.is_compiled(), reason="the compiled CPU loops are not built here"),
    pytest.mark.skipif(sys.platform == "win32", reason="SIGINT is a POSIX signal"),
]

#: Seconds between the first compiled loop starting and SIGINT: well inside the long call.
SIGNAL_AFTER_S = 0.5
#: Longest wait from SIGINT to the child's exit: the loops look every 50 ms and stop after
#: their items in flight; generous for a shared, loaded machine.
EXIT_WITHIN_S = 1.5
#: A scenario that hangs fails instead of stopping the suite.
SCENARIO_TIMEOUT_S = 600

CHILD = """
import os, sys, time
import numpy as np
import gpuresample as gr
from gpuresample.backends import _loops, _native

real = _loops.current()


class Announcing:
    # the compiled loops, saying on stdout when the first one starts
    started = False

    def __getattr__(self, name):
        function = getattr(real, name)
        if name not in _native.LOOPS:
            return function

        def call(*args, **kwargs):
            if not Announcing.started:
                Announcing.started = True
                print("loops", flush=True)
            return function(*args, **kwargs)
        return call


rng = np.random.default_rng(0)
{setup}
small = data[:9, :10, :11]
direction = options["target"].direction if "target" in options else None
small_target = gr.Grid((13, 7, 17), (0.7, 1.4, 0.6), direction=direction)
expected = gr.resample(small, gr.Grid(small.shape, (1, 1, 1)), target=small_target, interpolation=options["interpolation"])
_loops._current = Announcing()
tasks = len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else None
start = time.perf_counter()
try:
    gr.resample(data, gr.Grid(data.shape, (1, 1, 1)), **options)
except KeyboardInterrupt:
    if tasks is not None:
        left = len(os.listdir("/proc/self/task"))
        assert left == tasks, f"{{left - tasks}} threads still running after KeyboardInterrupt"
    again = gr.resample(small, gr.Grid(small.shape, (1, 1, 1)), target=small_target, interpolation=options["interpolation"])
    assert np.array_equal(again, expected, equal_nan=True), "the loops give another result after the interrupt"
    print("interrupted", flush=True)
    sys.exit(0)
print("finished", time.perf_counter() - start, flush=True)
"""

#: family -> setup lines (data, the resample's options): each runs for several seconds here
#: through one family of compiled loops, on every core (workers stopped and joined) or on one
#: (linear: only the calling thread works). The per-axis cubic path is left out: at sizes this
#: machine holds it ends within about a second (the oblique cubic loops are far slower).
SCENARIOS = {
    "label": """
data = rng.integers(0, 5, size=(160, 160, 160)).astype(np.uint8)
options = dict(target_shape=(400, 400, 400), interpolation="label")
""",
    "linear": """
if hasattr(os, "sched_setaffinity"):  # one thread: the caller's, checking between its own items
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
data = rng.random((160, 160, 160))
options = dict(target_shape=(960, 960, 960), interpolation="linear", dtype=np.uint8)
""",
    "oblique-cubic": """
data = rng.random((160, 160, 160), dtype=np.float32)
turn = np.deg2rad(20.0)
direction = [[1, 0, 0], [0, np.cos(turn), -np.sin(turn)], [0, np.sin(turn), np.cos(turn)]]
options = dict(target=gr.Grid((400, 400, 400), (0.4, 0.4, 0.4), direction=direction), interpolation="cubic")
""",
}


def start_child(family: str) -> subprocess.Popen:
    code = textwrap.dedent(CHILD).format(setup=SCENARIOS[family])
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    line = process.stdout.readline()
    if line.strip() != "loops":
        process.kill()
        _, stderr = process.communicate()
        pytest.fail(f"the child never reached the compiled loops: {line!r}\n{stderr[-3000:]}")
    return process


def finish(process: subprocess.Popen) -> tuple:
    return communicate_or_kill(process, SCENARIO_TIMEOUT_S)


@pytest.mark.parametrize("family", list(SCENARIOS))
def test_ctrl_c_stops_a_long_compiled_call_promptly(family):
    # the run left alone: its length in the loops
    process = start_child(family)
    started = time.perf_counter()
    stdout, stderr = finish(process)
    whole_run_s = time.perf_counter() - started
    assert process.returncode == 0 and "finished" in stdout, stderr[-3000:]

    # the same run, interrupted
    process = start_child(family)
    time.sleep(SIGNAL_AFTER_S)
    signalled = time.perf_counter()
    process.send_signal(signal.SIGINT)
    stdout, stderr = finish(process)
    exit_after_s = time.perf_counter() - signalled
    assert process.returncode == 0 and "interrupted" in stdout, (stdout, stderr[-3000:])
    assert exit_after_s < EXIT_WITHIN_S, f"exit {exit_after_s:.2f} s after SIGINT (whole run {whole_run_s:.1f} s)"
    # the interrupted run ended well before the whole run would have
    assert SIGNAL_AFTER_S + exit_after_s < 0.5 * whole_run_s, \
        f"exit {exit_after_s:.2f} s after SIGINT, {SIGNAL_AFTER_S} s into a run of {whole_run_s:.1f} s"
