"""Which CPU loops run: the ahead-of-time library (``_native``) or Numba's (``_cpu_loops``).

Both have the same functions with the same signatures and give the same bits; the native
library is the default (no compiling at run time, no threading layer, fork-safe), Numba
the fallback where the library cannot be built (see ``_native``'s module doc). The same
holds for the oblique loops (``_native`` or ``_affine_loops``): :func:`affine`.
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


def affine():
    """The module whose oblique loops run: ``_native``, or Numba's ``_affine_loops``."""
    if is_native():
        return current()
    from . import _affine_loops

    return _affine_loops


def run_serialised(work, *args):
    """``work(*args)``: directly with the native loops; with Numba's through
    ``_threading.run_serialised`` (its layer may not be entered by two threads at once)."""
    if is_native():
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
