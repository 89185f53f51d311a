"""Forked workers after use in the parent (multiprocessing.Pool, torch DataLoader) never hang.

Each scenario runs in a fresh interpreter in its own process group with a timeout, so a
hang fails the test (and its workers are killed) instead of stopping the suite.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

#: Seconds a scenario may take: a few calls on small arrays, plus Numba's compiling and a
#: busy CI machine; a hang (what this guards against) lasts forever.
SCENARIO_TIMEOUT_S = 180

PARENT_FIRST = """
import sys, numpy as np, gpuresample as gr
from gpuresample.backends import _loops
x = np.random.default_rng(0).standard_normal((20, 22, 24)).astype(np.float32)
def job(i):
    return gr.resample(x + i, (1.0, 1.0, 1.0), target_shape=(12, 30, 16),
                       interpolation=("linear", "cubic", "nearest")[i % 3])
expected = [job(i) for i in range(6)]          # the parent uses the CPU backend first
if _loops.is_native():
    print("loops native", "numba imported" if "numba" in sys.modules else "")
else:
    import numba
    print("layer", numba.threading_layer())
"""

#: Both sets of CPU loops: the native library (threads per call) and Numba's (its fork-safe layer).
LOOPS = pytest.mark.parametrize("loops", ["native", "numba"])


def run_scenario(body: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``PARENT_FIRST + body``; kill the whole process group when it outlives the timeout."""
    process = subprocess.Popen([sys.executable, "-c", PARENT_FIRST + textwrap.dedent(body)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, **(env or {})}, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=SCENARIO_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"hung for {SCENARIO_TIMEOUT_S} s after use in the parent:\n{stdout}\n{stderr[-3000:]}")
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def without_layer_choice(loops: str) -> dict:
    env = dict(os.environ, GPURESAMPLE_CPU_LOOPS=loops)
    env.pop("NUMBA_THREADING_LAYER", None)
    return env


def check_loops(done, loops: str) -> None:
    if loops == "native":
        assert "loops native" in done.stdout and "numba imported" not in done.stdout, done.stdout
    else:
        assert "layer omp" not in done.stdout and "layer" in done.stdout, done.stdout


@LOOPS
def test_fork_pool_after_use_in_parent(loops):
    done = run_scenario("""
        import multiprocessing
        with multiprocessing.get_context("fork").Pool(2) as pool:
            got = pool.map(job, range(6))
        assert all(np.array_equal(a, b) for a, b in zip(got, expected))
        print("ok")
    """, env=without_layer_choice(loops))
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-3000:]
    check_loops(done, loops)


@LOOPS
def test_torch_dataloader_workers_after_use_in_parent(loops):
    pytest.importorskip("torch")
    done = run_scenario("""
        import torch
        from torch.utils.data import DataLoader, Dataset

        class Resampled(Dataset):
            def __len__(self):
                return 6
            def __getitem__(self, i):
                return torch.from_numpy(job(i))

        loader = DataLoader(Resampled(), batch_size=None, num_workers=2, multiprocessing_context="fork")
        got = [batch.numpy() for batch in loader]
        assert all(np.array_equal(a, b) for a, b in zip(got, expected))
        print("ok")
    """, env=without_layer_choice(loops))
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-3000:]
    check_loops(done, loops)


def test_user_layer_choice_wins_and_openmp_child_gets_an_error():
    """Numba's loops: NUMBA_THREADING_LAYER=omp is honoured; a child forked after that is told
    why, not killed."""
    done = run_scenario("""
        import multiprocessing
        assert numba.threading_layer() == "omp"
        with multiprocessing.get_context("fork").Pool(1) as pool:
            try:
                pool.map(job, range(2))
            except RuntimeError as exc:
                assert "forked from a process" in str(exc) and "NUMBA_THREADING_LAYER" in str(exc), exc
                print("refused")
    """, env={"NUMBA_THREADING_LAYER": "omp", "GPURESAMPLE_CPU_LOOPS": "numba"})
    assert done.returncode == 0 and "refused" in done.stdout, done.stderr[-3000:]
