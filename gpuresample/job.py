"""One object to resample: checked inputs, tables, backend and slabs, decided before anything runs.

Both :func:`gpuresample.resample` and :class:`gpuresample.Scene` build a
:class:`Job` per array; the information display shows jobs before they run, and
running a job (:mod:`gpuresample.executor`) does exactly what it showed. A job is
frozen: when memory runs out mid-run and the rest is replanned, the
:class:`~gpuresample.executor.Execution` says so and the job still shows the plan
that was printed.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._guards import check_out, check_target_size, check_values
from ._validate import (
    check_antialias,
    check_backend_name,
    check_channel_axis,
    check_dtype,
    check_fill,
    parse_bytes,
    spatial_shape,
)
from .arrays import Prepared, prepare
from .backends import ALIASES, BACKEND_NAMES, choose_backend
from .backends._spline_states import rows_in_place as prepass_in_place
from .executor import Execution, channel_view, execute
from .geometry import Grid
from .interpolation import Interpolation
from .onto import check_label_fill, check_target, onto_sampling
from .planner import DEFAULT_STREAM_BYTES, DEVICE_SAFETY_FRACTION, Chunking, plan_slabs
from .tables import SamplingTables, cached_tables

#: A job already on the device whose one-slab peak (input, output and scratch) is at most
#: this many bytes is planned without asking the device for its free memory (a driver call
#: per resample); should it not fit after all, the executor replans on the out-of-memory error.
SMALL_DEVICE_JOB_BYTES = 256 << 20
#: Source and target grids kept for repeated calls with the same geometry: checking and
#: re-centring them costs tens of microseconds per call.
GRID_CACHE_SIZE = 64


@functools.lru_cache(maxsize=GRID_CACHE_SIZE)
def _cached_grids(spatial, spacing, origin, direction, target_shape, target_spacing) -> tuple:
    source = Grid(spatial, spacing, origin, direction)
    return source, source.resolve(target_shape, target_spacing)


def _grids(spatial, spacing, origin, direction, target_shape, target_spacing) -> tuple:
    """``(source grid, target grid)``, cached when every argument is hashable (tuples, numbers)."""
    try:
        return _cached_grids(spatial, spacing, origin, direction, target_shape, target_spacing)
    except TypeError:  # a list or an array among them: not cacheable (errors of Grid are ValueErrors)
        source = Grid(spatial, spacing, origin, direction)
        return source, source.resolve(target_shape, target_spacing)


@dataclass(frozen=True)
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
    #: Host data computed on a device backend, slab by slab (decided here, nowhere else).
    staged: bool
    out: Any = None
    #: Value of output voxels outside the source (a target on another grid, docs/design.md §1).
    fill: float = 0.0

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

    @property
    def rows_in_place(self) -> bool:
        """Whether a cubic pre-pass reads the input's rows where they are (no row buffers)."""
        return rows_in_place(self.prepared.array, self.channel_axis, self.tables)

    def execute(self, progress: bool = False) -> Execution:
        """Resample; returns the result and what ran (see :class:`~gpuresample.executor.Execution`)."""
        return execute(self, progress)

    def run(self, progress: bool = False):
        """Resample; returns the result in the caller's kind (or ``out``).

        A replan after running out of memory is reported as a ``RuntimeWarning``.
        """
        execution = self.execute(progress)
        if execution.replanned:
            warnings.warn("; ".join(execution.replans), RuntimeWarning, stacklevel=2)
        return execution.result


def build_job(data, spacing, *, target_shape=None, target_spacing=None, target: Grid | None = None,
              interpolation="linear", dtype=None, antialias=False, channel_axis=None, backend="auto",
              device=None, max_memory=None, out=None, name="data", role="volume", origin=None,
              direction=None, fill=0, onto=None) -> Job:
    """Check every argument and decide everything about resampling ``data``.

    ``target`` derived from the source (by shape or spacing, same centre) runs the
    usual tables; ``onto`` is a target on another grid (docs/design.md §1), sampled with ``fill``
    outside the source.
    """
    check_backend_name(backend, BACKEND_NAMES, ALIASES)
    interpolation = Interpolation.parse(interpolation)
    prepared = prepare(data, device)
    array = prepared.array
    in_dtype = check_dtype(array.dtype, "data dtype")
    out_dtype = in_dtype if dtype is None else check_dtype(dtype, "dtype")
    channel_axis = check_channel_axis(channel_axis, len(array.shape))
    spatial = spatial_shape(array.shape, channel_axis)
    fill = check_fill(fill, out_dtype)
    if onto is not None:  # a target on another grid (docs/design.md §1)
        source = source_grid(spacing, spatial, origin, direction)
        target = check_target(onto, target_shape, target_spacing, source.ndim)
        check_label_fill(fill, interpolation, in_dtype, out_dtype)
    elif target is None and not isinstance(spacing, Grid):
        require_spacing(spacing, target_spacing)
        if spacing is None:
            spacing = (1.0,) * len(spatial)
        source, target = _grids(spatial, spacing, origin, direction, target_shape, target_spacing)
    else:
        source = source_grid(spacing, spatial, origin, direction)
        if target is None:
            target = source.resolve(target_shape, target_spacing)
    antialias = check_antialias(antialias, interpolation)
    output_shape = list(target.shape)
    if channel_axis is not None:
        output_shape.insert(channel_axis, array.shape[channel_axis])
    check_target_size(output_shape, target_shape, target_spacing, table_shape=target.shape,
                      interpolation=interpolation)
    if out is not None:
        check_out(out, output_shape, out_dtype, (data, array))
    chosen = choose_backend(backend, prepared.compute_on_gpu, interpolation)
    check_values(array, prepared.on_gpu, in_dtype, out_dtype, interpolation, role, name)
    if onto is not None:
        tables = onto_sampling(source, target, interpolation, fill, antialias)
    else:
        tables = cached_tables(source, target, interpolation, bool(antialias))
    budget = parse_bytes(max_memory)
    staged = chosen.on_device and not prepared.on_gpu
    chunking = None
    if budget is None and chosen.on_device and not staged:  # small jobs skip the free-memory query
        whole = plan_slabs(tables, in_dtype, out_dtype, spatial, None, chosen, staged)
        chunking = whole if whole.peak_bytes <= SMALL_DEVICE_JOB_BYTES else None
    if chunking is None:
        if budget is None:
            if chosen.on_device:
                free = chosen.free_bytes()
                budget = int(free * (1 - DEVICE_SAFETY_FRACTION)) if free else None
            elif not isinstance(array, np.ndarray) or (out is not None and not isinstance(out, np.ndarray)):
                budget = DEFAULT_STREAM_BYTES
        chunking = plan_slabs(tables, in_dtype, out_dtype, spatial, budget, chosen, staged,
                              rows_in_place=rows_in_place(array, channel_axis, tables))
    return Job(name, role, prepared, source, target, interpolation, tables, in_dtype, out_dtype,
               channel_axis, chosen, chunking, staged, out, fill)


def rows_in_place(array, channel_axis, tables) -> bool:
    """Whether a cubic pre-pass over (each channel of) ``array`` reads its rows where they are."""
    if not isinstance(tables, SamplingTables) or not tables.axes[0].is_cubic:
        return False
    return prepass_in_place(array if channel_axis is None else channel_view(array, channel_axis, 0), tables)


def require_spacing(spacing, target_spacing) -> None:
    """A bare array resampled by ``target_spacing`` needs its own spacing (docs/design.md §10)."""
    if spacing is None and target_spacing is not None:
        raise ValueError("spacing is missing: resampling by target_spacing needs the data's own spacing "
                         "(spacing=, mm per axis, or its Grid); a bare array has none")


def source_grid(spacing, spatial: tuple, origin=None, direction=None) -> Grid:
    """The data's grid from ``spacing`` (a sequence, or a :class:`Grid` whose shape must be the data's)."""
    if isinstance(spacing, Grid):
        if spacing.shape != tuple(spatial):
            raise ValueError(f"spacing is a Grid of shape {spacing.shape}, the data's spatial shape is "
                             f"{tuple(spatial)}; a grid given as spacing must be the data's own grid")
        return spacing
    if spacing is None:
        spacing = (1.0,) * len(spatial)
    return Grid(spatial, spacing, origin, direction)


def warn_cubic_mask(name: str) -> None:
    warnings.warn(f"mask {name!r} with cubic interpolation: values between and beyond labels appear; "
                  "use 'nearest' or 'label' to keep label values", UserWarning, stacklevel=3)
