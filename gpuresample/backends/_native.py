"""The compiled CPU loops: the extension module ``gpuresample._core``.

``_core`` is built with the package (scikit-build-core, ``CMakeLists.txt``): C++17 drivers in
``gpuresample/_native/*.cpp`` over the arithmetic of ``kernels/*.cuh``, the same headers the
CUDA kernels include (docs/design.md sections 2 and 3). Each loop checks its arguments at
the border (``TypeError``/``ValueError``) and releases the GIL while it runs.

This module re-exports the loops under their usual names (``separable3``, ``label3``,
``gather_clamped``, ``spline_filter_axis0``, ``gather_planes``, ``filter_planes``,
``causal_initial_sum``, ``causal_segment``, ``anticausal_segment``, ``filter_from_states``
and the oblique ``affine_nearest``, ``affine_linear``, ``affine_cubic``, ``affine_label``).
:func:`library` is the module, or None where it is missing or does not load (a checkout
run in place without a build); :func:`unavailable_reason` then says why, in one line.

Threads: each call creates its threads and joins them before returning, so there is no
pool to break in a forked child and calls from several threads run side by side.
``GPURESAMPLE_NUM_THREADS`` sets how many; by default every core this process may run on.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import struct

#: Threads the loops use (default: the cores this process may run on).
THREADS_VARIABLE = "GPURESAMPLE_NUM_THREADS"
#: The extension module.
MODULE = "gpuresample._core"
#: The loops, by name; those that take ``threads=`` get :func:`threads` (the others size
#: their threads by their per-thread scratch, which the caller allocates for threads()).
LOOPS = ("separable3", "label3", "gather_clamped", "spline_filter_axis0", "gather_planes", "filter_planes",
         "causal_initial_sum", "causal_segment", "anticausal_segment", "filter_from_states",
         "affine_nearest", "affine_linear", "affine_cubic", "affine_label")
THREADED = frozenset({"label3", "gather_clamped", "causal_initial_sum",
                      "affine_nearest", "affine_linear", "affine_cubic", "affine_label"})


def _damaged(path: str) -> str | None:
    """Why the ELF shared object at ``path`` cannot be loaded whole, or None if it can.

    A file cut short can keep a valid header while its segments reach past the end; the
    loader maps them anyway and the first touch of a missing page kills the process with
    SIGBUS. Checking that every loadable segment lies inside the file turns that into an
    ImportError. Files that are no 64-bit ELF are left to the loader.
    """
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as error:
        return f"cannot read {path}: {error}"
    if len(data) < 64:
        return f"{path} is truncated ({len(data)} bytes)"
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return None
    endian = "<" if data[5] == 1 else ">"
    (phoff,) = struct.unpack_from(endian + "Q", data, 0x20)
    (shoff,) = struct.unpack_from(endian + "Q", data, 0x28)
    phentsize, phnum, shentsize, shnum = struct.unpack_from(endian + "HHHH", data, 0x36)
    if phoff + phentsize * phnum > len(data) or shoff + shentsize * shnum > len(data):
        return f"{path} is truncated ({len(data)} bytes, its headers reach past the end)"
    for k in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from(endian + "IIQQQQ", data, phoff + k * phentsize)
        if p_type == 1 and p_offset + p_filesz > len(data):  # PT_LOAD
            return f"{path} is truncated ({len(data)} bytes, a segment reaches byte {p_offset + p_filesz})"
    return None


@functools.cache
def _load() -> tuple:
    """``(module, None)``, or ``(None, reason)`` when the extension is missing or broken."""
    try:
        spec = importlib.util.find_spec(MODULE)
    except (ImportError, ValueError) as error:
        return None, f"{MODULE} cannot be found: {error}"
    if spec is None or spec.origin is None:
        return None, f"{MODULE} is not built (a checkout used in place; pip install builds it)"
    reason = _damaged(spec.origin)
    if reason is not None:
        return None, f"{MODULE} does not load: {reason}"
    try:
        module = importlib.import_module(MODULE)
    except ImportError as error:
        text = " ".join(str(error).split())
        return None, f"{MODULE} does not load: {text}"
    return module, None


@functools.cache
def library():
    """The extension module, or None where it is missing or does not load."""
    return _load()[0]


def unavailable_reason() -> str | None:
    """Why :func:`library` is None, in one line (None when it is there)."""
    return _load()[1]


def threads() -> int:
    """Threads the loops run on: ``GPURESAMPLE_NUM_THREADS``, else the cores this process may use."""
    value = os.environ.get(THREADS_VARIABLE, "").strip()
    if value:
        try:
            count = int(value)
        except ValueError:
            raise ValueError(f"{THREADS_VARIABLE} must be a positive integer, not {value!r}") from None
        if count < 1:
            raise ValueError(f"{THREADS_VARIABLE} must be a positive integer, not {value!r}")
        return count
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _threaded(function):
    @functools.wraps(function)
    def call(*args, **kwargs):
        kwargs.setdefault("threads", threads())
        return function(*args, **kwargs)
    return call


def __getattr__(name: str):
    """The loops, from the extension module (see the module doc)."""
    if name not in LOOPS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = library()
    if module is None:
        raise AttributeError(f"{name}: the compiled CPU loops are not available ({unavailable_reason()})")
    try:
        function = getattr(module, name)
    except AttributeError:
        raise AttributeError(f"{MODULE} has no loop {name!r}") from None
    function = _threaded(function) if name in THREADED else function
    globals()[name] = function  # later look-ups skip __getattr__
    return function
