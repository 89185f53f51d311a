"""Which CPU loops run: the ahead-of-time library (``_native``) or Numba's (``_cpu_loops``).

Both have the same functions with the same signatures and give the same bits; the native
library is the default (no compiling at run time, no threading layer, fork-safe), Numba
the fallback where the library cannot be built (see ``_native``'s module doc). The
oblique loops (``_affine_loops``) are Numba's either way.
"""

from __future__ import annotations

import sys


def current():
    """The module whose loops run (``_native`` or ``_cpu_loops``), chosen once per process."""
    global _current
    if _current is None:
        from . import _native

        if _native.library() is not None:
            _current = _native
        else:
            from . import _cpu_loops

            _current = _cpu_loops
    return _current


_current = None


def is_native() -> bool:
    """Whether the ahead-of-time loops run."""
    from . import _native

    return current() is _native


def threads() -> int:
    """Threads the CPU loops run on (the first dimension of their per-thread scratch)."""
    if is_native():
        from . import _native

        return _native.threads()
    import numba

    from ._threading import start_threads

    start_threads()
    return numba.get_num_threads()


def numba_threads() -> int:
    """Threads Numba's parallel loops run on (the oblique loops' scratch), its layer started."""
    import numba

    from ._threading import start_threads

    start_threads()
    return numba.get_num_threads()


def run_serialised(work, *args, numba: bool = False):
    """``work(*args)``: directly with the native loops; through ``_threading.run_serialised``
    (Numba's layer may not be entered by two threads at once) when Numba's loops run, or
    when ``numba`` says ``work`` calls Numba's loops anyway (the oblique ones)."""
    if not numba and is_native():
        return work(*args)
    from ._threading import run_serialised as serialised

    return serialised(work, *args)


def clear_caches() -> None:
    """Choose the loops again at the next call (tests switch ``GPURESAMPLE_CPU_LOOPS``) and
    forget whether Numba's blocks may run concurrently."""
    global _current
    _current = None
    from . import _native

    _native.library.cache_clear()
    threading = sys.modules.get(__package__ + "._threading")
    if threading is not None:
        threading.clear_caches()
