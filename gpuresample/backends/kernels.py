"""Backend ``kernels``: our CUDA kernels (``kernels/*.cu``), compiled at run time by CuPy.

The kernels read the same sampling tables as every other backend and follow the CPU
backend's arithmetic contract (see ``gpuresample/backends/_cpu_loops.py``), so results
agree with it bit for bit. Sizes, strides and table pointers are kernel arguments: a
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import _cupy
from ..interpolation import Interpolation, working_dtype
from ..tables import CUBIC_PAD, CUBIC_POLE, SamplingTables, as_3d
from ._common import (WIDE_INTEGERS, check_source_block, coefficient_maps, is_smoothed, kept_coefficient_rows,
                      label_view_dtype, uses_label_arithmetic, view_3d)
from .base import BackendUnavailable, DeviceBackend

#: The header every kernel source includes.
KERNEL_HEADER = "gpuresample.cuh"
#: Kernel sources, in the order they are concatenated into one module.
KERNEL_FILES = ("separable.cu", "label.cu", "spline.cu")
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
#: Cubic coefficients live in float64 on the device so the in-place prefilter keeps the
#: CPU's float64 intermediate values; they are rounded to the working dtype where the CPU
#: stores them.
COEFFICIENT_DTYPE = np.dtype(np.float64)
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


_INCLUDE_HEADER = re.compile(r'^\s*#\s*include\s+"' + re.escape(KERNEL_HEADER) + r'"\s*$', re.MULTILINE)


def module_source(directory: Path) -> str:
    """The text CuPy compiles: the header, then every kernel file, includes resolved.

    The header is inlined (not found through an include path) so CuPy's on-disk cache,
    keyed by this text, never serves a binary built from an older header.
    """
    parts = [f'#line 1 "{KERNEL_HEADER}"\n' + (directory / KERNEL_HEADER).read_text()]
    for name in KERNEL_FILES:
        text = _INCLUDE_HEADER.sub(f"// {KERNEL_HEADER} is inlined above", (directory / name).read_text())
        parts.append(f'#line 1 "{name}"\n' + text)
    return "\n".join(parts)


def c_type(dtype) -> str:
    """The kernels' element type for ``dtype``; ``TypeError`` for anything unsupported."""
    dtype = np.dtype(dtype)
    try:
        return C_TYPES[dtype]
    except KeyError:
        raise TypeError(f"the CUDA kernels do not take dtype {dtype}") from None


def separable_name(source_dtype, work, out_dtype, taps: int) -> str:
    """Name expression of the separable kernel reading ``source_dtype``, summing in ``work``."""
    return f"gr_separable<{c_type(source_dtype)}, {c_type(work)}, {c_type(out_dtype)}, {taps}>"


def label_name(dtype) -> str:
    """Name expression of the label kernel for labels of ``dtype`` (compared as its view)."""
    dtype = np.dtype(dtype)
    return f"gr_label<{c_type(label_view_dtype(dtype))}>"


def gather_name(dtype) -> str:
    """Name expression of the kernel gathering ``dtype`` rows into float64 coefficients."""
    return f"gr_gather_coefficients<{c_type(dtype)}>"


def kernel_names(in_dtype, out_dtype, interpolation) -> tuple:
    """Every kernel a block of this kind may launch, with or without anti-aliasing.

    This is what one compiled module holds.
    """
    interpolation = Interpolation.parse(interpolation)
    in_dtype, out_dtype = np.dtype(in_dtype), np.dtype(out_dtype)
    if interpolation is Interpolation.LABEL or (interpolation is Interpolation.NEAREST and in_dtype in WIDE_INTEGERS):
        return (label_name(in_dtype),)  # see uses_label_arithmetic
    work = working_dtype(in_dtype)
    taps = TAPS[interpolation]
    if interpolation is Interpolation.CUBIC:
        gathers = tuple(dict.fromkeys((gather_name(in_dtype), gather_name(work))))
        return gathers + (PREFILTER_NAME, separable_name(COEFFICIENT_DTYPE, work, out_dtype, taps))
    return tuple(dict.fromkeys((separable_name(in_dtype, work, out_dtype, taps),
                                separable_name(work, work, out_dtype, taps))))


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

    def launch(self, launch: Launch) -> None:
        raise NotImplementedError

    def smooth(self, source, tables: SamplingTables, work):
        """Anti-aliasing as :func:`gpuresample.backends.cpu.smooth` does it (margins cropped)."""
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
    axes = as_3d(tables)
    if uses_label_arithmetic(tables, source.dtype):
        _run_label(device, view_3d(source), axes, view_3d(out))
        return
    work = working_dtype(source.dtype)
    values = source
    if is_smoothed(tables):
        values = device.smooth(source, tables, work)
    values = view_3d(values)
    if tables.interpolation is Interpolation.CUBIC:
        values = _spline_coefficients(device, values, axes, work)
        axes = tuple(t.coefficient_indexed() for t in axes)
    _run_separable(device, values, axes, tables.order, work, TAPS[tables.interpolation], view_3d(out))


def _run_separable(device, values, axes, order, work, taps, out3) -> None:
    host = []
    for axis in order:
        host += [np.ascontiguousarray(axes[axis].index, dtype=np.int32),
                 np.ascontiguousarray(axes[axis].weight, dtype=work)]
    tables_on_device = device.upload(host)
    strides = element_strides(values)
    args = [values, out3]
    for slot, axis in enumerate(order):
        index, weight = tables_on_device[2 * slot], tables_on_device[2 * slot + 1]
        args += [index, weight, np.int32(axes[axis].taps), np.int64(strides[axis]), np.int32(axis)]
    args += _i64(out3.shape) + _i64(element_strides(out3))
    grid, block = voxel_launch_shape(out3.shape)
    device.launch(Launch(separable_name(values.dtype, work, out3.dtype, taps), grid, block, tuple(args)))


def _run_label(device, src3, axes, out3) -> None:
    dtype = src3.dtype
    view = label_view_dtype(dtype)
    target = out3 if out3.dtype == dtype else device.empty(out3.shape, dtype)
    host = []
    for table in axes:
        host += [np.ascontiguousarray(table.index, dtype=np.int32),
                 np.ascontiguousarray(table.weight, dtype=np.float64)]
    tables_on_device = device.upload(host)
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


def _spline_coefficients(device, values3, axes, work):
    """Float64 cubic B-spline coefficients over each table's kept rows (rounded to ``work``)."""
    maps = coefficient_maps(axes)
    coef = device.empty(tuple(len(m) for m in maps), COEFFICIENT_DTYPE)
    maps_on_device = device.upload([np.ascontiguousarray(m, dtype=np.int32) for m in maps])
    grid, block = voxel_launch_shape(coef.shape)
    device.launch(Launch(gather_name(values3.dtype), grid, block,
                         (values3, coef, *maps_on_device) + _i64(element_strides(values3)) + _i64(coef.shape)))
    strides = element_strides(coef)
    round_to_float = np.int32(np.dtype(work) == np.float32)
    for axis, table in enumerate(axes):
        if not table.is_cubic:
            continue
        first, stop = table.coefficient_rows()
        n_ext = table.pad_before + table.source_length + table.pad_after
        if n_ext - stop > MAX_UNKEPT_TAIL:
            raise ValueError(f"cubic table keeps rows up to {stop} of {n_ext}; the prefilter kernel "
                             f"holds at most {MAX_UNKEPT_TAIL} unkept trailing rows")
        outer, inner = (a for a in range(3) if a != axis)
        n_lines = coef.shape[outer] * coef.shape[inner]
        grid, block = line_launch_shape(n_lines)
        args = _i64((n_lines, coef.shape[inner], strides[outer], strides[inner], strides[axis]))
        args += tuple(np.int32(v) for v in (stop - first, first, table.pad_before, table.source_length,
                                            table.pad_after))
        device.launch(Launch(PREFILTER_NAME, grid, block,
                             (coef,) + args + (np.float64(CUBIC_POLE), round_to_float)))
    return coef


def kernels_scratch_bytes(tables: SamplingTables, in_dtype, out_dtype) -> int:
    """Device bytes :func:`run_kernels` allocates besides the input and output blocks.

    Cubic: the float64 coefficients; anti-aliasing: the smoothed input in the working
    dtype; labels written to another dtype: a label block. Tables are negligible.
    """
    in_dtype, out_dtype = np.dtype(in_dtype), np.dtype(out_dtype)
    axes = as_3d(tables)
    total = 0
    if is_smoothed(tables):
        first, stop = tables.input_rows
        total += 2 * (stop - first) * math.prod(t.source_length for t in axes[1:]) * working_dtype(in_dtype).itemsize
    if tables.interpolation is Interpolation.CUBIC:
        lengths = [kept_coefficient_rows(t) for t in axes]
        total += math.prod(lengths) * COEFFICIENT_DTYPE.itemsize
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


def clear_caches() -> None:
    """Forget every compiled module and kernel function (all devices); they recompile on next use."""
    _compile_cache.clear()
    _function_cache.clear()


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
        directory = kernel_source_dir()
        if directory is None:
            raise BackendUnavailable("CUDA kernel sources not found (kernels/ or gpuresample/_kernels/)")
        names = [n for n in kernel_names(*key) if n != PREFILTER_NAME]
        module = cupy.RawModule(code=module_source(directory), options=COMPILE_OPTIONS,
                                name_expressions=names)
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

    def upload(self, arrays) -> list:
        """One host-to-device copy for all tables (each call to the driver costs microseconds)."""
        offsets, total = [], 0
        for array in arrays:
            total = _aligned(total)
            offsets.append(total)
            total += array.nbytes
        packed = np.zeros(max(total, 1), np.uint8)
        for array, offset in zip(arrays, offsets):
            packed[offset:offset + array.nbytes] = array.reshape(-1).view(np.uint8)
        on_device = self.cupy.asarray(packed)
        return [on_device[o:o + a.nbytes].view(a.dtype).reshape(a.shape) for a, o in zip(arrays, offsets)]

    def launch(self, launch: Launch) -> None:
        _kernel_function(self.cupy, self.key, launch.name)(launch.grid, launch.block, launch.args)

    def smooth(self, source, tables, work):
        from .cupyx import smooth_on_device
        return smooth_on_device(source, tables, work)


class KernelsBackend(DeviceBackend):
    """CuPy arrays in, CuPy arrays out, through the CUDA kernels in ``kernels/*.cu``."""

    name = "kernels"

    def unavailable_reason(self) -> str | None:
        try:
            _cupy.import_cupy()
        except BackendUnavailable as exc:
            return str(exc)
        if kernel_source_dir() is None:
            return "CUDA kernel sources not found (kernels/ next to the package or gpuresample/_kernels/)"
        return None

    def resample_block(self, source, tables: SamplingTables, out) -> None:
        cupy = _cupy.import_cupy()
        device = CupyDevice(cupy, source.dtype, out.dtype, tables.interpolation)
        run_kernels(device, source, tables, out)

    def scratch_bytes(self, tables: SamplingTables, in_dtype, out_dtype) -> int:
        return kernels_scratch_bytes(tables, in_dtype, out_dtype)


__all__ = ["KernelsBackend", "CupyDevice", "Device", "Launch", "run_kernels", "kernel_names",
           "kernel_source_dir", "module_source", "kernels_scratch_bytes", "clear_caches"]
