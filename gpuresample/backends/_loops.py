"""Which CPU loops run: the compiled ones, or none (the NumPy/SciPy array path).

The compiled CPU loops come from ``_native.library()``: a module of loop functions
(``separable3``, ``label3``, ``gather_clamped``, ``spline_filter_axis0``, the streamed cubic
and pre-pass loops, ``filter_from_states``, ``affine_nearest``/``linear``/``cubic``/``label``),
or None where they cannot be loaded. Without them the CPU backend computes every block with
the array code the cupyx backend runs (``_array``, ``_affine_xp``) on NumPy and
``scipy.ndimage``, and says so once per process on stderr; nearest, linear, label and cubic
give the compiled loops' bits there too (docs/design.md §2), only slower.

``GPURESAMPLE_CPU_LOOPS`` chooses: unset or ``auto`` (the compiled loops where they load),
``native`` (they must load: an error saying why otherwise), ``array`` (the array path, e.g.
to test it; no notice).
"""

from __future__ import annotations

import os
import sys
import threading

#: Selects the CPU loops: "auto" (default), "native" or "array".
LOOPS_VARIABLE = "GPURESAMPLE_CPU_LOOPS"
CHOICES = ("auto", "native", "array")
#: The line on stderr (once per process) when the compiled loops are missing; ``{reason}`` says why.
NOTICE = ("gpuresample: the compiled CPU loops are not available ({reason}); "
          "the CPU backend runs the slower NumPy/SciPy array path")

_UNSET = object()
_current = _UNSET
_announced = False
_lock = threading.Lock()  # threads calling at once choose (and announce) once


def choice() -> str:
    """The value of ``GPURESAMPLE_CPU_LOOPS`` (``ValueError`` for an unknown one)."""
    value = os.environ.get(LOOPS_VARIABLE, "").strip().lower() or "auto"
    if value not in CHOICES:
        allowed = ", ".join(repr(c) for c in CHOICES)
        raise ValueError(f"{LOOPS_VARIABLE} must be one of {allowed}, not {value!r}")
    return value


def _unavailable_reason(native) -> str:
    reason = getattr(native, "unavailable_reason", None)
    return (reason() if reason is not None else None) or "the compiled module could not be loaded"


def _load():
    """The compiled loops' module, or None (see the module doc)."""
    global _announced
    wanted = choice()
    if wanted == "array":
        return None
    from . import _native

    library = _native.library()
    if library is not None:
        # the module of loop functions; a library handle is wrapped by _native's functions
        return library if hasattr(library, "separable3") else _native
    reason = _unavailable_reason(_native)
    if wanted == "native":
        raise RuntimeError(f"{LOOPS_VARIABLE}=native, but the compiled CPU loops are not available: {reason}")
    if not _announced:
        _announced = True
        print(NOTICE.format(reason=reason), file=sys.stderr, flush=True)
    return None


def current():
    """The module whose compiled loops run, or None for the array path; chosen once per process."""
    global _current
    if _current is _UNSET:
        with _lock:
            if _current is _UNSET:
                _current = _load()
    return _current


def is_compiled() -> bool:
    """Whether the compiled loops run (else the array path)."""
    return current() is not None


def threads() -> int:
    """Threads one block runs on: the compiled loops' count (the first dimension of their
    per-thread scratch), 1 on the array path."""
    loops = current()
    if loops is None:
        return 1
    count = getattr(loops, "threads", None)
    if count is None:
        from . import _native

        count = _native.threads
    return count()


def clear_caches() -> None:
    """Choose the loops again at the next call (tests switch ``GPURESAMPLE_CPU_LOOPS``). The
    notice stays once per process."""
    global _current
    _current = _UNSET
    from . import _native

    cache_clear = getattr(_native.library, "cache_clear", None)
    if cache_clear is not None:
        cache_clear()


__all__ = ["LOOPS_VARIABLE", "CHOICES", "NOTICE", "choice", "current", "is_compiled", "threads", "clear_caches"]
