"""Backend ``kernels``: our CUDA kernels (``kernels/*.cu``), compiled at run time by CuPy.

The kernels read the same sampling tables as every other backend and share their
arithmetic with the CPU loops (the ``kernels/*.cuh`` headers, docs/design.md section 2), so
results agree with the CPU backend bit for bit. This module is how to launch on a GPU:
:class:`CupyDevice` (CuPy ``RawModule`` functions, tables uploaded once per tables object
and kept in an LRU cache) and :class:`KernelsBackend`. What to launch is
:mod:`~gpuresample.backends.cuda.launch`; the sources and compile caches
:mod:`~gpuresample.backends.cuda.compile`; the tables' host form
:mod:`~gpuresample.backends.cuda.packing`. Importing it needs neither CuPy nor a GPU.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ... import _cupy
from ...interpolation import Interpolation
from ...tables import SamplingTables
from ..base import BackendUnavailable, DeviceBackend
from .compile import clear_compile_caches, kernel_function, source_dir
from .launch import Device, Launch, kernels_scratch_bytes, run_kernels, smooth_kernels
from .packing import packed_layout

#: Device table uploads kept per process (LRU): tables of a repeated (source grid, target
#: grid, interpolation) call are uploaded once; each entry is a few KB to a few MB.
TABLE_CACHE_ENTRIES = 64
#: (device id, id(tables), key) -> (tables, value), least recently used first: device
#: tables (with their pinned host buffer, the stream of the copy and an event after it) and
#: launch plans. The tables object is kept so its id is not reused while cached.
_table_cache = OrderedDict()


def clear_caches() -> None:
    """Forget compiled modules, kernel functions, device tables and the kernel source text.

    For tests (and after the kernel files changed on disk): the next call finds, reads and
    compiles the sources again and uploads its tables again.

    Examples
    --------
    >>> from gpuresample.backends.cuda import clear_caches
    >>> clear_caches()
    """
    clear_compile_caches()
    _table_cache.clear()


class CupyDevice(Device):
    """Runs launches on the current CUDA device with CuPy, compiling on first use."""

    def __init__(self, cupy, in_dtype, out_dtype, interpolation):
        self.cupy = cupy
        self.key = (np.dtype(in_dtype).str, np.dtype(out_dtype).str, Interpolation.parse(interpolation).value)

    def empty(self, shape, dtype):
        return self.cupy.empty(shape, dtype)

    def _upload_pinned(self, arrays) -> tuple:
        """One asynchronous host-to-device copy for all tables, from page-locked memory.

        Returns the device views, the pinned buffer (which must live until the copy has
        run: the table cache keeps it with the tables), the stream and an event after the copy.
        """
        offsets, total = packed_layout(arrays)
        pinned = np.frombuffer(self.cupy.cuda.alloc_pinned_memory(total), np.uint8, total)
        for array, offset in zip(arrays, offsets):
            pinned[offset:offset + array.nbytes] = array.reshape(-1).view(np.uint8)
        on_device = self.cupy.empty(total, np.uint8)
        stream = self.cupy.cuda.get_current_stream()
        on_device.set(pinned, stream=stream)
        views = [on_device[o:o + a.nbytes].view(a.dtype).reshape(a.shape) for a, o in zip(arrays, offsets)]
        return views, pinned, stream, stream.record()

    def upload(self, arrays) -> list:
        """Device copies of ``arrays`` (one pinned, asynchronous copy; see :meth:`upload_cached`)."""
        return self.upload_cached(arrays, ("uncached",), lambda: arrays)

    def cached(self, owner, key: tuple, make):
        """``make()`` kept per (device, ``owner`` object, ``key``) in an LRU cache."""
        cache_key = (self.cupy.cuda.runtime.getDevice(), id(owner), key)
        entry = _table_cache.get(cache_key)
        if entry is not None and entry[0] is owner:
            _table_cache.move_to_end(cache_key)
            return entry[1]
        value = make()
        _table_cache[cache_key] = (owner, value)
        while len(_table_cache) > TABLE_CACHE_ENTRIES:
            _table_cache.popitem(last=False)
        return value

    def upload_cached(self, owner, key: tuple, build) -> list:
        """Tables uploaded once per (device, ``owner`` object, ``key``), kept in an LRU cache.

        A later call on another stream waits for the copy on the device, not on the host.
        """
        views, _, stream, copied = self.cached(owner, ("upload",) + key, lambda: self._upload_pinned(build()))
        current = self.cupy.cuda.get_current_stream()
        if current != stream:
            current.wait_event(copied)
        return views

    def launch(self, launch: Launch) -> None:
        kernel_function(self.cupy, self.key, launch.name)(launch.grid, launch.block, launch.args)


class KernelsBackend(DeviceBackend):
    """CuPy arrays in, CuPy arrays out, through the CUDA kernels in ``kernels/*.cu``."""

    name = "kernels"

    def unavailable_reason(self) -> str | None:
        try:
            _cupy.import_cupy()
        except BackendUnavailable as exc:
            return str(exc)
        if source_dir() is None:
            return "CUDA kernel sources not found (kernels/ next to the package or gpuresample/_kernels/)"
        return None

    def resample_block(self, source, tables: SamplingTables, out) -> None:
        cupy = _cupy.import_cupy()
        device = CupyDevice(cupy, source.dtype, out.dtype, tables.interpolation)
        run_kernels(device, source, tables, out)

    def smooth(self, block, tables: SamplingTables, work):
        """The ``gr_table_pass`` launches of :func:`smooth_kernels` (the module of the block's
        dtype, as output dtype too: the smoothing kernels do not depend on it)."""
        device = CupyDevice(_cupy.import_cupy(), block.dtype, block.dtype, tables.interpolation)
        return smooth_kernels(device, block, tables, work)

    def scratch_bytes(self, tables: SamplingTables, in_dtype, out_dtype) -> int:
        return kernels_scratch_bytes(tables, in_dtype, out_dtype)


__all__ = ["KernelsBackend", "CupyDevice", "clear_caches", "TABLE_CACHE_ENTRIES"]
