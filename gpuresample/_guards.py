"""Checks of sizes, of ``out=`` and of the data's values, done once before anything runs.

:mod:`gpuresample._validate` checks arguments by their form; the checks here look at
what the arguments hold: whether the result fits in memory, whether ``out=`` can take
it, and whether the data's values survive the output dtype (labels that a narrower
dtype cannot hold, NaN written to integers). They raise before the first voxel is
computed, so a refused call leaves ``out=`` untouched.
"""

from __future__ import annotations

import math
import mmap
import os
import warnings

import numpy as np

from .arrays import read_rows
from .interpolation import Interpolation

#: The most elements one array can hold (NumPy indexes with ``intp``).
MAX_ELEMENTS = int(np.iinfo(np.intp).max)
#: Bytes of input read at a time by the value checks on host array-likes (Zarr, memmap)
#: and by the per-value checks, so they never hold a second copy of a large volume.
CHECK_BLOCK_BYTES = 64 << 20
#: ``np.shares_memory`` work bound: beyond it, overlap is assumed (a clear refusal,
#: never a wrong result).
OVERLAP_MAX_WORK = 10**6
#: Labels listed at most in an error message.
LISTED_LABELS = 10


def _fmt_bytes(n) -> str:
    from .display import format_bytes
    return format_bytes(n)


# ---------------------------------------------------------------------------------------
# Sizes
# ---------------------------------------------------------------------------------------

def available_host_bytes() -> int | None:
    """Memory a new allocation may take on this host (``MemAvailable + SwapFree``), or None."""
    fields = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                key, _, rest = line.partition(":")
                fields[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    if "MemAvailable" not in fields:
        return None
    return fields["MemAvailable"] + fields.get("SwapFree", 0)


def check_target_size(output_shape, target_shape=None, target_spacing=None) -> None:
    """``ValueError`` naming the target argument when no array can hold the result."""
    count = math.prod(int(n) for n in output_shape)
    if count <= MAX_ELEMENTS:
        return
    given = (f"target_spacing={tuple(target_spacing)!r}" if target_spacing is not None
             else f"target_shape={tuple(target_shape)!r}" if target_shape is not None else "the target grid")
    raise ValueError(f"{given} gives a result of shape {_shape_text(output_shape)}: about 10**{len(str(count)) - 1} "
                     f"voxels, more than any array can hold (2**{MAX_ELEMENTS.bit_length()}); choose a larger "
                     "target_spacing or a smaller target_shape")


def _shape_text(shape) -> str:
    """A shape with huge entries written short (``8e+302``)."""
    return "(" + ", ".join(str(n) if n < 10**12 else f"~10**{len(str(n)) - 1}" for n in map(int, shape)) + ")"


#: Results up to this many bytes are allocated without first asking how much memory is free
#: (a driver call on a GPU, per resample); an allocation that fails still says so.
UNCHECKED_OUTPUT_BYTES = 256 << 20


def check_output_fits(output_shape, dtype, free_bytes, on_device: bool) -> None:
    """``MemoryError`` up front when a new result array cannot fit where it is allocated.

    ``free_bytes()`` is called only for results above ``UNCHECKED_OUTPUT_BYTES``.
    """
    needed = math.prod(output_shape) * np.dtype(dtype).itemsize
    if needed <= UNCHECKED_OUTPUT_BYTES:
        return
    free_bytes = free_bytes()
    if free_bytes is None or needed <= free_bytes:
        return
    where = "GPU memory is free" if on_device else "host memory is available"
    hint = ("pass device='cpu', or out= a host array of that shape (a numpy.memmap or a Zarr array)"
            if on_device else
            "pass out= a numpy.memmap or a Zarr array of that shape to write it to disk slab by slab")
    raise MemoryError(f"the result, shape {tuple(output_shape)} {np.dtype(dtype)}, needs {_fmt_bytes(needed)}; "
                      f"only {_fmt_bytes(free_bytes)} of {where}: {hint}")


# ---------------------------------------------------------------------------------------
# out=
# ---------------------------------------------------------------------------------------

def _byte_bounds(array) -> tuple | None:
    """``(lo, hi)`` addresses an array's elements span (NumPy or CUDA array interface), or None."""
    interface = getattr(array, "__cuda_array_interface__", None)
    if interface is None:
        interface = getattr(array, "__array_interface__", None)
    if interface is None or interface.get("data") is None:
        return None
    pointer = interface["data"][0]
    shape = tuple(interface["shape"])
    itemsize = np.dtype(interface["typestr"]).itemsize
    strides = interface.get("strides")
    if strides is None:  # C-contiguous
        strides, step = [], itemsize
        for n in reversed(shape):
            strides.insert(0, step)
            step *= n
    if any(n == 0 for n in shape):
        return None
    lo = pointer + sum(min(0, (n - 1) * s) for n, s in zip(shape, strides))
    hi = pointer + sum(max(0, (n - 1) * s) for n, s in zip(shape, strides)) + itemsize
    return lo, hi


def shares_memory(a, b) -> bool:
    """Whether writing ``a`` may change ``b`` (NumPy: exact within a work bound; CUDA: byte ranges)."""
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        try:
            return bool(np.shares_memory(a, b, max_work=OVERLAP_MAX_WORK))
        except np.exceptions.TooHardError:
            return True
    if hasattr(a, "__cuda_array_interface__") != hasattr(b, "__cuda_array_interface__"):
        return False  # one on the host, one on a device
    bounds_a, bounds_b = _byte_bounds(a), _byte_bounds(b)
    if bounds_a is None or bounds_b is None:
        return False
    return bounds_a[0] < bounds_b[1] and bounds_b[0] < bounds_a[1]


def _mapped_file_range(array) -> tuple | None:
    """``(file, first byte, end byte)`` of the file bytes a memory-mapped NumPy array spans, or None.

    ``file`` is ``(st_dev, st_ino)``. The array may be a ``numpy.memmap`` (``np.load(...,
    mmap_mode=...)`` gives one) or any view of one; when the bytes cannot be placed in
    the file, the whole file is taken.
    """
    if not isinstance(array, np.ndarray):
        return None
    top = array
    while isinstance(top.base, np.ndarray):  # down to the array made on the mmap itself
        top = top.base
    filename = getattr(top, "filename", None) or getattr(array, "filename", None)
    if not isinstance(top, np.memmap) or filename is None:
        return None
    try:
        stat = os.stat(filename)
    except OSError:
        return None
    file = (stat.st_dev, stat.st_ino)
    bounds = _byte_bounds(array)
    if bounds is None:
        return None
    if not isinstance(top.base, mmap.mmap):  # cannot tell where in the file: all of it
        return file, 0, math.inf
    start = top.__array_interface__["data"][0] - int(top.offset)  # address of byte 0 of the file
    return file, bounds[0] - start, bounds[1] - start


def _zarr_location(array) -> tuple | None:
    """Where a Zarr array is stored: ``("file", real path)`` or ``("store", store, path)``; else None."""
    store, path = getattr(array, "store", None), getattr(array, "path", None)
    if store is None or not isinstance(path, str) or not type(array).__module__.startswith("zarr"):
        return None
    root = getattr(store, "root", None)  # zarr 3 LocalStore
    if root is None and isinstance(getattr(store, "path", None), (str, os.PathLike)):  # zarr 2 DirectoryStore
        root = store.path
    if isinstance(root, (str, os.PathLike)):
        return "file", os.path.realpath(os.path.join(os.fspath(root), path.strip("/")))
    return "store", store, path.strip("/")


def _same_location(a, b) -> bool:
    if a[0] != b[0]:
        return False
    if a[0] == "file":
        return a[1] == b[1]
    if a[2] != b[2]:
        return False
    if a[1] is b[1]:
        return True
    try:
        return bool(a[1] == b[1])
    except Exception:  # noqa: BLE001 (a store without a usable equality: not the same)
        return False


def same_storage(a, b) -> bool:
    """Whether writing ``a`` may change ``b``: shared memory, overlapping bytes of one
    memory-mapped file, or one Zarr array opened twice."""
    if a is b or shares_memory(a, b):
        return True
    range_a, range_b = _mapped_file_range(a), _mapped_file_range(b)
    if range_a is not None and range_b is not None and range_a[0] == range_b[0]:
        return range_a[1] < range_b[2] and range_b[1] < range_a[2]
    where_a, where_b = _zarr_location(a), _zarr_location(b)
    return where_a is not None and where_b is not None and _same_location(where_a, where_b)


def check_out(out, output_shape, out_dtype, inputs) -> None:
    """``out=`` must have the result's shape and dtype, be writable and not overlap the input.

    ``inputs`` are the arrays the data is read from (the caller's and the prepared one).
    """
    if not (hasattr(out, "shape") and hasattr(out, "dtype") and hasattr(out, "__setitem__")):
        raise TypeError(f"out must be an array (NumPy, CuPy, numpy.memmap, Zarr) of the result's shape "
                        f"{tuple(output_shape)} and dtype {out_dtype}, got {type(out).__name__}")
    if tuple(out.shape) != tuple(output_shape):
        raise ValueError(f"out has shape {tuple(out.shape)}, the result has shape {tuple(output_shape)}")
    if np.dtype(out.dtype) != out_dtype:
        raise ValueError(f"out has dtype {np.dtype(out.dtype)}, the result has dtype {out_dtype} "
                         "(pass dtype= to choose it)")
    flags = getattr(out, "flags", None)
    if (flags is not None and getattr(flags, "writeable", True) is False) or getattr(out, "read_only", False) is True:
        raise ValueError(f"out is read-only ({type(out).__name__} not writeable); pass a writable array, "
                         "or no out= to get a new one")
    if isinstance(out, np.ma.MaskedArray):
        raise TypeError("out is a numpy.ma.MaskedArray, whose mask would not follow the result; "
                        "pass a plain array (e.g. np.empty(shape, dtype))")
    for array in inputs:
        if array is not None and same_storage(out, array):
            raise ValueError("out shares memory with the input data (the same array or a view of it, a memory "
                             "map of the same file bytes, or the same Zarr array); the input is never "
                             "modified, and resampling in place would read voxels it has already overwritten: "
                             "pass a separate array as out=")


# ---------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------

def _row_blocks(array, on_gpu: bool):
    """The array in blocks of whole rows along axis 0 (each at most about ``CHECK_BLOCK_BYTES``)."""
    shape = tuple(array.shape)
    row_bytes = max(1, math.prod(shape[1:]) * np.dtype(array.dtype).itemsize)
    rows = max(1, CHECK_BLOCK_BYTES // row_bytes)
    for start in range(0, shape[0], rows):
        yield read_rows(array, start, min(start + rows, shape[0]), on_gpu)


def _scalar(value):
    """A NumPy or CuPy 0-d result as a Python number (exact for 64-bit integers)."""
    if hasattr(value, "get") and not isinstance(value, np.generic):
        value = value.get()
    return np.asarray(value).item()


def value_range(array, on_gpu: bool) -> tuple:
    """``(min, max)`` of the data as Python numbers; NaN when a float input holds NaN."""
    if isinstance(array, np.ndarray) or on_gpu:
        if array.size == 0:
            return 0, 0
        return _scalar(array.min()), _scalar(array.max())
    ranges = [(_scalar(block.min()), _scalar(block.max())) for block in _row_blocks(array, on_gpu) if block.size]
    if not ranges:
        return 0, 0
    if any(isinstance(v, float) and math.isnan(v) for pair in ranges for v in pair):
        return math.nan, math.nan
    return min(lo for lo, _ in ranges), max(hi for _, hi in ranges)


def _holds(lo, hi, in_dtype: np.dtype, out_dtype: np.dtype) -> bool | None:
    """Whether every value in ``[lo, hi]`` converts to ``out_dtype`` exactly; None: ask per value."""
    if in_dtype.kind == "f":
        if out_dtype.kind == "f" and out_dtype.itemsize >= in_dtype.itemsize:
            return True
        if isinstance(lo, float) and (math.isnan(lo) or math.isnan(hi)):
            return False if out_dtype.kind != "f" else None
        if out_dtype.kind in "iub" and not _range_inside(lo, hi, out_dtype):
            return False
        return None  # integral values, or float64 values float32 holds: per value
    if out_dtype.kind in "iub":
        return _range_inside(lo, hi, out_dtype)
    exact = 2 ** (np.finfo(out_dtype).nmant + 1)  # every integer up to this is a float of out_dtype
    return -exact <= lo and hi <= exact


def _dtype_holds(in_dtype: np.dtype, out_dtype: np.dtype) -> bool:
    """Whether ``out_dtype`` holds every value of ``in_dtype`` exactly (not ``np.can_cast``:
    it calls int64 into float64 safe, which rounds above 2**53)."""
    if in_dtype == out_dtype or in_dtype == np.bool_:
        return True
    if in_dtype.kind in "iu":
        info = np.iinfo(in_dtype)
        if out_dtype.kind in "iu":
            return _range_inside(info.min, info.max, out_dtype)
        if out_dtype.kind == "f":
            return max(-info.min, info.max) <= 2 ** (np.finfo(out_dtype).nmant + 1)
        return False
    return in_dtype.kind == "f" and out_dtype.kind == "f" and out_dtype.itemsize >= in_dtype.itemsize


def _range_inside(lo, hi, dtype: np.dtype) -> bool:
    if dtype == np.bool_:
        return lo >= 0 and hi <= 1
    info = np.iinfo(dtype)
    return info.min <= lo and hi <= info.max


def _round_trips(block, out_dtype) -> bool:
    """Whether every value of ``block`` converts to ``out_dtype`` and back unchanged (NaN to NaN)."""
    with np.errstate(invalid="ignore", over="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NaN and overflow casts warn; they are what we look for
        back = block.astype(out_dtype).astype(block.dtype)
    same = back == block
    if block.dtype.kind == "f" and out_dtype.kind == "f":
        same = same | ((back != back) & (block != block))  # noqa: PLR0124 (NaN, on NumPy and CuPy alike)
    return bool(same.all())


def _unfit_labels(array, on_gpu: bool, out_dtype) -> list:
    """The distinct values of ``array`` that ``out_dtype`` does not hold exactly."""
    found = set()
    for block in _row_blocks(array, on_gpu):
        values = block.ravel()
        if on_gpu:
            values = values.get()
        values = np.unique(np.asarray(values))
        with np.errstate(invalid="ignore", over="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            back = values.astype(out_dtype).astype(values.dtype)
        bad = back != values
        if values.dtype.kind == "f" and np.dtype(out_dtype).kind == "f":
            bad &= ~(np.isnan(back) & np.isnan(values))
        found.update(values[bad].tolist())
    return sorted(found, key=lambda v: (isinstance(v, float) and math.isnan(v), v))


def check_labels_fit(array, on_gpu: bool, in_dtype, out_dtype, name: str = "data") -> None:
    """``ValueError`` naming the labels of ``array`` that ``out_dtype`` cannot hold exactly.

    Cheap first: the data's minimum and maximum decide most cases; the values are
    compared one by one (in blocks) only where the range cannot tell (float labels into
    integers, float64 into float32), and listed only when some do not fit.
    """
    in_dtype, out_dtype = np.dtype(in_dtype), np.dtype(out_dtype)
    if _dtype_holds(in_dtype, out_dtype):  # every value of in_dtype fits: no pass over the data
        return
    lo, hi = value_range(array, on_gpu)
    fits = _holds(lo, hi, in_dtype, out_dtype)
    if fits is None:
        fits = all(_round_trips(block, out_dtype) for block in _row_blocks(array, on_gpu))
    if fits:
        return
    labels = _unfit_labels(array, on_gpu, out_dtype)
    if not labels:  # the range alone could not tell (integers beyond the float's exact range): all fit
        return
    shown = ", ".join(repr(v) for v in labels[:LISTED_LABELS])
    more = f" and {len(labels) - LISTED_LABELS} more" if len(labels) > LISTED_LABELS else ""
    raise ValueError(f"{name} has labels dtype={out_dtype} cannot hold: {shown}{more}; they would change in the "
                     f"result. Pass a dtype= that holds them (or none, to keep {in_dtype}), or relabel first")


def check_not_nan(array, on_gpu: bool, in_dtype, out_dtype, interpolation, name: str = "data") -> None:
    """``ValueError`` when float data holding NaN or inf is resampled into integers or bool.

    An integer or bool voxel has no NaN; writing one silently gave 0. Infinities are
    refused too: a zero weight times inf is NaN (linear), and the cubic prefilter spreads
    one inf into NaN everywhere.
    """
    in_dtype, out_dtype = np.dtype(in_dtype), np.dtype(out_dtype)
    if in_dtype.kind != "f" or out_dtype.kind not in "iub":
        return
    lo, hi = value_range(array, on_gpu)
    if math.isnan(lo) or math.isnan(hi):
        what = "NaN"
    elif not (math.isfinite(lo) and math.isfinite(hi)):
        what = "inf"
    else:
        return
    raise ValueError(f"{name} holds {what} and dtype={out_dtype} has no NaN or inf: replace it first "
                     f"(e.g. numpy.nan_to_num(data, nan=0.0, posinf=..., neginf=...)), or keep a float dtype")


def is_label_map(interpolation, in_dtype, out_dtype, role: str) -> bool:
    """Whether values are labels to keep exactly: 'label', or 'nearest' from a mask, from an
    integer/bool input (into any ``dtype=``: a float dtype too, which holds integers exactly
    only up to 2**24 for float32, 2**53 for float64), or into an integer/bool ``dtype=``."""
    in_dtype, out_dtype = np.dtype(in_dtype), np.dtype(out_dtype)
    if interpolation is Interpolation.LABEL:
        return True
    return (interpolation is Interpolation.NEAREST
            and (in_dtype.kind in "iub" or (role == "mask" and out_dtype.kind in "iub")))


def check_values(array, on_gpu: bool, in_dtype, out_dtype, interpolation, role: str = "volume",
                 name: str = "data") -> None:
    """Every value check for resampling ``array`` into ``out_dtype`` (nothing to do when equal)."""
    if np.dtype(in_dtype) == np.dtype(out_dtype):
        return
    if is_label_map(interpolation, in_dtype, out_dtype, role):
        check_labels_fit(array, on_gpu, in_dtype, out_dtype, name)
    else:
        check_not_nan(array, on_gpu, in_dtype, out_dtype, interpolation, name)


__all__ = ["MAX_ELEMENTS", "available_host_bytes", "check_labels_fit", "check_not_nan", "check_out",
           "check_output_fits", "check_target_size", "check_values", "same_storage", "shares_memory",
           "value_range"]
