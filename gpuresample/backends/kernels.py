"""Backend ``kernels``: our CUDA kernels (``kernels/*.cu``), compiled at run time by CuPy.

The kernels read the same sampling tables as every other backend and share their
arithmetic with the CPU loops (the ``kernels/*.cuh`` headers, docs/design.md section 2), so
results agree with the CPU backend bit for bit. Sizes, strides and table pointers are kernel arguments: a
module is compiled once per (input dtype, output dtype, interpolation) and device, and
CuPy keeps the binary on disk for later processes.

This module splits in two:

* what to launch — :func:`run_kernels` turns a block's tables into kernel launches
  (names, launch geometry, arguments). It needs only NumPy and a :class:`Device`,
  so ``tests/harness`` runs the very same launches through the kernels compiled as C++;
* how to launch on a GPU — :class:`CupyDevice` (CuPy ``RawModule``) and
  :class:`KernelsBackend`.

Importing this module needs neither CuPy nor a GPU.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import _cupy
from ..interpolation import Interpolation, working_dtype
from ..onto import BAND_ATOL_VOXELS, AffineSampling
from ..tables import CUBIC_PAD, CUBIC_POLE, SamplingTables, as_3d, smoothing_passes
from ..spline_states import missing_states_error
from ._common import (WIDE_INTEGERS, check_source_block, coefficient_maps, is_smoothed, kept_coefficient_rows,
                      label_view_dtype, smoothing_sizes, uses_label_arithmetic, view_3d)
from .base import BackendUnavailable, DeviceBackend

#: The header every kernel source includes.
KERNEL_HEADER = "gpuresample.cuh"
#: Kernel sources, in the order they are concatenated into one module.
KERNEL_FILES = ("separable.cu", "label.cu", "spline.cu", "affine.cu")
#: NVRTC options: no fused multiply-add, so products and sums round as on the CPU.
COMPILE_OPTIONS = ("-std=c++17", "--fmad=false")
#: C++ element type of each dtype in the kernels (float16 as its bit pattern).
C_TYPES = {
    np.dtype(np.float32): "float", np.dtype(np.float64): "double", np.dtype(np.float16): "gr_half",
    np.dtype(np.uint8): "unsigned char", np.dtype(np.int8): "signed char",
    np.dtype(np.uint16): "unsigned short", np.dtype(np.int16): "short",
    np.dtype(np.uint32): "unsigned int", np.dtype(np.int32): "int", np.dtype(np.bool_): "bool",
    np.dtype(np.int64): "long long", np.dtype(np.uint64): "unsigned long long",
}
#: Taps per axis of each separable interpolation (the kernel's unrolled loop length).
TAPS = {Interpolation.NEAREST: 1, Interpolation.LINEAR: 2, Interpolation.CUBIC: 4}
#: Cubic coefficients are gathered and prefiltered in float64 on the device so the in-place
#: prefilter keeps the CPU's float64 intermediate values; they are rounded to the working
#: dtype where the CPU stores them, and for a float32 working dtype the last prefilter pass
#: writes them as float32 (what the separable kernel then reads: half the traffic).
COEFFICIENT_DTYPE = np.dtype(np.float64)
#: Element type of the separable kernel's offsets: int (32-bit arithmetic, fewer registers)
#: when every offset fits, else long long.
INDEX_TYPES = {np.dtype(np.int32): "int", np.dtype(np.int64): "long long"}
#: Offsets and loop counters up to this stay in 32-bit arithmetic (int's maximum).
INT32_MAX_OFFSET = 2 ** 31 - 1
#: How a separable thread marches (GR_MARCH_B / GR_MARCH_C in kernels/separable.cu): along
#: slot B keeping p1 rows, or along slot C keeping one p2 per input row.
MARCH_B = 1
MARCH_C = 2
#: A separable launch aims at this many threads (about two full waves of an H100's 132
#: SMs x 2048 threads); longer runs per thread are used only beyond it.
TARGET_THREADS = 1 << 19
#: Longest run of outputs one thread marches through (an earlier GPU probe tried 8-128).
MAX_RUN = 128
#: Device table uploads kept per process (LRU): tables of a repeated (source grid, target
#: grid, interpolation) call are uploaded once; each entry is a few KB to a few MB.
TABLE_CACHE_ENTRIES = 64
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
#: Packed table uploads start every array on this many bytes (the widest element, double).
TABLE_ALIGN = 16
PREFILTER_NAME = "gr_spline_prefilter"
#: The prefilter of a cubic slab, continuing the whole line's recursion from its states.
PREFILTER_CUT_NAME = "gr_spline_prefilter_cut"
#: ``extern "C"`` kernels: found by name in a module, no name expression needed.
EXTERN_C_NAMES = (PREFILTER_NAME, PREFILTER_CUT_NAME)

assert CUBIC_PAD <= MAX_UNKEPT_TAIL, "kernels/gpuresample.cuh: raise GR_MAX_UNKEPT_TAIL"


# ---------------------------------------------------------------------------------------
# Sources and kernel names
# ---------------------------------------------------------------------------------------

def kernel_source_dir() -> Path | None:
    """Where the kernel sources are: ``gpuresample/_kernels`` in a wheel, else the repo's ``kernels/``.

    Returns None when neither holds every file.
    """
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "_kernels", package.parent / "kernels"):
        if all((candidate / name).is_file() for name in (KERNEL_HEADER,) + KERNEL_FILES):
            return candidate
    return None


#: A quoted include of a file next to the sources (``#include "gr_label.cuh"``).
_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]+"([^"]+)"[ \t]*$', re.MULTILINE)


def _inlined(directory: Path, name: str, seen: set) -> str:
    """``name``'s text with every quoted include replaced by that file's text, recursively;
    a file already inlined (``seen``) is not repeated. ``#line`` directives keep compiler
    messages pointing at the original files and lines."""
    text = (directory / name).read_text()
    parts = [f'#line 1 "{name}"\n']
    position = 0
    for match in _INCLUDE.finditer(text):
        parts.append(text[position:match.start()])
        line = text.count("\n", 0, match.start()) + 1
        header = match.group(1)
        if header in seen:
            parts.append(f"// {header} is inlined above")
        else:
            if not (directory / header).is_file():
                raise FileNotFoundError(f"{directory / name}:{line}: included file {header} not found")
            seen.add(header)
            parts.append(_inlined(directory, header, seen) + f'\n#line {line + 1} "{name}"')
        position = match.end()
    parts.append(text[position:])
    return "".join(parts)


def module_source(directory: Path) -> str:
    """The text CuPy compiles: the header, then every kernel file, includes resolved.

    Every ``#include "x.cuh"`` of a kernel file or header is inlined, once (not found
    through an include path), so CuPy's on-disk cache, keyed by this text, never serves a
    binary built from an older header.
    """
    seen = {KERNEL_HEADER}
    parts = [_inlined(directory, KERNEL_HEADER, seen)]
    for name in KERNEL_FILES:
        seen.add(name)
        parts.append(_inlined(directory, name, seen))
    return "\n".join(parts)


def c_type(dtype) -> str:
    """The kernels' element type for ``dtype``; ``TypeError`` for anything unsupported."""
    dtype = np.dtype(dtype)
    try:
        return C_TYPES[dtype]
    except KeyError:
        raise TypeError(f"the CUDA kernels do not take dtype {dtype}") from None


def separable_name(source_dtype, work, out_dtype, taps: int, march: int, index) -> str:
    """Name expression of the separable kernel reading ``source_dtype``, summing in ``work``,
    marching along slot ``march`` with offsets of dtype ``index`` (int32 or int64)."""
    return (f"gr_separable<{c_type(source_dtype)}, {c_type(work)}, {c_type(out_dtype)}, {taps}, {march}, "
            f"{INDEX_TYPES[np.dtype(index)]}>")


def _separable_names(sources, work, out_dtype, taps: int) -> tuple:
    return tuple(separable_name(source, work, out_dtype, taps, march, index)
                 for source in dict.fromkeys(np.dtype(s) for s in sources)
                 for march in (MARCH_B, MARCH_C) for index in INDEX_TYPES)


def table_pass_name(source_dtype, work) -> str:
    """Name expression of the one-axis pass with any number of taps (the anti-aliasing
    Gaussian) reading ``source_dtype`` and writing ``work``."""
    return f"gr_table_pass<{c_type(source_dtype)}, {c_type(work)}>"


def label_name(dtype) -> str:
    """Name expression of the label kernel for labels of ``dtype`` (bool as unsigned char, float16 as gr_half)."""
    dtype = np.dtype(dtype)
    return f"gr_label<{c_type(label_view_dtype(dtype))}>"


def gather_name(dtype) -> str:
    """Name expression of the kernel gathering ``dtype`` rows into float64 coefficients."""
    return f"gr_gather_coefficients<{c_type(dtype)}>"


def affine_name(in_dtype, out_dtype, interpolation) -> str:
    """Name expression of the oblique-target kernel (``kernels/affine.cu``) for this kind of block."""
    interpolation = Interpolation.parse(interpolation)
    in_dtype, out_dtype = np.dtype(in_dtype), np.dtype(out_dtype)
    if interpolation is Interpolation.LABEL or (interpolation is Interpolation.NEAREST and in_dtype == out_dtype):
        kind = "label" if interpolation is Interpolation.LABEL else "copy"
        return f"gr_affine_{kind}<{c_type(label_view_dtype(in_dtype))}>"
    if interpolation is Interpolation.NEAREST:
        return f"gr_affine_nearest<{c_type(in_dtype)}, {c_type(out_dtype)}>"
    work = c_type(working_dtype(in_dtype))
    if interpolation is Interpolation.LINEAR:
        return f"gr_affine_linear<{c_type(in_dtype)}, {work}, {c_type(out_dtype)}>"
    return f"gr_affine_cubic<{work}, {c_type(out_dtype)}>"


def kernel_names(in_dtype, out_dtype, interpolation) -> tuple:
    """Every kernel a block of this kind may launch, with or without anti-aliasing, for
    targets derived from the source and for targets on another grid (oblique ones).

    This is what one compiled module holds.
    """
    return _table_kernel_names(in_dtype, out_dtype, interpolation) + (affine_name(in_dtype, out_dtype, interpolation),)


def _table_kernel_names(in_dtype, out_dtype, interpolation) -> tuple:
    interpolation = Interpolation.parse(interpolation)
    in_dtype, out_dtype = np.dtype(in_dtype), np.dtype(out_dtype)
    if interpolation is Interpolation.LABEL or (interpolation is Interpolation.NEAREST and in_dtype in WIDE_INTEGERS):
        return (label_name(in_dtype),)  # see uses_label_arithmetic
    work = working_dtype(in_dtype)
    taps = TAPS[interpolation]
    names = ()
    if interpolation in (Interpolation.LINEAR, Interpolation.CUBIC):  # anti-aliasing: input, then smoothed rows
        names = tuple(dict.fromkeys((table_pass_name(in_dtype, work), table_pass_name(work, work))))
    if interpolation is Interpolation.CUBIC:
        gathers = tuple(dict.fromkeys((gather_name(in_dtype), gather_name(work))))
        return names + gathers + EXTERN_C_NAMES + _separable_names((work,), work, out_dtype, taps)
    return names + _separable_names((in_dtype, work), work, out_dtype, taps)


# ---------------------------------------------------------------------------------------
# What to launch
# ---------------------------------------------------------------------------------------

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
            lambda table=table, stride=strides[axis]: [np.ascontiguousarray(table.index * np.int64(stride), np.int64),
                                                       np.ascontiguousarray(table.weight, dtype=work)])
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


def separable_tables(axes, order, strides, work, index) -> list:
    """Host arrays the separable kernel reads, per slot A, B, C: offsets (rows times the
    source stride, in ``index``) and weights (in ``work``)."""
    host = []
    for axis in order:
        table = axes[axis]
        host += [np.ascontiguousarray(table.index * np.int64(strides[axis]), dtype=index),
                 np.ascontiguousarray(table.weight, dtype=work)]
    return host


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


def _label_tables(axes) -> list:
    host = []
    for table in axes:
        host += [np.ascontiguousarray(table.index, dtype=np.int32),
                 np.ascontiguousarray(table.weight, dtype=np.float64)]
    return host


def _run_label(device, src3, tables, axes, out3) -> None:
    dtype = src3.dtype
    view = label_view_dtype(dtype)
    target = out3 if out3.dtype == dtype else device.empty(out3.shape, dtype)
    tables_on_device = device.upload_cached(tables, ("label",), lambda: _label_tables(axes))
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


def _coefficient_maps(axes) -> list:
    return [np.ascontiguousarray(m, dtype=np.int32) for m in coefficient_maps(axes)]


def _coefficient_shape(axes) -> tuple:
    """Shape of the coefficient array: kept rows along cubic axes, the input rows along others."""
    return tuple(kept_coefficient_rows(t) for t in axes)


def _spline_coefficients(device, values3, tables, axes, work):
    """Cubic B-spline coefficients over each table's kept rows, in the working dtype.

    Gathered and prefiltered in float64 (rounded to ``work`` after each axis, as the CPU
    stores them); for a float32 ``work`` the last axis's pass writes a float32 copy.
    """
    coef = device.empty(_coefficient_shape(axes), COEFFICIENT_DTYPE)
    maps_on_device = device.upload_cached(tables, ("coefficient maps",), lambda: _coefficient_maps(axes))
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


def gathered_states(state, axes, maps, axis) -> np.ndarray:
    """A state plane (the input's other axes) at the gathered lines of the coefficient array."""
    outer, inner = (a for a in range(3) if a != axis)
    plane = np.asarray(state, dtype=np.float64).reshape(axes[outer].source_length, axes[inner].source_length)
    return np.ascontiguousarray(plane[np.ix_(maps[outer], maps[inner])])


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


# ---------------------------------------------------------------------------------------
# How to launch on a GPU
# ---------------------------------------------------------------------------------------

#: (device id, in dtype, out dtype, interpolation) -> compiled RawModule.
_compile_cache = {}
#: (device id, in dtype, out dtype, interpolation, name) -> RawKernel: get_function
#: builds a new RawKernel on every call, which costs microseconds per launch.
_function_cache = {}
#: (device id, id(tables), key) -> (tables, value), least recently used first: device
#: tables (with their pinned host buffer, the stream of the copy and an event after it) and
#: launch plans. The tables object is kept so its id is not reused while cached.
_table_cache = OrderedDict()
#: The kernel sources' folder and module text, found once per process (no file-system
#: access per call).
_sources = {}


def clear_caches() -> None:
    """Forget compiled modules, kernel functions, device tables and the kernel source text.

    For tests (and after the kernel files changed on disk): the next call finds, reads and
    compiles the sources again and uploads its tables again.

    Examples
    --------
    >>> from gpuresample.backends.kernels import clear_caches
    >>> clear_caches()
    """
    _compile_cache.clear()
    _function_cache.clear()
    _table_cache.clear()
    _sources.clear()


def _source_dir() -> Path | None:
    """:func:`kernel_source_dir`, looked up once per process."""
    if "dir" not in _sources:
        _sources["dir"] = kernel_source_dir()
    return _sources["dir"]


def _module_text() -> str:
    """:func:`module_source` of the kernel sources, read once per process."""
    if "text" not in _sources:
        directory = _source_dir()
        if directory is None:
            raise BackendUnavailable("CUDA kernel sources not found (kernels/ or gpuresample/_kernels/)")
        _sources["text"] = module_source(directory)
    return _sources["text"]


def _kernel_function(cupy, key: tuple, name: str):
    cache_key = (cupy.cuda.runtime.getDevice(),) + key + (name,)
    function = _function_cache.get(cache_key)
    if function is None:
        function = _function_cache[cache_key] = _compiled_module(cupy, key).get_function(name)
    return function


def _compiled_module(cupy, key: tuple):
    """The RawModule for ``key = (in dtype, out dtype, interpolation)``, per device."""
    cache_key = (cupy.cuda.runtime.getDevice(),) + key
    module = _compile_cache.get(cache_key)
    if module is None:
        names = [n for n in kernel_names(*key) if n not in EXTERN_C_NAMES]
        module = cupy.RawModule(code=_module_text(), options=COMPILE_OPTIONS, name_expressions=names)
        module.compile()
        _compile_cache[cache_key] = module
    return module


def _aligned(offset: int) -> int:
    return -(-offset // TABLE_ALIGN) * TABLE_ALIGN


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
        offsets, total = [], 0
        for array in arrays:
            total = _aligned(total)
            offsets.append(total)
            total += array.nbytes
        total = max(total, 1)
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
        _kernel_function(self.cupy, self.key, launch.name)(launch.grid, launch.block, launch.args)


class KernelsBackend(DeviceBackend):
    """CuPy arrays in, CuPy arrays out, through the CUDA kernels in ``kernels/*.cu``."""

    name = "kernels"

    def unavailable_reason(self) -> str | None:
        try:
            _cupy.import_cupy()
        except BackendUnavailable as exc:
            return str(exc)
        if _source_dir() is None:
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


__all__ = ["KernelsBackend", "CupyDevice", "Device", "Launch", "run_kernels", "smooth_kernels", "kernel_names",
           "kernel_source_dir", "module_source", "kernels_scratch_bytes", "clear_caches"]
