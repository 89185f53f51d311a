"""Which Numba threading layer runs the CPU loops: a fork-safe one unless the user chose.

GNU OpenMP (Numba's ``omp`` layer, its first pick on Linux when TBB is absent) cannot be
used again in a child made by ``fork()`` once the parent has used it: the child's first
parallel loop kills it ("fork() called from a process already using GNU OpenMP"). A
``multiprocessing.Pool`` (fork is Linux's default) or a PyTorch ``DataLoader`` with
workers then waits forever for results that never come. So, unless ``NUMBA_THREADING_LAYER``
is set, the CPU backend asks Numba for its ``forksafe`` choice before Numba starts any
threads: TBB when the ``tbb`` package is installed (fork- and thread-safe), else
``workqueue`` (fork-safe; the backend then runs blocks one at a time, see ``cpu.py``).
``benchmarks/results/threading-layers.md`` has what that costs.

If Numba's threads were already started with GNU OpenMP (the user forced ``omp``, or other
code ran a parallel Numba function first), a forked child that calls the backend gets a
``RuntimeError`` saying so instead of dying.
"""

from __future__ import annotations

import os
import threading

import numba
from numba.core import config
from numba.np.ufunc import parallel

#: Numba's name for "the fastest layer that survives fork()": tbb, else workqueue on Linux.
FORK_SAFE_LAYER = "forksafe"
#: The environment variable through which a user picks Numba's layer; it always wins.
LAYER_VARIABLE = "NUMBA_THREADING_LAYER"
#: The layer that cannot run in a forked child once its parent used it (GNU OpenMP on Linux).
FORK_UNSAFE_LAYER = "omp"

_lock = threading.Lock()
_started = False
#: Set in a forked child whose parent had started Numba's OpenMP threads.
_forked_from_openmp = False


def start_threads() -> None:
    """Start Numba's threads once, with the fork-safe layer unless the user chose one."""
    global _started
    if _started:
        _refuse_openmp_after_fork()
        return
    with _lock:
        if not _started:
            if not os.environ.get(LAYER_VARIABLE) and not parallel._is_initialized:
                config.THREADING_LAYER = FORK_SAFE_LAYER
            numba.get_num_threads()  # launches the layer now, before config can be reloaded
            _started = True
    _refuse_openmp_after_fork()


def _refuse_openmp_after_fork() -> None:
    if _forked_from_openmp:
        raise RuntimeError(
            "the CPU backend cannot run in this process: it was forked from a process that had "
            "started Numba's GNU OpenMP threads, which abort in a forked child. Leave "
            f"{LAYER_VARIABLE} unset (gpuresample then picks a fork-safe layer), set it to "
            "'workqueue' or 'tbb', or start workers with the 'spawn' or 'forkserver' method")


def _after_fork_in_child() -> None:
    global _forked_from_openmp
    if parallel._is_initialized and numba.threading_layer() == FORK_UNSAFE_LAYER:
        _forked_from_openmp = True


os.register_at_fork(after_in_child=_after_fork_in_child)


# ---------------------------------------------------------------------------------------
# Concurrent callers (thread pools, Dask's threaded scheduler, data loaders)
# ---------------------------------------------------------------------------------------

#: Numba's threading layer that must not be entered by two threads at once (it aborts
#: the process). Dask's threaded schedulers, thread pools and data loaders call the
#: backend from several threads.
UNSAFE_THREADING_LAYER = "workqueue"

#: Re-entrant: serialised work may call serialised work (the cubic pre-pass inside a block).
_serial = threading.RLock()
#: None until the first block has run; then whether blocks may run concurrently.
_concurrent = None


def clear_caches() -> None:
    """Forget whether blocks may run concurrently (asked again after the next call)."""
    global _concurrent
    _concurrent = None


def run_serialised(work, *args):
    """``work(*args)`` (compiled parallel loops), alone while Numba's threading layer needs it.

    What :meth:`~gpuresample.backends.cpu.CpuBackend.resample_block` runs its blocks through, and anything else that
    calls the parallel loops from threads (the cubic pre-pass in Dask tasks and executors):
    the first call runs alone and starts the layer; later calls run concurrently unless the
    layer is ``workqueue``, which aborts on concurrent use.
    """
    global _concurrent
    start_threads()
    if _concurrent:
        return work(*args)
    with _serial:
        result = work(*args)
        if _concurrent is None:
            try:
                _concurrent = numba.threading_layer() != UNSAFE_THREADING_LAYER
            except ValueError:  # no parallel loop has run yet; ask again next time
                pass
        return result
