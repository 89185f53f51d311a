"""Host data through a device backend with copies and compute overlapped.

For host input and output (``device="cuda"``, a NumPy array, memmap or Zarr array), each
slab goes through: host rows -> pinned buffer -> device (copy in) -> resample -> device ->
pinned buffer (copy out) -> ``out``. :class:`StagedPipeline` runs consecutive slabs on
:data:`STREAMS` CUDA streams with one pinned input and one pinned output buffer per
stream, so while the GPU computes slab ``k`` the copy engines move slab ``k - 1`` out and
slab ``k + 1`` in. On the host, filling slab ``k + 1``'s pinned input starts as soon as
slab ``k`` is queued (and its buffer's last copy to the device is done, not the whole
slab), and runs beside emptying a finished slab's pinned output into ``out``: two stage
threads, each splitting its copy over :data:`HOST_COPY_THREADS`. (Before, the host filled
the next input only after the previous slab of that stream had finished and been copied
out, one copy after the other.) :attr:`StagedPipeline.stage_seconds` times each host stage.

Slabs finish in order, so :attr:`StagedPipeline.done_until` (output rows written to
``out``) tells an executor where to resume after an exception such as running out of
device memory. Device memory in flight is ``STREAMS`` input blocks and ``STREAMS`` output
blocks (plus each block's scratch), which is what the planner counts with ``staged=True``.
"""

from __future__ import annotations

import math
import time
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
#: Host stage tasks at once: filling the next slab's pinned input and emptying a finished
#: slab's pinned output run side by side (each splits its copy over the copy threads).
STAGE_THREADS = 2
#: Host-side stages timed in :attr:`StagedPipeline.stage_seconds` (seconds, summed over slabs;
#: stages overlap, so they do not add up to the wall time).
STAGES = ("host rows to pinned", "pinned to out", "wait for the device")


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
        self.copied_in = None  # recorded after the copy in: the pinned input may be refilled
        self.host_out = host_out
        self.device_arrays = device_arrays


class _Plans:
    """``(start, stop, tables)`` of each slab, its tables made when first asked (in slab order)
    and let go two slabs later: a cubic slab's prefilter states exist only around its run."""

    def __init__(self, slabs, slab_tables):
        self.slabs, self.slab_tables, self.made = slabs, slab_tables, {}

    def __len__(self) -> int:
        return len(self.slabs)

    def __getitem__(self, k: int) -> tuple:
        if k not in self.made:
            start, stop = self.slabs[k]
            self.made = {j: plan for j, plan in self.made.items() if j >= k - 1}
            self.made[k] = (start, stop, self.slab_tables(start, stop))
        return self.made[k]

    def __iter__(self):
        return (self[k] for k in range(len(self)))


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
        #: Seconds spent in each of :data:`STAGES` during the last :meth:`run`.
        self.stage_seconds = dict.fromkeys(STAGES, 0.0)

    def run(self, tables, slabs, on_slab_done=None, slab_tables=None) -> None:
        """Resample ``slabs`` (output rows ``(start, stop)`` along axis 0, in order).

        ``tables`` are the whole-volume tables; each slab uses ``slab_tables(start, stop)``
        (default ``tables.slab(start, stop)``; the executor's carry cubic prefilter states).
        ``on_slab_done()`` is called as each slab lands in ``out``.
        """
        slabs = list(slabs)
        if not slabs:
            return
        self.done_until = slabs[0][0]
        slab_tables = slab_tables or tables.slab
        # the buffers' sizes from the plain tables; a slab's own (with any cubic states) when it is filled
        shapes = [tables.slab(start, stop) for start, stop in slabs]
        in_bytes = max(self._input_shape_bytes(t)[1] for t in shapes)
        out_bytes = max(math.prod(t.output_shape) for t in shapes) * np.dtype(self.out.dtype).itemsize
        del shapes
        plans = _Plans(slabs, slab_tables)
        streams = [self.cupy.cuda.Stream(non_blocking=True) for _ in range(STREAMS)]
        pinned_in = [PinnedBuffer(self.cupy, in_bytes) for _ in range(STREAMS)]
        pinned_out = [PinnedBuffer(self.cupy, out_bytes) for _ in range(STREAMS)]
        in_flight = [None] * STREAMS
        self.stage_seconds = dict.fromkeys(STAGES, 0.0)
        # Two pools: stage tasks (fill a pinned input, empty a pinned output) run side by side
        # and each splits its copy over the copy pool (a task never waits on its own pool).
        with ThreadPoolExecutor(HOST_COPY_THREADS) as pool, ThreadPoolExecutor(STAGE_THREADS) as stages:
            fill = stages.submit(self._fill, plans[0], pinned_in[0], None, pool)
            pending = [fill]
            try:
                for k, (start, stop, block_tables) in enumerate(plans):
                    slot = k % STREAMS
                    previous = in_flight[slot]  # slab k - STREAMS: its pinned output is reused now
                    emptied = None
                    if previous is not None:
                        self._timed("wait for the device", previous.event.synchronize)
                        emptied = stages.submit(self._empty, previous, pool)
                        pending.append(emptied)
                    host_in = fill.result()  # filled while the device worked on the slabs before
                    if emptied is not None:
                        emptied.result()
                        self._landed(previous, on_slab_done)
                    in_flight[slot] = self._issue(start, stop, block_tables, streams[slot], host_in,
                                                  pinned_out[slot])
                    if k + 1 < len(plans):  # fill the next slab's pinned input while this one runs
                        following = in_flight[(k + 1) % STREAMS]
                        fill = stages.submit(self._fill, plans[k + 1], pinned_in[(k + 1) % STREAMS],
                                             following.copied_in if following is not None else None, pool)
                        pending.append(fill)
                for k in range(len(plans), len(plans) + STREAMS):  # the rest, in slab order
                    slab = in_flight[k % STREAMS]
                    in_flight[k % STREAMS] = None
                    if slab is not None:
                        self._timed("wait for the device", slab.event.synchronize)
                        self._empty(slab, pool)
                        self._landed(slab, on_slab_done)
            finally:
                for future in pending:  # no host copy may still touch a pinned buffer we release
                    future.cancel()
                    if not future.cancelled():
                        try:
                            future.result()
                        except BaseException:  # noqa: BLE001 - the first error is already on its way
                            pass
                for stream in streams:  # nothing may still write into pinned buffers we release
                    stream.synchronize()

    def _timed(self, stage: str, work, *args):
        started = time.perf_counter()
        try:
            return work(*args)
        finally:
            self.stage_seconds[stage] += time.perf_counter() - started

    def _input_shape_bytes(self, block_tables):
        first, last = block_tables.input_rows
        shape = (last - first,) + tuple(self.source.shape[1:])
        return shape, math.prod(shape) * np.dtype(self.source.dtype).itemsize

    def _fill(self, plan, pinned_in, copied_in, pool) -> np.ndarray:
        """Copy a slab's input rows into pinned memory once the buffer's last copy to the device is done."""
        start, stop, block_tables = plan
        if copied_in is not None:
            self._timed("wait for the device", copied_in.synchronize)
        first, last = block_tables.input_rows
        in_shape, _ = self._input_shape_bytes(block_tables)
        host_in = pinned_in.view(in_shape, self.source.dtype)
        self._timed("host rows to pinned", copy_rows, host_in, read_rows(self.source, first, last, on_gpu=False),
                    pool)  # shape checked
        return host_in

    def _issue(self, start, stop, block_tables, stream, host_in, pinned_out) -> _InFlight:
        """Queue copy in, compute and copy out of a filled pinned input on ``stream``."""
        cupy = self.cupy
        host_out = pinned_out.view(block_tables.output_shape, self.out.dtype)
        with stream:
            device_in = cupy.empty(host_in.shape, self.source.dtype)
            device_in.set(host_in, stream=stream)
            copied_in = stream.record()
            device_out = cupy.empty(block_tables.output_shape, self.out.dtype)
            self.backend.resample_block(device_in, block_tables, device_out)
            device_out.get(stream=stream, out=host_out, blocking=False)
            event = stream.record()
        slab = _InFlight(start, stop, event, host_out, (device_in, device_out))
        slab.copied_in = copied_in
        return slab

    def _empty(self, slab: _InFlight, pool) -> None:
        """Move a finished slab from pinned memory into ``out``."""
        if isinstance(self.out, np.ndarray):  # NumPy and memmap: parallel copies into the view
            self._timed("pinned to out", copy_rows, self.out[slab.start:slab.stop], slab.host_out, pool)
        else:  # Zarr and other array-likes take a slice assignment
            self._timed("pinned to out", self.out.__setitem__, slice(slab.start, slab.stop), slab.host_out)

    def _landed(self, slab: _InFlight, on_slab_done) -> None:
        self.done_until = slab.stop
        if on_slab_done is not None:
            on_slab_done()


__all__ = ["StagedPipeline", "PinnedBuffer", "copy_rows", "STREAMS"]
