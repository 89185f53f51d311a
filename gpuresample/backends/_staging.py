"""Host data through a device backend with copies and compute overlapped.

For host input and output (``device="cuda"``, a NumPy array, memmap or Zarr array), each
slab goes through: host rows -> pinned buffer -> device (copy in) -> resample -> device ->
pinned buffer (copy out) -> ``out``. :class:`StagedPipeline` runs consecutive slabs on
:data:`STREAMS` CUDA streams with one pinned input and one pinned output buffer per
stream, so while the GPU computes slab ``k`` the copy engines move slab ``k - 1`` out and
slab ``k + 1`` in, and the host fills and empties pinned buffers in between.

Slabs finish in order, so :attr:`StagedPipeline.done_until` (output rows written to
``out``) tells an executor where to resume after an exception such as running out of
device memory. Device memory in flight is ``STREAMS`` input blocks and ``STREAMS`` output
blocks (plus each block's scratch), which is what the planner counts with ``staged=True``.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .. import _cupy
from ..arrays import read_rows

#: Streams (and pinned buffer pairs) in flight: one slab computes while the other's
#: copies run; more only adds device memory.
STREAMS = 2
#: Host threads for the copies between pinned buffers and the caller's arrays: one
#: thread's memcpy is slower than a PCIe 4/5 link.
HOST_COPY_THREADS = 4
#: Below this many bytes a host copy runs on the calling thread.
PARALLEL_COPY_BYTES = 8 << 20


class PinnedBuffer:
    """Page-locked host memory, viewed as arrays of any shape that fit."""

    def __init__(self, cupy, nbytes: int):
        self.nbytes = max(int(nbytes), 1)
        self.memory = cupy.cuda.alloc_pinned_memory(self.nbytes)

    def view(self, shape, dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        count = math.prod(shape)
        return np.frombuffer(self.memory, dtype, count).reshape(shape)


def copy_rows(dst: np.ndarray, src, pool: ThreadPoolExecutor | None) -> None:
    """``dst[...] = src[...]`` split along axis 0 over ``pool`` (NumPy copies release the GIL)."""
    if pool is None or dst.nbytes < PARALLEL_COPY_BYTES or dst.shape[0] < 2:
        dst[...] = src
        return
    bounds = np.linspace(0, dst.shape[0], min(HOST_COPY_THREADS, dst.shape[0]) + 1).astype(int)

    def part(i):
        dst[bounds[i]:bounds[i + 1]] = src[bounds[i]:bounds[i + 1]]

    list(pool.map(part, range(len(bounds) - 1)))


class _InFlight:
    """One slab between issue and completion, and what keeps its memory alive."""

    def __init__(self, start, stop, event, host_out, device_arrays):
        self.start, self.stop = start, stop
        self.event = event
        self.host_out = host_out
        self.device_arrays = device_arrays


class StagedPipeline:
    """Runs slabs of a host ``source`` through device ``backend`` into host ``out``.

    Parameters
    ----------
    backend : Backend
        A device backend (``kernels`` or ``cupyx``).
    source : array-like
        Host input sliceable along axis 0 (NumPy, memmap, Zarr, ...).
    out : array-like
        Host output accepting slice assignment along axis 0.
    cupy : module, optional
        CuPy (default); tests pass a stand-in.
    """

    def __init__(self, backend, source, out, cupy=None):
        self.backend = backend
        self.source = source
        self.out = out
        self.cupy = cupy if cupy is not None else _cupy.import_cupy()
        #: Output rows ``[0, done_until)`` of the slabs run so far are written to ``out``.
        self.done_until = None

    def run(self, tables, slabs, on_slab_done=None) -> None:
        """Resample ``slabs`` (output rows ``(start, stop)`` along axis 0, in order).

        ``tables`` are the whole-volume tables; each slab uses ``tables.slab(start, stop)``.
        ``on_slab_done()`` is called as each slab lands in ``out``.
        """
        slabs = list(slabs)
        if not slabs:
            return
        self.done_until = slabs[0][0]
        plans = [(start, stop, tables.slab(start, stop)) for start, stop in slabs]
        in_bytes = max(self._input_shape_bytes(t)[1] for _, _, t in plans)
        out_bytes = max(math.prod(t.output_shape) for _, _, t in plans) * np.dtype(self.out.dtype).itemsize
        streams = [self.cupy.cuda.Stream(non_blocking=True) for _ in range(STREAMS)]
        pinned_in = [PinnedBuffer(self.cupy, in_bytes) for _ in range(STREAMS)]
        pinned_out = [PinnedBuffer(self.cupy, out_bytes) for _ in range(STREAMS)]
        in_flight = [None] * STREAMS
        with ThreadPoolExecutor(HOST_COPY_THREADS) as pool:
            try:
                for k, (start, stop, block_tables) in enumerate(plans):
                    slot = k % STREAMS
                    self._finish(in_flight[slot], pool, on_slab_done)
                    in_flight[slot] = None
                    in_flight[slot] = self._issue(start, stop, block_tables, streams[slot], pinned_in[slot],
                                                  pinned_out[slot], pool)
                for k in range(len(plans), len(plans) + STREAMS):  # the rest, in slab order
                    slot = k % STREAMS
                    self._finish(in_flight[slot], pool, on_slab_done)
                    in_flight[slot] = None
            finally:
                for stream in streams:  # nothing may still write into pinned buffers we release
                    stream.synchronize()

    def _input_shape_bytes(self, block_tables):
        first, last = block_tables.input_rows
        shape = (last - first,) + tuple(self.source.shape[1:])
        return shape, math.prod(shape) * np.dtype(self.source.dtype).itemsize

    def _issue(self, start, stop, block_tables, stream, pinned_in, pinned_out, pool) -> _InFlight:
        """Fill the pinned input, then queue copy in, compute and copy out on ``stream``."""
        cupy = self.cupy
        first, last = block_tables.input_rows
        in_shape, _ = self._input_shape_bytes(block_tables)
        host_in = pinned_in.view(in_shape, self.source.dtype)
        copy_rows(host_in, read_rows(self.source, first, last, on_gpu=False), pool)  # shape checked
        host_out = pinned_out.view(block_tables.output_shape, self.out.dtype)
        with stream:
            device_in = cupy.empty(in_shape, self.source.dtype)
            device_in.set(host_in, stream=stream)
            device_out = cupy.empty(block_tables.output_shape, self.out.dtype)
            self.backend.resample_block(device_in, block_tables, device_out)
            device_out.get(stream=stream, out=host_out, blocking=False)
            event = stream.record()
        return _InFlight(start, stop, event, host_out, (device_in, device_out))

    def _finish(self, slab: _InFlight | None, pool, on_slab_done) -> None:
        """Wait for ``slab``'s copy out, then move it from pinned memory into ``out``."""
        if slab is None:
            return
        slab.event.synchronize()
        if isinstance(self.out, np.ndarray):  # NumPy and memmap: parallel copies into the view
            copy_rows(self.out[slab.start:slab.stop], slab.host_out, pool)
        else:  # Zarr and other array-likes take a slice assignment
            self.out[slab.start:slab.stop] = slab.host_out
        self.done_until = slab.stop
        if on_slab_done is not None:
            on_slab_done()


__all__ = ["StagedPipeline", "PinnedBuffer", "copy_rows", "STREAMS"]
