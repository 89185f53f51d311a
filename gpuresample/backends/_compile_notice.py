"""A one-line notice on stderr when the CPU loops are about to be compiled.

Numba compiles a loop on its first use in an environment whose on-disk cache lacks it
(a fresh install, a new dtype or interpolation, a new Numba): seconds for linear and
nearest, tens of seconds for cubic on a small machine (``docs/notes-first-call.md``).
Numba announces each real compilation (not a cache load) through its ``numba:compile``
event; the first one for a loop of ``gpuresample`` in a process prints one line, so a
user who sees a pause knows why and that it happens once.
"""

from __future__ import annotations

import sys
import threading

from numba.core import event

#: Modules whose compilation is announced (the CPU loops).
ANNOUNCED_MODULES = ("gpuresample.backends._cpu_loops",)
NOTICE = ("gpuresample: compiling the CPU loops for this kind of input (first use in this environment; "
          "seconds, up to a minute for cubic on a small machine; cached on disk for later runs)")

_lock = threading.Lock()
_announced = False


class _CompileNotice(event.Listener):
    """Prints :data:`NOTICE` once per process, when one of our loops starts compiling."""

    def on_start(self, ev) -> None:
        global _announced
        if _announced:
            return
        dispatcher = ev.data.get("dispatcher") if isinstance(ev.data, dict) else None
        module = getattr(getattr(dispatcher, "py_func", None), "__module__", "")
        if module not in ANNOUNCED_MODULES:
            return
        with _lock:
            if _announced:
                return
            _announced = True
        print(NOTICE, file=sys.stderr, flush=True)

    def on_end(self, ev) -> None:
        pass


def reset() -> None:
    """Announce the next compilation again (for tests)."""
    global _announced
    _announced = False


event.register("numba:compile", _CompileNotice())
