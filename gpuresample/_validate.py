"""Argument checks done once, at the public boundary (STYLE rule 5).

Every error names the argument, the value given and what is allowed.
"""

from __future__ import annotations

import math
import numbers
import re

import numpy as np

from .interpolation import Interpolation

#: The dtypes every backend supports (``docs/design.md`` §9): SPEC §3's, and int64/uint64 (NumPy's
#: default integer, nibabel's and torch's label maps; arithmetic in float64, see ``working_dtype``).
SUPPORTED_DTYPES = tuple(
    np.dtype(d)
    for d in ("float16", "float32", "float64", "uint8", "int8", "uint16", "int16", "uint32", "int32",
              "int64", "uint64", "bool")
)

#: Largest voxel size accepted, in mm: far beyond any image, and small enough that extents
#: (spacing times shape) and positions stay finite in float64.
MAX_SPACING = 1e30

_SIZE_UNITS = {
    "": 1, "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
    # Without the B, as Dask and many command lines write sizes: "2G" = "2GB", "2Gi" = "2GiB".
    "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
    "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40,
}


def _entries(value, name: str, ndim: int | None, what: str) -> tuple:
    """``value`` as a non-empty tuple, with ``ndim`` entries when given."""
    try:
        values = tuple(value)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of {what}, got {value!r}") from None
    if ndim is not None and len(values) != ndim:
        raise ValueError(f"{name} must have {ndim} entries (one per array axis), got {len(values)}: {value!r}")
    if not values:
        raise ValueError(f"{name} must have at least one entry, got {value!r}")
    return values


def check_shape(shape, name: str, ndim: int | None = None) -> tuple:
    """A tuple of Python ints, each >= 1 (and ``ndim`` of them when given); bools are refused."""
    values = _entries(shape, name, ndim, "integers")
    out = []
    for v in values:
        if isinstance(v, (bool, np.bool_)):
            raise ValueError(f"{name} entries must be integers >= 1, got the bool {v!r} in {shape!r}")  # noqa: TRY004 (as other non-integers)
        if not isinstance(v, numbers.Integral):
            if isinstance(v, numbers.Real) and float(v).is_integer():
                v = int(v)
            else:
                raise ValueError(f"{name} entries must be integers >= 1, got {v!r} in {shape!r}")
        if int(v) < 1:
            raise ValueError(f"{name} entries must be integers >= 1, got {int(v)} in {shape!r}")
        out.append(int(v))
    return tuple(out)


def check_spacing(spacing, name: str, ndim: int | None = None) -> tuple:
    """A tuple of Python floats, each finite and > 0 (``ndim`` of them when given)."""
    if isinstance(spacing, numbers.Real) and not isinstance(spacing, bool):
        if ndim is None:
            raise ValueError(f"{name} must be a sequence of numbers, got {spacing!r}")
        spacing = (spacing,) * ndim
    values = _entries(spacing, name, ndim, "numbers (mm per array axis)")
    out = []
    for v in values:
        if not _is_real_number(v):  # "1" and True would pass float(); refuse them
            raise TypeError(f"{name} entries must be numbers, got {_short(v)} in {_short(spacing)}")
        try:
            f = float(v)
        except OverflowError:  # an int beyond any float (10**400)
            f = math.inf
        if not math.isfinite(f) or not 0.0 < f <= MAX_SPACING:
            raise ValueError(f"{name} entries must be finite and > 0, at most {MAX_SPACING:g} (mm), "
                             f"got {_short(v)} in {_short(spacing)}")
        out.append(f)
    return tuple(out)


def _short(value, limit: int = 80) -> str:
    """``repr(value)`` for a message, huge integers as ``~10**N`` and long text cut."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and abs(int(value)) >= 10**20:
        return f"{'-' if value < 0 else ''}~10**{len(str(abs(int(value)))) - 1}"
    if isinstance(value, (tuple, list)) and len(value) <= 8:
        inner = ", ".join(_short(v, limit) for v in value)
        return f"({inner}{',' if len(value) == 1 else ''})" if isinstance(value, tuple) else f"[{inner}]"
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _is_real_number(value) -> bool:
    """A real number (Python, NumPy scalar or 0-d array), not a bool or a string."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, numbers.Real):
        return True
    return getattr(value, "ndim", None) == 0 and getattr(getattr(value, "dtype", None), "kind", "") in "iuf" \
        and hasattr(value, "__float__")


def native(dtype) -> np.dtype:
    """``dtype`` in the machine's byte order (``>f4`` is ``float32`` on a little-endian host)."""
    dtype = np.dtype(dtype)
    return dtype.newbyteorder("=") if dtype.byteorder not in ("=", "|") else dtype


def check_dtype(dtype, name: str = "dtype") -> np.dtype:
    """A supported NumPy dtype in native byte order, else ``TypeError`` naming it.

    Non-native byte order (``>f4``, e.g. from a big-endian NIfTI file) is accepted and
    returned as its native-order equivalent.
    """
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name}={dtype!r} is not a dtype") from None
    if dt.kind in "biuf":
        dt = native(dt)
    if dt not in SUPPORTED_DTYPES:
        allowed = ", ".join(str(d) for d in SUPPORTED_DTYPES)
        raise TypeError(f"{name} {dt} is not supported; supported dtypes: {allowed}")
    return dt


def parse_bytes(value, name: str = "max_memory") -> int | None:
    """Bytes from an int or a string such as ``"2GB"`` or ``"512 MiB"``; None stays None.

    A count of bytes must be whole (``2.5`` and ``"2.5"`` are refused); a size with a
    unit is rounded down to whole bytes (``"1.5KiB"`` is 1536, ``"0.0001KB"`` is 0: refused).
    """
    if value is None:
        return None
    fraction = f"{name}={value!r} is not a whole number of bytes; give an int, or a size with a unit " \
               "such as '2GB', '512MB', '1.5GiB' (rounded down to whole bytes)"
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        number = int(value)
    elif isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value):
        if not float(value).is_integer():
            raise ValueError(fraction)
        number = int(value)
    elif isinstance(value, str):
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", value)
        unit = match.group(2).lower() if match else None
        if not match or unit not in _SIZE_UNITS:
            raise ValueError(
                f"{name}={value!r} is not a size; use bytes or a string such as '2GB', '512MB', '1.5GiB'"
            )
        if _SIZE_UNITS[unit] == 1 and not float(match.group(1)).is_integer():
            raise ValueError(fraction)
        number = int(float(match.group(1)) * _SIZE_UNITS[unit])
    else:
        raise TypeError(f"{name} must be bytes (int) or a string such as '2GB', got {value!r}")
    if number <= 0:
        raise ValueError(f"{name} must be > 0 bytes, got {value!r}")
    return number


#: Spatial axes a volume may have (``docs/design.md`` §9): 2-D images and 3-D volumes.
SPATIAL_DIMS = (2, 3)


def check_channel_axis(channel_axis, ndim: int) -> int | None:
    """``channel_axis`` as an axis index in ``[0, ndim)``; None stays None."""
    if channel_axis is None:
        return None
    if isinstance(channel_axis, bool) or not isinstance(channel_axis, (int, np.integer)) \
            or not -ndim <= channel_axis < ndim:
        raise ValueError(f"channel_axis={channel_axis!r} must be an axis of the {ndim}-D data")
    return int(channel_axis) % ndim


def spatial_shape(shape, channel_axis: int | None) -> tuple:
    """The shape without its channel axis; an error unless 2-D or 3-D remain."""
    shape = tuple(shape)
    spatial = tuple(n for i, n in enumerate(shape) if i != channel_axis)
    if len(spatial) not in SPATIAL_DIMS:
        hint = " (pass channel_axis= for multi-channel data)" if len(shape) == 4 and channel_axis is None else ""
        raise ValueError(f"data must be 2-D or 3-D (or 4-D with channel_axis=); got shape {shape}{hint}")
    return spatial


def check_backend_name(backend, names, aliases=()) -> str:
    """``backend`` if it is one of ``names`` or ``aliases`` (strings), else a ``ValueError``
    listing ``names`` (aliases are accepted but not advertised)."""
    if not isinstance(backend, str) or (backend not in names and backend not in aliases):
        raise ValueError(f"backend={backend!r} is not a backend; allowed: {', '.join(map(repr, names))}")
    return backend


def check_flag(value, name: str) -> bool:
    """``value`` if it is True or False (Python or NumPy bool), else ``TypeError`` naming ``name``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_antialias(antialias, interpolation) -> bool:
    """``antialias`` as a bool; True only for value interpolations (linear, cubic)."""
    antialias = check_flag(antialias, "antialias")
    if antialias and interpolation not in (Interpolation.LINEAR, Interpolation.CUBIC):
        raise ValueError(f"antialias=True smooths values; it applies to 'linear' and 'cubic', "
                         f"not {interpolation.value!r}")
    return bool(antialias)


def check_fill(fill, dtype) -> float:
    """``fill`` as a float that ``dtype`` holds exactly (NaN only for float outputs)."""
    dtype = np.dtype(dtype)
    if isinstance(fill, (bool, np.bool_)):
        fill = int(fill)
    if not isinstance(fill, numbers.Real):
        raise TypeError(f"fill must be a number, got {fill!r}")
    try:
        value = float(fill)
    except OverflowError:  # an int beyond any float
        value = math.inf if fill > 0 else -math.inf
    if dtype.kind == "f":
        largest = float(np.finfo(dtype).max)
        overflowed = math.isinf(value) and isinstance(fill, numbers.Integral)  # 10**400, not inf itself
        if overflowed or (math.isfinite(value) and abs(value) > largest):
            raise ValueError(f"fill={_short(fill)} is beyond the output dtype {dtype}; allowed: values from "
                             f"{-largest:g} to {largest:g}, inf and nan (or pass a wider dtype=)")
        return value
    if math.isnan(value):
        raise ValueError(f"fill=nan needs a float output; the output dtype is {dtype} "
                         "(pass dtype='float32', or a fill such as 0)")
    lo, hi = (0, 1) if dtype == np.bool_ else (np.iinfo(dtype).min, np.iinfo(dtype).max)
    if not value.is_integer() or not lo <= value <= hi:
        raise ValueError(f"fill={fill!r} is not a value of the output dtype {dtype}; allowed: "
                         f"integers from {lo} to {hi}")
    return value
