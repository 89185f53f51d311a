"""One object to resample: checked inputs, tables, backend and slabs, then the run.

Both :func:`gpuresample.resample` and :class:`gpuresample.Scene` build a
:class:`Job` per array; the information display shows jobs before they run, and
running a job does exactly what it showed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validate import (check_antialias, check_backend_name, check_channel_axis, check_dtype,
                        parse_bytes, spatial_shape)
from .arrays import Prepared, prepare
from .backends import BACKEND_NAMES, choose_backend
from .chunking import (DEFAULT_STREAM_BYTES, DEVICE_SAFETY_FRACTION, Chunking, execute, plan_slabs)
from .geometry import Grid
from .interpolation import Interpolation
from .tables import SamplingTables, build_tables



@dataclass
class Job:
    """Everything needed to resample one array, decided before anything runs."""

    name: str
    role: str                      # "volume" or "mask"
    prepared: Prepared
    source: Grid
    target: Grid
    interpolation: Interpolation
    tables: SamplingTables
    in_dtype: np.dtype
    out_dtype: np.dtype
    channel_axis: int | None
    backend: Any
    chunking: Chunking
    staged: bool
    threads: int
    out: Any = None

    @property
    def channels(self) -> int:
        if self.channel_axis is None:
            return 1
        return self.prepared.array.shape[self.channel_axis]

    @property
    def output_shape(self) -> tuple:
        shape = list(self.target.shape)
        if self.channel_axis is not None:
            shape.insert(self.channel_axis, self.channels)
        return tuple(shape)

    @property
    def bytes_before(self) -> int:
        return self.source.size * self.channels * self.in_dtype.itemsize

    @property
    def bytes_after(self) -> int:
        return self.target.size * self.channels * self.out_dtype.itemsize

    def run(self, progress: bool = False):
        """Resample; returns the result in the caller's kind (or ``out``)."""
        out = self.out
        if out is None:  # staged work writes to the host, so results may exceed device memory
            out = (np.empty if self.staged else self.backend.empty)(self.output_shape, self.out_dtype)
        array = self.prepared.array
        for c in range(self.channels):
            src = array if self.channel_axis is None else _channel(array, self.channel_axis, c)
            dst = out if self.channel_axis is None else _channel(out, self.channel_axis, c)
            desc = self.name if self.channels == 1 else f"{self.name}[{c}]"
            self.chunking = execute(
                self.backend, src, self.prepared.on_gpu, self.tables, self.chunking, dst,
                self.in_dtype, self.source.shape, self.threads, self.staged, progress, desc,
                getattr(self.backend, "scratch_bytes", None))
        return out if self.out is not None else self.prepared.restore(out)


def _channel(array, axis: int, index: int):
    if hasattr(array, "ndim") and not isinstance(array, np.ndarray) and not hasattr(array, "__cuda_array_interface__"):
        key = [slice(None)] * array.ndim
        key[axis] = index
        return _LazyChannel(array, tuple(key), axis)
    return array[(slice(None),) * axis + (index,)]


class _LazyChannel:
    """One channel of a host array-like (e.g. Zarr), sliced only when rows are read or written."""

    def __init__(self, array, key, axis):
        self.array, self.key, self.axis = array, key, axis
        self.dtype = array.dtype
        self.shape = tuple(n for i, n in enumerate(array.shape) if i != axis)

    def _rows(self, rows):
        key = list(self.key)
        spatial = [i for i in range(len(key)) if i != self.axis]
        key[spatial[0]] = rows
        return tuple(key)

    def __getitem__(self, rows):
        return self.array[self._rows(rows)]

    def __setitem__(self, rows, value):
        self.array[self._rows(rows)] = value


def build_job(data, spacing, *, target_shape=None, target_spacing=None, target: Grid | None = None,
              interpolation="linear", dtype=None, antialias=False, channel_axis=None, backend="auto",
              device=None, max_memory=None, out=None, name="data", role="volume", origin=None,
              direction=None) -> Job:
    """Check every argument and decide everything about resampling ``data``."""
    check_backend_name(backend, BACKEND_NAMES)
    interpolation = Interpolation.parse(interpolation)
    prepared = prepare(data, device)
    array = prepared.array
    in_dtype = check_dtype(array.dtype, "data dtype")
    out_dtype = in_dtype if dtype is None else check_dtype(dtype, "dtype")
    channel_axis = check_channel_axis(channel_axis, len(array.shape))
    spatial = spatial_shape(array.shape, channel_axis)
    if spacing is None:
        spacing = (1.0,) * len(spatial)
    source = Grid(spatial, spacing, origin, direction)
    if target is None:
        target = source.resolve(target_shape, target_spacing)
    antialias = check_antialias(antialias, interpolation)
    tables = build_tables(source, target, interpolation, antialias=antialias)
    chosen = choose_backend(backend, prepared.compute_on_gpu, interpolation)
    budget = parse_bytes(max_memory)
    output_shape = list(target.shape)
    if channel_axis is not None:
        output_shape.insert(channel_axis, array.shape[channel_axis])
    if out is not None:
        if tuple(out.shape) != tuple(output_shape):
            raise ValueError(f"out has shape {tuple(out.shape)}, the result has shape {tuple(output_shape)}")
        if np.dtype(out.dtype) != out_dtype:
            raise ValueError(f"out has dtype {np.dtype(out.dtype)}, the result has dtype {out_dtype} "
                             "(pass dtype= to choose it)")
    staged = chosen.on_device and not prepared.on_gpu
    if budget is None:
        if chosen.on_device:
            free = chosen.free_bytes()
            budget = int(free * (1 - DEVICE_SAFETY_FRACTION)) if free else None
        elif not isinstance(array, np.ndarray) or (out is not None and not isinstance(out, np.ndarray)):
            budget = DEFAULT_STREAM_BYTES
    threads = chosen.threads() if hasattr(chosen, "threads") else 1
    scratch = getattr(chosen, "scratch_bytes", None)
    chunking = plan_slabs(tables, in_dtype, out_dtype, spatial, budget, threads, staged, scratch=scratch)
    return Job(name, role, prepared, source, target, interpolation, tables, in_dtype, out_dtype,
               channel_axis, chosen, chunking, staged, threads, out)


def warn_cubic_mask(name: str) -> None:
    warnings.warn(f"mask {name!r} with cubic interpolation: values between and beyond labels appear; "
                  "use 'nearest' or 'label' to keep label values", UserWarning, stacklevel=3)
