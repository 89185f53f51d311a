"""What to launch: a block's sampling tables turned into CUDA kernel launches.

:func:`run_kernels` decides the kernels, launch geometry and arguments of a block (and
:func:`kernels_scratch_bytes` what they allocate). It needs only NumPy and a
:class:`Device`: :class:`~gpuresample.backends.cuda.backend.CupyDevice` runs the launches
on a GPU, and ``tests/harness`` runs the very same launches through the kernels compiled as
C++ on the CPU. Importing this module needs neither CuPy nor a GPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...interpolation import Interpolation, working_dtype
from ...onto import BAND_ATOL_VOXELS, AffineSampling
from ...spline_states import missing_states_error
from ...tables import CUBIC_PAD, CUBIC_POLE, SamplingTables, as_3d, smoothing_passes
from .._common import (check_source_block, coefficient_maps, gathered_states, is_smoothed, kept_coefficient_rows,
                       label_view_dtype, smoothing_sizes, uses_label_arithmetic, view_3d)
from .compile import (MARCH_B, MARCH_C, PREFILTER_CUT_NAME, PREFILTER_NAME, TAPS,
                      affine_name, gather_name, label_name, separable_name, table_pass_name)
from .packing import coefficient_row_maps, label_tables, separable_tables, smoothing_table

#: Cubic coefficients are gathered and prefiltered in float64 on the device so the in-place
#: prefilter keeps the CPU's float64 intermediate values; they are rounded to the working
#: dtype where the CPU stores them, and for a float32 working dtype the last prefilter pass
#: writes them as float32 (what the separable kernel then reads: half the traffic).
COEFFICIENT_DTYPE = np.dtype(np.float64)
#: Offsets and loop counters up to this stay in 32-bit arithmetic (int's maximum).
INT32_MAX_OFFSET = 2 ** 31 - 1
#: A separable launch aims at this many threads (about two full waves of an H100's 132
#: SMs x 2048 threads); longer runs per thread are used only beyond it.
TARGET_THREADS = 1 << 19
#: Longest run of outputs one thread marches through (an earlier GPU probe tried 8-128).
MAX_RUN = 128
#: Must equal GR_MAX_UNKEPT_TAIL in kernels/gpuresample.cuh: trailing extended-line rows a
#: prefilter thread keeps in registers (kept rows cover the data, so at most the edge pad).
MAX_UNKEPT_TAIL = 12
#: Threads per block of the per-voxel kernels: a multiple of the warp, small enough that
#: thin volumes still spread over many blocks.
BLOCK_THREADS = 256
#: Narrowest block along the output's last axis: one warp, so writes coalesce.
MIN_BLOCK_X = 32
#: CUDA's limit on gridDim.y and gridDim.z; the kernels loop over the rest.
MAX_GRID_YZ = 65535
#: Threads per block of the prefilter (one thread per line).
PREFILTER_BLOCK = 128
#: Blocks the prefilter launches at most; its threads loop over further lines.
MAX_PREFILTER_BLOCKS = 1 << 20
assert CUBIC_PAD <= MAX_UNKEPT_TAIL, "kernels/gpuresample.cuh: raise GR_MAX_UNKEPT_TAIL"


@dataclass(frozen=True)
class Launch:
    """One kernel launch: name expression, grid and block (x, y, z), arguments.

    ``args`` holds device arrays (passed as pointers) and NumPy scalars (passed by value,
    their dtype is the C type).
    """

    name: str
    grid: tuple
    block: tuple
    args: tuple


class Device:
    """What :func:`run_kernels` needs from where the kernels run.

    :class:`CupyDevice` runs them on a GPU; ``tests/harness`` runs them as C++ on the CPU.
    """

    def empty(self, shape, dtype):
        """A new C-contiguous array."""
        raise NotImplementedError

    def upload(self, arrays) -> list:
        """Device copies of small host arrays (tables), in order."""
        raise NotImplementedError

    def upload_cached(self, owner, key: tuple, build) -> list:
        """Device copies of the host arrays ``build()`` makes for ``owner`` (a tables object).

        A device may keep them for later calls with the same ``owner`` object and ``key``
        (:class:`CupyDevice` does); this one uploads every time.
        """
        return self.upload(build())

    def cached(self, owner, key: tuple, make):
        """``make()``, which depends only on ``owner`` (a tables object) and ``key``.

        A device may keep it for later calls (:class:`CupyDevice` does); this one makes it
        every time.
        """
        return make()

    def launch(self, launch: Launch) -> None:
        raise NotImplementedError


def voxel_launch_shape(shape) -> tuple:
    """``(grid, block)`` for a per-voxel kernel over a 3-D output of ``shape``.

    x runs along the last (contiguous) axis, y along axis 1, z along axis 0.
    """
    n0, n1, n2 = (int(n) for n in shape)
    block_x = min(max(MIN_BLOCK_X, 1 << max(0, n2 - 1).bit_length()), BLOCK_THREADS)
    block_y = BLOCK_THREADS // block_x
    grid = (math.ceil(n2 / block_x), min(math.ceil(n1 / block_y), MAX_GRID_YZ), min(n0, MAX_GRID_YZ))
    return grid, (block_x, block_y, 1)


def line_launch_shape(n_lines: int) -> tuple:
    """``(grid, block)`` for the prefilter: one thread per line."""
    return (min(math.ceil(n_lines / PREFILTER_BLOCK), MAX_PREFILTER_BLOCKS), 1, 1), (PREFILTER_BLOCK, 1, 1)


def element_strides(array) -> tuple:
    """Strides in elements (kernel arguments)."""
    itemsize = array.dtype.itemsize
    if any(s % itemsize for s in array.strides):
        raise ValueError("array strides are not whole elements; pass a contiguous copy")
    return tuple(s // itemsize for s in array.strides)


def _i64(values) -> tuple:
    return tuple(np.int64(v) for v in values)


def run_kernels(device: Device, source, tables: SamplingTables, out) -> None:
    """Fill ``out`` from ``source`` with the kernels (see :meth:`Backend.resample_block`)."""
    check_source_block(source, tables)
    if isinstance(tables, AffineSampling):
        run_affine_block(device, source, tables, out)
        return
    axes = as_3d(tables)
    if uses_label_arithmetic(tables, source.dtype):
        _run_label(device, view_3d(source), tables, axes, view_3d(out))
        return
    work = working_dtype(source.dtype)
    values = view_3d(smooth_kernels(device, source, tables, work))
    if tables.interpolation is Interpolation.CUBIC:
        values = _spline_coefficients(device, values, tables, axes, work)
    _run_separable(device, values, tables, axes, work, TAPS[tables.interpolation], view_3d(out))


def smooth_kernels(device: Device, source, tables: SamplingTables, work):
    """Anti-aliasing with the kernels: one ``gr_table_pass`` launch per smoothed axis, axes in
    order, each reading the previous result (the first the block itself) and writing a new
    array in the working dtype ``work`` with that axis's margins cropped; the tables are
    :func:`~gpuresample.tables.smoothing_passes`. ``source`` itself when no axis is smoothed;
    else an array of ``source``'s number of axes."""
    passes = smoothing_passes(tables)
    if all(p is None for p in passes):
        return source
    work = np.dtype(work)
    values = view_3d(source)
    offset = 3 - len(passes)
    for axis, table in enumerate(passes):
        if table is None:
            continue
        axis += offset
        strides = element_strides(values)
        shape = list(values.shape)
        shape[axis] = table.n_out
        out = device.empty(tuple(shape), work)
        offsets, weights = device.upload_cached(
            tables, ("smoothing", axis, strides, work.str),
            lambda table=table, stride=strides[axis]: smoothing_table(table, stride, work))
        args = (values, out, offsets, weights, np.int32(table.taps), np.int32(axis)) + _i64(out.shape) + _i64(strides)
        grid, block = voxel_launch_shape(out.shape)
        device.launch(Launch(table_pass_name(values.dtype, work), grid, block, args))
        values = out
    return values[0] if source.ndim == 2 else values


def march_plan(order) -> tuple:
    """``(march, axis_m, axis_p, a_is_x)``: how :func:`_run_separable` lays threads over the output.

    Threads run along output axis 2 (coalesced), over axis ``axis_p``, and each marches
    along ``axis_m``. The marched slot is C (the last pass: one kept partial sum per input
    row) unless C is axis 2, then B. ``a_is_x`` says, for a march along C, that axis 2 is
    slot A (else slot B).
    """
    a, b, c = (int(axis) for axis in order)
    if c != 2:
        return MARCH_C, c, (b if a == 2 else a), int(a == 2)
    return MARCH_B, b, a, 0


def march_run(n_march: int, threads_across: int) -> int:
    """Outputs per thread along the marched axis: long runs, but at least ``TARGET_THREADS`` threads."""
    runs = max(1, math.ceil(TARGET_THREADS / max(1, threads_across)))
    return max(1, min(MAX_RUN, math.ceil(n_march / runs)))


def offset_extent(shape, strides) -> int:
    """Largest absolute element offset from element 0 of an array of ``shape`` and ``strides``."""
    return sum(abs(int(s)) * (int(n) - 1) for n, s in zip(shape, strides))


def index_dtype(*extents) -> np.dtype:
    """int32 when every offset (and loop counter) stays below ``INT32_MAX_OFFSET``, else int64."""
    return np.dtype(np.int32) if max(extents) <= INT32_MAX_OFFSET else np.dtype(np.int64)


def march_launch_shape(n_x: int, n_p: int, n_runs: int) -> tuple:
    """``(grid, block)`` of the separable kernel: x along output axis 2, y along P, z over runs."""
    block_x = min(max(MIN_BLOCK_X, 1 << max(0, n_x - 1).bit_length()), BLOCK_THREADS)
    block_y = BLOCK_THREADS // block_x
    grid = (math.ceil(n_x / block_x), min(math.ceil(n_p / block_y), MAX_GRID_YZ), min(n_runs, MAX_GRID_YZ))
    return grid, (block_x, block_y, 1)


@dataclass(frozen=True)
class _SeparablePlan:
    """Everything about a separable launch but its arrays (see :func:`_run_separable`):
    the tables' upload key and how to build them, and the scalar arguments after them."""

    name: str
    grid: tuple
    block: tuple
    table_key: tuple
    build_tables: object
    taps: tuple
    scalars: tuple


def _plan_separable(tables, axes, work, taps, values_shape, strides, out_shape, out_strides,
                    values_dtype, out_dtype) -> _SeparablePlan:
    order = tables.order
    march, axis_m, axis_p, a_is_x = march_plan(order)
    n_m, n_p, n_x = out_shape[axis_m], out_shape[axis_p], out_shape[2]
    run = march_run(n_m, n_x * n_p)
    n_runs = math.ceil(n_m / run)
    loop_bound = max(n_m + run * MAX_GRID_YZ, n_p + BLOCK_THREADS * MAX_GRID_YZ, n_x * taps)
    index = index_dtype(offset_extent(values_shape, strides), offset_extent(out_shape, out_strides), loop_bound)

    def build():
        read = axes
        if tables.interpolation is Interpolation.CUBIC:  # rows counted from the first kept coefficient
            read = tuple(t.coefficient_indexed() for t in axes)
        return separable_tables(read, order, strides, work, index)

    key = ("separable", strides, np.dtype(work).str, index.str)
    scalar = index.type
    scalars = (scalar(n_m), scalar(n_p), scalar(n_x), scalar(out_strides[axis_m]), scalar(out_strides[axis_p]),
               scalar(out_strides[2]), scalar(run), np.int32(a_is_x))
    grid, block = march_launch_shape(n_x, n_p, n_runs)
    name = separable_name(values_dtype, work, out_dtype, taps, march, index)
    return _SeparablePlan(name, grid, block, key, build, tuple(np.int32(axes[a].taps) for a in order), scalars)


def _run_separable(device, values, tables, axes, work, taps, out3) -> None:
    """One launch of the separable kernel; its plan is made once per tables, layouts and dtypes."""
    strides, out_strides = element_strides(values), element_strides(out3)
    layout = (values.shape, strides, out3.shape, out_strides, values.dtype.str, out3.dtype.str)
    plan = device.cached(tables, ("separable plan",) + layout, lambda: _plan_separable(
        tables, axes, work, taps, values.shape, strides, out3.shape, out_strides, values.dtype, out3.dtype))
    on_device = device.upload_cached(tables, plan.table_key, plan.build_tables)
    args = [values, out3]
    for slot in range(3):
        args += [on_device[2 * slot], on_device[2 * slot + 1], plan.taps[slot]]
    device.launch(Launch(plan.name, plan.grid, plan.block, tuple(args) + plan.scalars))


def _run_label(device, src3, tables, axes, out3) -> None:
    dtype = src3.dtype
    view = label_view_dtype(dtype)
    target = out3 if out3.dtype == dtype else device.empty(out3.shape, dtype)
    tables_on_device = device.upload_cached(tables, ("label",), lambda: label_tables(axes))
    src_view, target_view = src3.view(view), target.view(view)
    strides = element_strides(src_view)
    args = [src_view, target_view]
    for axis, table in enumerate(axes):
        args += [tables_on_device[2 * axis], tables_on_device[2 * axis + 1], np.int32(table.taps),
                 np.int64(strides[axis])]
    args += _i64(target.shape) + _i64(element_strides(target_view))
    grid, block = voxel_launch_shape(target.shape)
    device.launch(Launch(label_name(dtype), grid, block, tuple(args)))
    if target is not out3:
        out3[...] = target


def _coefficient_shape(axes) -> tuple:
    """Shape of the coefficient array: kept rows along cubic axes, the input rows along others."""
    return tuple(kept_coefficient_rows(t) for t in axes)


def _spline_coefficients(device, values3, tables, axes, work):
    """Cubic B-spline coefficients over each table's kept rows, in the working dtype.

    Gathered and prefiltered in float64 (rounded to ``work`` after each axis, as the CPU
    stores them); for a float32 ``work`` the last axis's pass writes a float32 copy.
    """
    coef = device.empty(_coefficient_shape(axes), COEFFICIENT_DTYPE)
    maps_on_device = device.upload_cached(tables, ("coefficient maps",), lambda: coefficient_row_maps(axes))
    grid, block = voxel_launch_shape(coef.shape)
    device.launch(Launch(gather_name(values3.dtype), grid, block,
                         (values3, coef, *maps_on_device) + _i64(element_strides(values3)) + _i64(coef.shape)))
    strides = element_strides(coef)
    narrow = np.dtype(work) == np.float32
    result = device.empty(coef.shape, np.float32) if narrow else coef
    placeholder = coef.view(np.float32)  # the float* argument of passes that write in place
    cubic_axes = [axis for axis, table in enumerate(axes) if table.is_cubic]
    if not cubic_axes:
        raise ValueError("cubic tables without a cubic axis")
    for axis in cubic_axes:
        table = axes[axis]
        if table.is_cut:  # a slab: continue the whole line's recursion from its states
            last = narrow and axis == cubic_axes[-1]
            _prefilter_cut(device, coef, result if last else placeholder, axis, axes, np.int32(narrow), np.int32(last))
            continue
        first, stop = table.coefficient_rows()
        n_ext = table.pad_before + table.source_length + table.pad_after
        if n_ext - stop > MAX_UNKEPT_TAIL:
            raise ValueError(f"cubic table keeps rows up to {stop} of {n_ext}; the prefilter kernel "
                             f"holds at most {MAX_UNKEPT_TAIL} unkept trailing rows")
        last = narrow and axis == cubic_axes[-1]
        outer, inner = (a for a in range(3) if a != axis)
        n_lines = coef.shape[outer] * coef.shape[inner]
        grid, block = line_launch_shape(n_lines)
        args = (coef, result if last else placeholder)
        args += _i64((n_lines, coef.shape[inner], strides[outer], strides[inner], strides[axis]))
        args += tuple(np.int32(v) for v in (stop - first, first, table.pad_before, table.source_length,
                                            table.pad_after))
        args += (np.float64(CUBIC_POLE), np.int32(np.dtype(work) == np.float32), np.int32(last))
        device.launch(Launch(PREFILTER_NAME, grid, block, args))
    return result


def _prefilter_cut(device, coef, narrowed, axis, axes, round_to_float, narrow_out) -> None:
    """A cubic slab's prefilter along ``axis``, from the whole line's states (one per gathered line).

    Stores as ``gr_spline_prefilter`` does: in place (rounded to float32 for a float32
    working type), or into ``narrowed`` as float32 on the last pass (``narrow_out``).
    """
    table = axes[axis]
    if table.states is None:
        raise missing_states_error(table)
    outer, inner = (a for a in range(3) if a != axis)
    maps = coefficient_maps(axes)
    causal, anticausal = device.upload([gathered_states(state, axes, maps, axis) for state in table.states])
    strides = element_strides(coef)
    n_lines = coef.shape[outer] * coef.shape[inner]
    grid, block = line_launch_shape(n_lines)
    first, stop = table.coefficient_rows()
    args = (coef, narrowed) + _i64((n_lines, coef.shape[inner], strides[outer], strides[inner], strides[axis]))
    args += (np.int32(stop - first), np.float64(CUBIC_POLE), causal, anticausal, round_to_float, narrow_out)
    device.launch(Launch(PREFILTER_CUT_NAME, grid, block, args))


def _trailing_3d(array):
    """2-D arrays with a trailing length-1 axis, as :meth:`AffineSampling.as_3d` lays them out."""
    return array[..., None] if array.ndim == 2 else array


def run_affine_block(device: Device, source, sampling: AffineSampling, out) -> None:
    """An oblique block: one launch of the ``kernels/affine.cu`` kernel for its kind.

    Cubic first computes the block's coefficients in the working dtype with the same
    gather and prefilter launches as the per-axis path. Labels and nearest
    copies read bool as unsigned char (``label_view_dtype``) and float16 as ``gr_half`` (labels
    compared by value, copied as stored).
    """
    m, n_src, first, pads = sampling.as_3d()
    src3, out3 = _trailing_3d(source), _trailing_3d(out)
    in_dtype, out_dtype = np.dtype(src3.dtype), np.dtype(out3.dtype)
    name = affine_name(in_dtype, out_dtype, sampling.interpolation)
    fill = np.float64(sampling.fill)
    values, target, label_block = src3, out3, None
    if name.startswith(("gr_affine_label", "gr_affine_copy")):
        if out_dtype != in_dtype:  # labels into another dtype (fill checked by onto.check_label_fill)
            target = label_block = device.empty(out3.shape, in_dtype)
        view = label_view_dtype(in_dtype)
        if in_dtype == np.float16:  # the float16 fill, exact through the kernel's float32 (gr_fill_value)
            fill = np.float64(np.float16(sampling.fill))
        values, target = src3.view(view), target.view(view)
    elif sampling.interpolation is Interpolation.CUBIC:
        values = _spline_coefficients(device, src3, sampling, sampling.lines_3d(), working_dtype(in_dtype))
    (matrix,) = device.upload([np.ascontiguousarray(m.reshape(-1), np.float64)])
    args = (values, target, matrix) + _i64(n_src) + _i64(first)
    args += (np.int64(sampling.out_start), np.float64(BAND_ATOL_VOXELS), fill)
    args += _i64(element_strides(values)) + _i64(target.shape) + _i64(element_strides(target))
    if sampling.interpolation is Interpolation.CUBIC:
        args += _i64(pads)
    grid, block = voxel_launch_shape(target.shape)
    device.launch(Launch(name, grid, block, args))
    if label_block is not None:
        out3[...] = label_block


def kernels_scratch_bytes(tables: SamplingTables, in_dtype, out_dtype) -> int:
    """Device bytes :func:`run_kernels` allocates besides the input and output blocks.

    Cubic: the float64 coefficients (and their float32 copy for a float32 working
    dtype); anti-aliasing: two consecutive smoothing passes' results in the working dtype
    (the last one is what is sampled); labels written to another dtype: a label block.
    Tables are negligible.
    """
    in_dtype, out_dtype = np.dtype(in_dtype), np.dtype(out_dtype)
    if isinstance(tables, AffineSampling):  # the coefficients (cubic), a block of labels (labels into another dtype)
        total = 0
        if tables.is_cubic:  # float64 coefficients, and their float32 copy for a float32 working dtype
            work = working_dtype(in_dtype)
            itemsize = COEFFICIENT_DTYPE.itemsize + (work.itemsize if work != COEFFICIENT_DTYPE else 0)
            total += math.prod(kept_coefficient_rows(t) for t in tables.lines_3d()) * itemsize
        if tables.interpolation is Interpolation.LABEL and in_dtype != out_dtype:
            total += math.prod(tables.output_shape) * in_dtype.itemsize
        return total
    axes = as_3d(tables)
    total = 0
    if is_smoothed(tables):  # each pass's result while the next is written; the last one is sampled
        _, passes = smoothing_sizes(tables)
        total += max(a + b for a, b in zip(passes, passes[1:] + [0])) * working_dtype(in_dtype).itemsize
    if tables.interpolation is Interpolation.CUBIC:
        work = working_dtype(in_dtype)
        itemsize = COEFFICIENT_DTYPE.itemsize + (work.itemsize if work != COEFFICIENT_DTYPE else 0)
        total += math.prod(_coefficient_shape(axes)) * itemsize
        if tables.axes[0].is_cut:  # the states of every gathered line, uploaded
            total += 2 * math.prod(_coefficient_shape(axes)) // max(_coefficient_shape(axes)[len(axes) - len(tables.axes)], 1) * COEFFICIENT_DTYPE.itemsize
    if uses_label_arithmetic(tables, in_dtype) and in_dtype != out_dtype:
        total += math.prod(tables.output_shape) * in_dtype.itemsize
    return total


__all__ = ["Launch", "Device", "run_kernels", "smooth_kernels", "run_affine_block", "kernels_scratch_bytes",
           "voxel_launch_shape", "line_launch_shape", "march_plan", "march_run", "march_launch_shape", "index_dtype",
           "offset_extent", "element_strides", "COEFFICIENT_DTYPE", "MAX_UNKEPT_TAIL"]
