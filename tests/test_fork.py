"""Forked workers after use in the parent (multiprocessing.Pool, torch DataLoader) never hang.

The compiled CPU loops create their threads inside each call and join them before returning
(docs/design.md §9), so a child forked after the parent used them finds no pool to inherit.

Each scenario runs in a fresh interpreter in its own process group with a timeout, so a
hang fails the test (and its workers are killed) instead of stopping the suite.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from helpers import communicate_or_kill

from gpuresample.backends import _loops

#: Seconds a scenario may take: a few calls on small arrays on a busy CI machine; a hang
#: (what this guards against) lasts forever.
SCENARIO_TIMEOUT_S = 180

PARENT_FIRST = """
import sys, numpy as np, gpuresample as gr
from gpuresample.backends import _loops
x = np.random.default_rng(0).standard_normal((20, 22, 24)).astype(np.float32)
def job(i):
    return gr.resample(x + i, (1.0, 1.0, 1.0), target_shape=(12, 30, 16),
                       interpolation=("linear", "cubic", "nearest")[i % 3])
expected = [job(i) for i in range(6)]          # the parent uses the CPU backend first
print("compiled loops" if _loops.is_compiled() else "array path")
"""


def run_scenario(body: str) -> None:
    """Run ``PARENT_FIRST + body`` (it prints "ok"); kill the whole process group when it
    outlives the timeout."""
    process = subprocess.Popen([sys.executable, "-c", PARENT_FIRST + textwrap.dedent(body)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    stdout, stderr = communicate_or_kill(process, SCENARIO_TIMEOUT_S, " after use in the parent")
    assert process.returncode == 0 and "ok" in stdout, stderr[-3000:]
    # the loops this process runs ran there: the compiled ones wherever they are built
    assert ("compiled loops" if _loops.is_compiled() else "array path") in stdout, stdout


def test_fork_pool_after_use_in_parent():
    run_scenario("""
        import multiprocessing
        with multiprocessing.get_context("fork").Pool(2) as pool:
            got = pool.map(job, range(6))
        assert all(np.array_equal(a, b) for a, b in zip(got, expected))
        print("ok")
    """)


def test_torch_dataloader_workers_after_use_in_parent():
    pytest.importorskip("torch")
    run_scenario("""
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
    """)
