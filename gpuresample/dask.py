"""Beyond one machine: resample a ``dask.array`` with a graph built from the sampling tables.

:func:`resample` returns a lazy ``dask.array``. Every output chunk is one task that
depends on exactly the input chunks its tables read:

1. the whole volume's :class:`~gpuresample.tables.SamplingTables` are built once,
   on the client, in float64 (the same tables :func:`gpuresample.resample` uses);
2. along every axis, the table is cut to the chunk's output rows with
   :meth:`~gpuresample.tables.AxisTable.rows`, which also gives the input rows
   ``[input_start, input_stop)`` those outputs need (taps and the anti-aliasing
   margin included; cubic slabs also take the prefilter's states, see :func:`resample`);
3. the task receives the input chunks that overlap that region, crops and joins
   them into one block, and runs the backend's ``resample_block`` on it, with the
   pass order of the whole volume, so every chunk adds in the same order as an
   in-memory run.

Tasks are plain functions of NumPy (or CuPy) blocks, so any Dask scheduler runs
the graph: threads, processes, a ``distributed`` cluster, GPU workers through
dask-cuda. On a worker, a NumPy block goes to the CPU backend and a CuPy block to
the GPU backends through :func:`gpuresample.backends.choose_backend`.

This module imports Dask; ``import gpuresample`` does not.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import replace
from typing import Sequence

import numpy as np

try:
    import dask
    import dask.array as da
    from dask.array.core import normalize_chunks
    from dask.array.utils import meta_from_array
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph
    from dask.task_spec import List, Task, TaskRef
    from dask.utils import parse_bytes as dask_parse_bytes
except ImportError as exc:  # pragma: no cover - exercised only without dask
    raise ImportError(
        "gpuresample.dask needs a recent Dask with dask.array and dask.task_spec "
        "(pip install 'gpuresample[dask]')") from exc

from ._guards import check_target_size, check_values
from ._validate import (check_antialias, check_backend_name, check_channel_axis, check_dtype, check_fill,
                        spatial_shape)
from .arrays import refuse_masked
from .backends import ALIASES, BACKEND_NAMES, GPU_PREFERENCE, choose_backend
from .geometry import Grid
from .interpolation import Interpolation
from .job import require_spacing, source_grid
from .onto import AffineSampling, apply_fill, check_label_fill, check_target, onto_sampling
from .tables import AxisTable, SamplingTables, build_tables, gaussian_radius

#: Default output chunks are never larger than the larger of the input's largest chunk
#: and Dask's ``array.chunk-size`` setting, so upsampling does not grow chunks without bound.
CHUNK_SIZE_SETTING = "array.chunk-size"
#: Prefix of the output array's name in the graph.
NAME_PREFIX = "gpuresample"


def resample(data, spacing: Sequence[float] | None = None, *, target_shape: Sequence[int] | None = None,
             target_spacing: Sequence[float] | None = None, interpolation: str | Interpolation = "linear",
             dtype=None, antialias: bool = False, output_chunks=None, channel_axis: int | None = None,
             backend: str = "auto", target: Grid | None = None, fill: float = 0) -> "da.Array":
    """Resample a ``dask.array`` lazily, chunk by chunk, to a new voxel grid.

    The result equals :func:`gpuresample.resample` on the whole array bit for bit, for
    every interpolation, whatever the input and output chunks (docs/design.md §2).

    Parameters
    ----------
    data : dask.array.Array or array-like
        2-D or 3-D data (4-D with ``channel_axis``), chunked any way, with NumPy or
        CuPy chunks. Anything else with ``shape``, ``dtype`` and slicing (a NumPy or
        Zarr array) is wrapped with ``dask.array.from_array`` in its own chunks.
    spacing : sequence of float, optional
        Voxel size per array axis in mm (default 1 mm per axis).
    target_shape, target_spacing : sequence, optional
        The target grid, as in :func:`gpuresample.resample`.
    interpolation : {'nearest', 'linear', 'cubic', 'label'} or Interpolation
        As in :func:`gpuresample.resample`.
    dtype : dtype, optional
        Output dtype (default: the input's).
    antialias : bool
        Gaussian smoothing before downsampling (linear and cubic only).
    output_chunks : int, tuple or str, optional
        Chunks of the result along the spatial axes, in any form
        ``dask.array.rechunk`` accepts (``64``, ``(32, 64, 64)``, explicit
        per-axis sizes, ``"auto"``). Default: the input's chunk sizes scaled by
        ``target_shape / shape`` per axis, so each output chunk covers about one
        input chunk's physical region, halved along the longest axis until a chunk
        is no larger than the larger of the input's largest chunk and Dask's
        ``array.chunk-size`` setting.
    channel_axis : int, optional
        For 4-D data: the axis of channels; each is resampled onto the same grid
        and the result has one chunk per channel along this axis.
    backend : {'auto', 'cpu', 'cupyx', 'kernels'}
        Backend on the workers; ``'auto'`` takes the CPU for NumPy chunks and the
        GPU backends for CuPy chunks. Availability is checked on the workers, which
        may have GPUs the client lacks.
    target : Grid, optional
        Another grid to resample onto, as in :func:`gpuresample.resample` (``spacing``
        may then be the data's :class:`~gpuresample.Grid`, which places it). For an
        oblique target the output chunks span whole planes of axes 1 and 2 (a chunk's
        input rows follow from the matrix along axis 0 only).
    fill : float
        Value of output voxels outside the data with ``target=`` (default 0).

    Returns
    -------
    dask.array.Array
        Lazy result of shape ``target_shape`` (with the channel axis when given),
        with chunks of the input's kind (NumPy or CuPy).

    Notes
    -----
    Each task holds its input region (the input rows its tables need along every
    axis, with the Gaussian's reach when anti-aliasing), one output chunk and the
    backend's scratch buffers. Cubic is different, because the prefilter is one
    recursion along each whole axis: its tasks are slabs along axis 0, whole along the
    other axes (at most the larger of the largest output chunk and ``array.chunk-size``
    each), rechunked to ``output_chunks`` at the end, and one more task per column of
    input chunks reads all of axis 0 there to compute the prefilter's states at the
    slab edges (:mod:`gpuresample.spline_states`).

    The graph is a ``HighLevelGraph`` with one layer; each task refers to its
    sampling tables (a few numbers per output row), never to the whole volume's.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> import gpuresample as gr
    >>> import gpuresample.dask as grd
    >>> volume = da.from_array(np.arange(6 * 8 * 8, dtype=np.float32).reshape(6, 8, 8), chunks=4)
    >>> lazy = grd.resample(volume, (2.0, 1.0, 1.0), target_spacing=(1.0, 1.0, 1.0), output_chunks=5)
    >>> lazy.shape, lazy.chunks[0]
    ((12, 8, 8), (5, 5, 2))
    >>> bool((lazy.compute(scheduler="sync") ==
    ...       gr.resample(volume.compute(), (2.0, 1.0, 1.0), target_spacing=(1.0, 1.0, 1.0))).all())
    True
    """
    check_backend_name(backend, BACKEND_NAMES, ALIASES)
    interpolation = Interpolation.parse(interpolation)
    data = _as_dask_array(data)
    in_dtype = check_dtype(data.dtype, "data dtype")
    if data.dtype != in_dtype:  # other byte order (e.g. '>f4'): converted chunk by chunk
        data = data.astype(in_dtype)
    out_dtype = in_dtype if dtype is None else check_dtype(dtype, "dtype")
    antialias = check_antialias(antialias, interpolation)
    if any(math.isnan(c) for chunks in data.chunks for c in chunks):
        raise ValueError("data has unknown chunk sizes; call data.compute_chunk_sizes() first")
    on_gpu = _is_cupy_meta(data)
    if backend != "auto" and (backend in GPU_PREFERENCE) != on_gpu:  # GPU_PREFERENCE: the GPU backends
        where = "CuPy (GPU)" if on_gpu else "NumPy (host)"
        raise ValueError(f"backend={backend!r} cannot take {where} chunks; use backend='auto'")
    if channel_axis is not None:
        return _resample_channels(data, spacing, channel_axis, target_shape=target_shape,
                                  target_spacing=target_spacing, interpolation=interpolation,
                                  dtype=out_dtype, antialias=antialias, output_chunks=output_chunks,
                                  backend=backend, target=target, fill=fill)
    spatial_shape(data.shape, None)
    source = source_grid(spacing, data.shape)
    if target is not None:
        return _resample_onto(data, source, target, target_shape, target_spacing, interpolation, in_dtype,
                              out_dtype, antialias, output_chunks, backend, fill)
    require_spacing(spacing, target_spacing)
    target = source.resolve(target_shape, target_spacing)
    check_target_size(target.shape, target_shape, target_spacing, interpolation=interpolation)
    tables = build_tables(source, target, interpolation, antialias=antialias)
    chunks = _output_chunks(output_chunks, data, target.shape, out_dtype)
    name = f"{NAME_PREFIX}-{interpolation.value}-" + tokenize(
        data.name, source, target, interpolation.value, antialias, str(out_dtype), chunks, backend)
    meta = meta_from_array(data, ndim=data.ndim, dtype=out_dtype)
    if interpolation is Interpolation.CUBIC:
        return _cubic(name, data, tables, chunks, out_dtype, backend, meta)
    layer = _layer(name, data, tables, chunks, out_dtype, backend)
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[data])
    return da.Array(graph, name, chunks, meta=meta)


def _cubic(name, data, tables: SamplingTables, chunks, out_dtype, backend, meta, fill=None):
    """Cubic, bit for bit equal to the in-memory run whatever the chunks.

    The prefilter is one recursion along each whole axis, so tasks are slabs along axis 0,
    whole along the other axes (in-plane filters never cut), each starting axis 0's
    prefilter from the whole line's states (:mod:`gpuresample.spline_states`). The states
    come from one task per column of input chunks (all of axis 0, its columns). The result
    is then rechunked to ``chunks``.
    """
    out_itemsize = np.dtype(out_dtype).itemsize
    plane = math.prod(sum(c) for c in chunks[1:])
    limit = max(math.prod(max(c) for c in chunks) * out_itemsize, dask_parse_bytes(dask.config.get(CHUNK_SIZE_SETTING)))
    rows_per_task = max(1, limit // max(plane * out_itemsize, 1))
    slab_chunks = tuple(piece for size in chunks[0] for piece in _split(size, rows_per_task))
    internal = (slab_chunks,) + tuple((sum(c),) for c in chunks[1:])
    slabs = _chunk_tables(tables.axes[0], slab_chunks)
    cut = [k for k, t in enumerate(slabs) if t.is_cut]
    slab_name = name + "-slabs" if internal != tuple(chunks) else name
    states_name = name + "-prefilter-states"
    data_graph = data.__dask_graph__()
    layers, dependencies = dict(data_graph.layers), dict(data_graph.dependencies)
    states = None
    if cut:
        windows = tuple(slabs[k].kept_window() for k in cut)
        layers[states_name], state_keys, columns = _states_layer(states_name, data, tables, windows, backend)
        dependencies[states_name] = {data.name}
        states = (state_keys, columns, {k: i for i, k in enumerate(cut)})
    layers[slab_name] = _layer(slab_name, data, tables, internal, out_dtype, backend, states, fill=fill)
    dependencies[slab_name] = {data.name} | ({states_name} if cut else set())
    array = da.Array(HighLevelGraph(layers, dependencies), slab_name, internal, meta=meta)
    return array if internal == tuple(chunks) else array.rechunk(chunks)


def _split(size: int, most: int) -> tuple:
    """``size`` rows as pieces of at most ``most`` (nearly equal)."""
    pieces = -(-size // most)
    base, extra = divmod(size, pieces)
    return tuple(base + (i < extra) for i in range(pieces))


def _states_layer(name, data, tables: SamplingTables, windows, backend):
    """One task per column of input chunks: axis 0's prefilter states of every cut slab there.

    Returns the layer, the task keys in C order over the column grid, and that grid's shape.
    """
    n0 = tables.axes[0].source_length
    region0 = AxisTable(np.zeros((1, 1), np.int64), np.ones((1, 1)), 0, n0, sigma=tables.axes[0].sigma)
    columns = tuple(len(c) for c in data.chunks[1:])
    layer, keys = {}, []
    for column in np.ndindex(*columns):
        regions = [region0]
        for axis, j in enumerate(column, start=1):
            bounds = np.cumsum((0,) + tuple(data.chunks[axis]))
            start, stop = int(bounds[j]), int(bounds[j + 1])
            table = tables.axes[axis]
            radius = gaussian_radius(table.sigma)
            regions.append(AxisTable(np.zeros((1, 1), np.int64), np.ones((1, 1)), start, stop, sigma=table.sigma,
                                     margin_before=min(radius, start),
                                     margin_after=min(radius, table.source_length - stop)))
        region_tables = replace(tables, axes=tuple(regions))
        axis_pieces = [_axis_pieces(t, data.chunks[a]) for a, t in enumerate(regions)]
        piece_keys, crops = [], []
        for combination in np.ndindex(*(len(p) for p in axis_pieces)):
            chosen = [axis_pieces[axis][k] for axis, k in enumerate(combination)]
            piece_keys.append(TaskRef((data.name,) + tuple(i for i, _ in chosen)))
            crops.append(tuple(crop for _, crop in chosen))
        key = (name,) + column
        layer[key] = Task(key, column_states, List(*piece_keys), tuple(len(p) for p in axis_pieces), tuple(crops),
                          tables, region_tables, windows, backend)
        keys.append(TaskRef(key))
    return layer, keys, columns


def column_states(pieces, layout, crops, tables: SamplingTables, region_tables: SamplingTables, windows,
                  backend: str = "auto"):
    """Axis 0's prefilter states for the columns of one task (all rows, its columns).

    Runs on a Dask worker; the block is smoothed with the backend's own anti-aliasing
    (the very values its slabs filter). Returns ``(causal, anticausal)``, each
    ``(len(windows),) + columns`` float64 on the host.
    """
    from .backends._spline_states import boundary_states, loop_readable
    from .executor import executor_smoothing

    block = assemble(pieces, layout, crops)
    on_gpu = hasattr(block, "__cuda_array_interface__")
    chosen = choose_backend(backend, on_gpu, tables.interpolation)
    smooth, to_host = executor_smoothing(chosen, on_gpu, block.dtype)
    if any(t.sigma > 0 for t in region_tables.axes):
        block = smooth(block, region_tables)
    host = loop_readable(np.ascontiguousarray(to_host(block)))
    columns = host.shape[1:]
    elements = math.prod(columns)
    flat = host.reshape(host.shape[0], elements)
    threads = chosen.threads()
    causal, anticausal = boundary_states(None, tables.axes[0], windows, elements, threads, flat)
    return causal.reshape((len(windows),) + columns), anticausal.reshape((len(windows),) + columns)


def resample_chunk_with_states(pieces, layout, crops, tables: SamplingTables, out_dtype, backend, states,
                               columns, index: int, fill=None):
    """A cubic slab: its states joined from the column tasks' (slab ``index`` of theirs), then
    :func:`resample_chunk`."""
    from .spline_states import with_states

    joined = []
    for which in range(2):
        planes = [s[which][index] for s in states]
        grid = np.empty(columns, dtype=object)
        for position, plane in zip(np.ndindex(*columns), planes):
            grid[position] = plane
        joined.append(np.block(grid.tolist()) if len(columns) > 1 else np.concatenate(planes))
    return resample_chunk(pieces, layout, crops, with_states(tables, joined[0], joined[1]), out_dtype, backend,
                          fill)


def _resample_onto(data, source, target, target_shape, target_spacing, interpolation, in_dtype, out_dtype,
                   antialias, output_chunks, backend, fill) -> "da.Array":
    """:func:`resample` onto another grid (docs/design.md §1): tables in source axis order (then a
    transpose) for an axis-aligned target, row blocks of the matrix for an oblique one."""
    target = check_target(target, target_shape, target_spacing, source.ndim)
    check_target_size(target.shape, None, None, interpolation=interpolation)
    fill = check_fill(fill, out_dtype)
    check_label_fill(fill, interpolation, in_dtype, out_dtype)
    sampling = onto_sampling(source, target, interpolation, fill, antialias)
    chunks = _output_chunks(output_chunks, data, target.shape, out_dtype)
    name = f"{NAME_PREFIX}-{interpolation.value}-" + tokenize(
        data.name, source, target, interpolation.value, antialias, str(out_dtype), chunks, backend, fill)
    meta = meta_from_array(data, ndim=data.ndim, dtype=out_dtype)
    if isinstance(sampling, AffineSampling):
        chunks = (chunks[0],) + tuple((n,) for n in target.shape[1:])
        layer = _affine_layer(name, data, sampling, chunks, out_dtype, backend)
        return da.Array(HighLevelGraph.from_collections(name, layer, dependencies=[data]), name, chunks, meta=meta)
    output_axes = sampling.output_axes or tuple(range(source.ndim))
    table_chunks = tuple(chunks[k] for k in output_axes)
    if interpolation is Interpolation.CUBIC:  # exact whatever the chunks, as in-memory slabs
        array = _cubic(name, data, sampling, table_chunks, out_dtype, backend, meta, fill=fill)
    else:
        layer = _layer(name, data, sampling, table_chunks, out_dtype, backend, fill=fill)
        array = da.Array(HighLevelGraph.from_collections(name, layer, dependencies=[data]), name, table_chunks,
                         meta=meta)
    return array if sampling.output_axes is None else array.transpose(tuple(np.argsort(output_axes)))


def _affine_layer(name, data, sampling: AffineSampling, chunks, out_dtype, backend) -> dict:
    """One task per block of output rows along axis 0 (whole along the other axes)."""
    layer = {}
    start = 0
    for i, size in enumerate(chunks[0]):
        stop = start + size
        part = sampling if (start, stop) == (0, sampling.output_shape[0]) else sampling.rows(start, stop)
        axis_pieces = [_axis_pieces(line, data.chunks[axis]) for axis, line in enumerate(part.lines)]
        keys, crops = [], []
        for combination in np.ndindex(*(len(p) for p in axis_pieces)):
            chosen = [axis_pieces[axis][k] for axis, k in enumerate(combination)]
            keys.append(TaskRef((data.name,) + tuple(j for j, _ in chosen)))
            crops.append(tuple(crop for _, crop in chosen))
        key = (name, i) + (0,) * (data.ndim - 1)
        layer[key] = Task(key, resample_chunk, List(*keys), tuple(len(p) for p in axis_pieces), tuple(crops), part,
                          np.dtype(out_dtype), backend)
        start = stop
    return layer


def _as_dask_array(data):
    refuse_masked(data)
    if isinstance(data, da.Array):
        if isinstance(getattr(data, "_meta", None), np.ma.MaskedArray):
            raise TypeError("data has numpy.ma.MaskedArray chunks; resampling would drop their masks. Pass "
                            "data.map_blocks(np.ma.filled, value) (e.g. 0, or np.nan with a float dtype)")
        return data
    if hasattr(data, "shape") and hasattr(data, "dtype") and hasattr(data, "__getitem__"):
        return da.from_array(data, chunks=getattr(data, "chunks", "auto") or "auto")
    raise TypeError(f"data must be a dask.array.Array or an array-like with shape, dtype and slicing; "
                    f"got {type(data).__name__}")


def _is_cupy_meta(data) -> bool:
    meta = getattr(data, "_meta", None)
    return type(meta).__module__.split(".")[0] == "cupy"


def _resample_channels(data, spacing, channel_axis, *, output_chunks, **options):
    axis = check_channel_axis(channel_axis, data.ndim)
    spatial_shape(data.shape, axis)
    channels = [resample(data[(slice(None),) * axis + (c,)], spacing, output_chunks=output_chunks, **options)
                for c in range(data.shape[axis])]
    return da.stack(channels, axis=axis)


def _output_chunks(output_chunks, data, target_shape, out_dtype) -> tuple:
    """Normalised output chunks (see :func:`resample`, ``output_chunks``)."""
    if output_chunks is None:
        output_chunks = default_output_chunks(data.chunks, data.shape, target_shape, data.dtype, out_dtype)
    try:
        chunks = normalize_chunks(output_chunks, tuple(target_shape), dtype=out_dtype)
    except ZeroDivisionError:  # dask divides by a chunk size of 0
        raise ValueError(f"output_chunks={output_chunks!r} has a chunk size of 0; chunk sizes must be >= 1 "
                         "(or -1, 'auto', None)") from None
    except (ValueError, TypeError) as exc:
        raise ValueError(f"output_chunks={output_chunks!r} does not chunk the target shape "
                         f"{tuple(target_shape)}: {exc}") from None
    if any(c == 0 for axis in chunks for c in axis):
        raise ValueError(f"output_chunks={output_chunks!r} has empty chunks")
    return chunks


def default_output_chunks(input_chunks: tuple, input_shape: Sequence[int], target_shape: Sequence[int],
                          in_dtype, out_dtype) -> tuple:
    """Output chunk sizes covering about one input chunk's physical region each.

    Per axis, the input's largest chunk scaled by ``target_shape / input_shape``;
    then, while a chunk is larger than the larger of the input's largest chunk and
    Dask's ``array.chunk-size``, the longest chunk side is halved.

    Examples
    --------
    >>> default_output_chunks(((64, 36),) * 3, (100, 100, 100), (50, 200, 100), "float32", "float32")
    (32, 128, 64)
    """
    sizes = [max(1, min(m, round(max(c) * m / n))) for c, n, m in zip(input_chunks, input_shape, target_shape)]
    input_bytes = math.prod(max(c) for c in input_chunks) * np.dtype(in_dtype).itemsize
    limit = max(input_bytes, dask_parse_bytes(dask.config.get(CHUNK_SIZE_SETTING)))
    itemsize = np.dtype(out_dtype).itemsize
    while math.prod(sizes) * itemsize > limit and max(sizes) > 1:
        longest = sizes.index(max(sizes))
        sizes[longest] = (sizes[longest] + 1) // 2
    return tuple(sizes)


def _axis_pieces(table, chunks):
    """The input chunks an axis table reads: their block indices and the crop of each."""
    bounds = np.cumsum((0,) + tuple(chunks)).tolist()
    lo, hi = table.input_start, table.input_stop
    first = bisect.bisect_right(bounds, lo) - 1
    pieces = []
    for i in range(first, len(chunks)):
        start, stop = bounds[i], bounds[i + 1]
        if start >= hi:
            break
        if stop > start:
            pieces.append((i, slice(max(lo, start) - start, min(hi, stop) - start)))
    return pieces


def _chunk_tables(table, chunks) -> list:
    """The table cut to every output chunk along one axis (the whole table for a single chunk)."""
    result = []
    start = 0
    for size in chunks:
        stop = start + size
        part = table.slab(start, stop)
        result.append(part)
        start = stop
    return result


def _layer(name, data, tables: SamplingTables, chunks, out_dtype, backend, states=None, fill=None) -> dict:
    """One task per output chunk, depending only on the input chunks its tables read.

    ``states``: ``(state task keys, their column grid, {slab index: position among theirs})``
    for cubic slabs whose prefilter starts from the whole line's states. ``fill``: the value
    of outputs outside the input (a target on another grid).
    """
    per_axis = []
    for axis, table in enumerate(tables.axes):
        parts = _chunk_tables(table, chunks[axis])
        per_axis.append([(part, _axis_pieces(part, data.chunks[axis])) for part in parts])
    layer = {}
    for block_index in np.ndindex(*(len(c) for c in chunks)):
        selected = [per_axis[axis][i] for axis, i in enumerate(block_index)]
        block_tables = replace(tables, axes=tuple(part for part, _ in selected))
        axis_pieces = [pieces for _, pieces in selected]
        keys, crops = [], []
        for combination in np.ndindex(*(len(p) for p in axis_pieces)):
            chosen = [axis_pieces[axis][k] for axis, k in enumerate(combination)]
            keys.append(TaskRef((data.name,) + tuple(i for i, _ in chosen)))
            crops.append(tuple(crop for _, crop in chosen))
        layout = tuple(len(p) for p in axis_pieces)
        key = (name,) + tuple(block_index)
        if states is not None and block_index[0] in states[2]:
            layer[key] = Task(key, resample_chunk_with_states, List(*keys), layout, tuple(crops), block_tables,
                              np.dtype(out_dtype), backend, List(*states[0]), states[1], states[2][block_index[0]],
                              fill)
            continue
        extra = () if fill is None else (fill,)
        layer[key] = Task(key, resample_chunk, List(*keys), layout, tuple(crops), block_tables,
                          np.dtype(out_dtype), backend, *extra)
    return layer


def assemble(pieces, layout, crops):
    """Crop input chunks and join them, in C order over ``layout``, into one contiguous block.

    Works for NumPy and CuPy chunks alike (NumPy's array functions dispatch to CuPy).
    """
    pieces = [piece[crop] for piece, crop in zip(pieces, crops)]
    for axis in reversed(range(len(layout))):
        n = layout[axis]
        if n > 1:
            pieces = [np.concatenate(pieces[i:i + n], axis=axis) for i in range(0, len(pieces), n)]
    return np.ascontiguousarray(pieces[0])


def resample_chunk(pieces, layout, crops, tables: SamplingTables, out_dtype, backend: str = "auto", fill=None):
    """One output chunk: join its input region from ``pieces`` and resample it with ``tables``.

    Runs on a Dask worker. ``tables`` are the whole volume's tables cut to this chunk
    along every axis; the joined block holds exactly their input rows. ``fill`` (a
    target on another grid) goes to the chunk's outside indices, in the tables' axis order.
    """
    block = assemble(pieces, layout, crops)
    on_gpu = hasattr(block, "__cuda_array_interface__")
    check_values(block, on_gpu, block.dtype, out_dtype, tables.interpolation)  # as gpuresample.resample, per chunk
    chosen = choose_backend(backend, on_gpu, tables.interpolation)
    out = chosen.empty(tables.output_shape, out_dtype)
    chosen.resample_block(block, tables, out)  # calls from several threads run side by side (docs/design.md §9)
    if fill is not None and isinstance(tables, SamplingTables):
        apply_fill(out, replace(tables, output_axes=None), fill)
    return out


__all__ = ["resample", "default_output_chunks"]
