"""Dictionary transforms for deep-learning pipelines (MONAI- and TorchIO-style ``Compose``).

:class:`Resampled` takes one case as a dictionary, resamples the chosen keys onto one
shared target grid (images with linear or cubic, labels with nearest or label), carries
the geometry along, and returns a new dictionary. It is a plain callable: it drops into
``monai.transforms.Compose``, ``torchio.Compose`` or ``torchvision.transforms.Compose``
and imports none of them.

Arrays stay what they are (``docs/design.md`` §9): NumPy in, NumPy out; torch CPU tensors through
DLPack without a copy; CUDA tensors and CuPy arrays are resampled on their GPU and never
visit the host.

Where the geometry of ``case[key]`` comes from, first match wins:

1. ``case[key]`` is a mapping with ``"data"`` and ``"affine"`` entries (TorchIO's
   ``Image`` is one): the array is ``["data"]``, the index-to-world matrix ``["affine"]``.
2. ``case[key]`` is a tensor with an ``affine`` attribute and a ``meta`` dictionary
   (MONAI's ``MetaTensor``).
3. ``case[f"{key}_{meta_key_postfix}"]["affine"]`` (MONAI's metadata dictionaries,
   ``"image_meta_dict"``).
4. A key without an affine of its own (e.g. a label next to ``"image_meta_dict"``) shares
   the grid of the keys that have one; its shape must match.
5. ``case[affine_key]`` (default ``"affine"``): one affine at the top of the case, as plain
   dictionary pipelines keep it; the result carries the target grid's affine there.
6. When no key has an affine: ``case[spacing_key]`` (default ``"spacing"``), the spacing
   alone; else the transform's ``spacing=`` argument; else, with ``target_shape`` only,
   1 mm per axis (the sampling positions do not depend on the spacing when the bounding
   box is kept). A ``target_spacing`` without any source spacing is an error.

Labels: a key whose value says it is a label map (TorchIO's ``LabelMap``, or a mapping whose
``"type"`` is ``"label"``) is resampled with ``nearest`` unless ``interpolation`` names one
for it; every other key with ``linear``. A key holding integers that is resampled with a
``linear`` it did not ask for gets a one-line ``UserWarning`` (linear interpolation of
labels creates values between them).

Inverting: the result records the source and target grids under ``record_key`` (default
``"resampled_grids"``), and :meth:`Resampled.inverse` resamples chosen keys of a later case
(a prediction made on the resampled grid, say) back onto the source grid, labels
label-safe, on the device they are on.

An affine is ``(ndim+1) x (ndim+1)``, index ``(i, j, k)`` of the spatial axes to world
(whatever frame it is in: RAS for MONAI, TorchIO and :mod:`gpuresample.io`); the spacing
is the length of its columns. The result carries the target grid's affine in the same
place, of the same kind (a NumPy array or a tensor on the same device); a
``spacing_key`` entry, when the case has one, gets the target spacing.

Channels: the target (``target_shape`` or ``target_spacing``) has one entry per spatial
axis, so an array with one axis more has channels, on ``channel_axis`` (default 0:
``(C, X, Y, Z)`` as MONAI and TorchIO use); each channel goes onto the same grid.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

import warnings

from ._validate import check_backend_name, check_flag, check_shape, check_spacing
from .api import resample
from .backends import ALIASES, BACKEND_NAMES
from .geometry import Grid, grid_from_affine
from .images import AFFINE_ENTRY, DATA_ENTRY, target_grid
from .images import _host as _host_affine
from .interpolation import Interpolation
from .io import MASK_GRID_TOL_VOXELS

#: What a label map's ``type`` says (TorchIO's ``LabelMap`` and ``torchio.LABEL``).
LABEL_TYPE = "label"
#: Spatial axes a scalar target stands for when no key's affine says otherwise.
DEFAULT_SPATIAL_NDIM = 3


def grids_record(source: Grid, target: Grid) -> dict:
    """What :class:`Resampled` records in a case: the grid the keys came from and the one they
    went to, as NumPy arrays (so a ``DataLoader`` collates it like any other entry)."""
    return {"source_shape": np.array(source.shape, np.int64), "source_affine": source.affine,
            "target_shape": np.array(target.shape, np.int64), "target_affine": target.affine}


def recorded_grids(record) -> tuple:
    """``(source, target)`` grids of a :func:`grids_record` (its arrays may be tensors by now)."""
    try:
        return tuple(grid_from_affine(tuple(int(n) for n in _host(record[f"{which}_shape"])),
                                      _host(record[f"{which}_affine"]), source=f"the recorded {which} grid")
                     for which in ("source", "target"))
    except (KeyError, TypeError, IndexError):
        raise ValueError("the case's record of the grids is not one Resampled wrote") from None


class Resampled:
    """Resample keys of a dictionary onto one target grid, carrying the affine along.

    Parameters
    ----------
    keys : str or sequence of str
        Entries to resample; all must share one grid (shape and affine).
    target_shape : int or sequence of int, optional
        Voxels per spatial axis (one number: the same on every axis); the bounding box is
        kept. Give this or ``target_spacing`` (or both, agreeing). Keyword only, as every
        argument after ``keys``.
    target_spacing : float or sequence of float, optional
        Voxel size per spatial axis in mm (one number: the same on every axis); the grid
        stays centred.
    interpolation : str, sequence of str, or mapping of key to str, optional
        One name for every key, one per key (in ``keys`` order), or ``{key: name}``;
        ``'nearest'``, ``'linear'``, ``'cubic'``; labels take ``'nearest'`` or
        ``'label'`` (smooth boundaries, only the input's label values). Keys left out get
        ``'nearest'`` when their value is a label map, else ``'linear'``.
    channel_axis : int
        Axis of channels for arrays with one axis more than the target (default 0).
    spacing : sequence of float, optional
        Spacing of every case, when the cases carry no geometry of their own.
    spacing_key : str or None
        Entry holding a case's spacing (read when there is no affine, updated when present).
    affine_key : str or None
        Top-level entry holding the case's affine (read when the keys carry none of their
        own, updated when present); ``None`` ignores it.
    record_key : str or None
        Entry the result records the source and target grids in
        (shapes and affines as NumPy arrays), for :meth:`inverse`; ``None`` records nothing.
    meta_key_postfix : str
        Metadata dictionaries are ``case[f"{key}_{meta_key_postfix}"]``.
    antialias : bool
        Gaussian smoothing before downsampling, for keys with linear or cubic interpolation.
    backend, device : str, optional
        As in :func:`gpuresample.resample`.
    allow_missing_keys : bool
        Skip keys the case lacks instead of raising ``KeyError``.
    target : Grid or reference image, optional
        Resample onto this grid (another dataset's) instead of ``target_spacing``/``target_shape``:
        a :class:`~gpuresample.Grid`, or a reference image carrying an affine — a
        mapping with ``"data"`` and ``"affine"`` (TorchIO's ``Image``) or a tensor or
        array with an ``affine`` attribute (MONAI's ``MetaTensor``); its last 2 or 3 axes
        are the spatial ones. Every case then lands on that same grid, placed by each
        case's own affine.
    fill : float or mapping of key to float
        With ``target``: value of voxels outside the case's data (default 0, the
        background for labels); one number for every key or ``{key: number}``.

    Examples
    --------
    >>> import numpy as np
    >>> case = {"image": np.zeros((1, 40, 48, 20), np.float32),
    ...         "label": np.zeros((1, 40, 48, 20), np.uint8),
    ...         "image_meta_dict": {"affine": np.diag([0.8, 0.8, 2.5, 1.0])}}
    >>> to_iso = Resampled(["image", "label"], target_spacing=(1.6, 1.6, 1.6),
    ...                    interpolation={"image": "linear", "label": "label"})
    >>> out = to_iso(case)
    >>> out["image"].shape, out["label"].dtype
    ((1, 20, 24, 31), dtype('uint8'))
    >>> np.round(np.diag(out["image_meta_dict"]["affine"]), 3).tolist()
    [1.6, 1.6, 1.6, 1.0]
    >>> back = to_iso.inverse(out, keys=["label"])
    >>> back["label"].shape == case["label"].shape
    True
    """

    def __init__(self, keys, *, target_shape=None, target_spacing=None, interpolation=None,
                 channel_axis: int = 0, spacing=None, spacing_key: str | None = "spacing",
                 affine_key: str | None = "affine", record_key: str | None = "resampled_grids",
                 meta_key_postfix: str = "meta_dict", antialias: bool = False, backend: str = "auto",
                 device: str | None = None, allow_missing_keys: bool = False, target=None, fill=0):
        self.keys = _keys(keys)
        self.target = None if target is None else target_grid(target)
        self.fill = dict(fill) if isinstance(fill, Mapping) else {key: fill for key in self.keys}
        if self.target is not None:
            given = [n for n, v in (("target_spacing", target_spacing), ("target_shape", target_shape)) if v is not None]
            if given:
                raise ValueError(f"target= and {' and '.join(given)}= were both given; give one way to say the grid")
            target_shape = self.target.shape  # the checks below then see one entry per spatial axis
        if target_spacing is None and target_shape is None:
            raise ValueError("give target_spacing or target_shape (or both, agreeing), or target=; got neither")
        target_shape, target_spacing, ndim = _broadcast(target_shape, target_spacing)
        if ndim is None:  # scalars only: checked as one axis, spread over the case's axes when it comes
            self.target_spacing = None if target_spacing is None else check_spacing((target_spacing,), "target_spacing")[0]
            self.target_shape = None if target_shape is None else check_shape((target_shape,), "target_shape")[0]
        else:
            self.target_spacing = None if target_spacing is None else check_spacing(target_spacing, "target_spacing")
            self.target_shape = None if target_shape is None else check_shape(target_shape, "target_shape")
        lengths = {len(t) for t in (self.target_spacing, self.target_shape) if t is not None and np.ndim(t) == 1}
        lengths = lengths or {ndim}
        if len(lengths) != 1:
            raise ValueError(f"target_spacing={self.target_spacing} and target_shape={self.target_shape} "
                             "must have one entry per spatial axis each")
        #: Spatial axes of the target; ``None`` while a scalar target waits for a case's affine.
        self.spatial_ndim = ndim
        self._given_interpolation = _given_keys(interpolation, self.keys)
        self.interpolation = _per_key(interpolation, self.keys)
        self.spacing = None if spacing is None else check_spacing(spacing, "spacing", ndim)
        if self.spacing is not None and ndim is None:
            self.spatial_ndim = ndim = len(self.spacing)
            self.target_shape, self.target_spacing, _ = _broadcast(self.target_shape, self.target_spacing, ndim)
        if ndim is not None and ndim not in (2, 3):
            raise ValueError(f"the target has {ndim} axes; 2 or 3 spatial axes are supported")
        if isinstance(channel_axis, bool) or not isinstance(channel_axis, (int, np.integer)):
            raise TypeError(f"channel_axis must be an int, got {channel_axis!r}")
        self.channel_axis = int(channel_axis)
        check_backend_name(backend, BACKEND_NAMES, ALIASES)
        self.spacing_key = spacing_key
        self.affine_key = affine_key
        self.record_key = record_key
        self.meta_key_postfix = meta_key_postfix
        self.antialias = check_flag(antialias, "antialias")
        self.backend = backend
        self.device = device
        self.allow_missing_keys = bool(allow_missing_keys)

    def __repr__(self) -> str:
        target = (f"target={self.target!r}" if self.target is not None
                  else f"target_spacing={self.target_spacing}" if self.target_spacing is not None
                  else f"target_shape={self.target_shape}")
        modes = {k: v.value for k, v in self.interpolation.items()}
        return f"Resampled(keys={self.keys}, {target}, interpolation={modes})"

    # ------------------------------------------------------------- the call
    def __call__(self, case: Mapping):
        """A new case with ``keys`` resampled and the geometry updated; ``case`` is not modified."""
        if not isinstance(case, Mapping):
            raise TypeError(f"Resampled takes a dictionary (one case), got {type(case).__name__}")
        keys = [k for k in self.keys if k in case]
        missing = [k for k in self.keys if k not in case]
        if missing and not self.allow_missing_keys:
            raise KeyError(f"case has no {missing}; it has {list(case)} (allow_missing_keys=True skips them)")
        if not keys:
            return case
        ndim = self._ndim(case, keys)
        sources = self._sources(case, keys, ndim)
        grid = self._shared_grid(sources, keys)
        if self.target is not None:
            target = self.target
        else:
            target_shape, target_spacing, _ = _broadcast(self.target_shape, self.target_spacing, ndim)
            target = grid.resolve(target_shape, target_spacing)
        out = self._write(case, sources, keys, target, {k: self.interpolation[k] for k in keys},
                          {k: k not in self._given_interpolation for k in keys})
        if self.record_key is not None:
            out[self.record_key] = grids_record(grid, target)
        return out

    def inverse(self, case: Mapping, keys=None, interpolation=None):
        """Resample ``keys`` of ``case`` back onto the grid this transform took them from.

        ``case`` is one this transform returned, or one derived from it (a prediction
        added under a new key on the resampled grid, say): its ``record_key`` entry says
        both grids. Keys with an affine of their own are placed by it; the others are on
        the recorded target grid. Label maps and keys this transform resampled as labels
        go back with ``nearest`` (or their ``label``), and so do integer and bool arrays (a
        predicted segmentation); float arrays with ``linear``; unless ``interpolation``
        names one (as in the constructor). Arrays stay where they are
        (a CUDA tensor is resampled on its device). Voxels the resampled grid did not cover
        (a ``target=`` smaller than the source) get 0.

        Parameters
        ----------
        case : mapping
            A case holding the ``record_key`` entry.
        keys : str or sequence of str, optional
            Entries to bring back (default: this transform's keys that the case has).
        interpolation : str, sequence or mapping, optional
            As the constructor's, for these keys.

        Returns
        -------
        dict
            A new case with ``keys`` on the source grid, their affines and the spacing entry
            updated, and the record removed.
        """
        if not isinstance(case, Mapping):
            raise TypeError(f"Resampled.inverse takes a dictionary (one case), got {type(case).__name__}")
        if self.record_key is None or not isinstance(case.get(self.record_key), Mapping):
            raise ValueError(f"the case has no {self.record_key!r} entry recording the grids; pass a case this "
                             "transform returned (with record_key set)")
        source_grid, target_grid_ = recorded_grids(case[self.record_key])
        keys = [k for k in self.keys if k in case] if keys is None else list(_keys(keys))
        missing = [k for k in keys if k not in case]
        if missing:
            raise KeyError(f"case has no {missing}; it has {list(case)}")
        given = _given_keys(interpolation, keys)
        chosen = _per_key(interpolation, keys) if interpolation is not None else {}
        modes = {}
        for key in keys:
            if key in given:
                modes[key] = chosen[key]
            elif key in self.keys and self.interpolation[key] in (Interpolation.NEAREST, Interpolation.LABEL):
                modes[key] = self.interpolation[key]
            elif _is_label_map(case[key]) or np.dtype(_dtype_of(_entry_array(case[key]))).kind in "iub":
                modes[key] = Interpolation.NEAREST
            else:
                modes[key] = Interpolation.LINEAR
        sources = self._sources(case, keys, source_grid.ndim, fallback=target_grid_)
        out = self._write(case, sources, keys, source_grid, modes, {k: False for k in keys}, onto=True)
        del out[self.record_key]
        return out

    def _write(self, case, sources, keys, target: Grid, modes: dict, defaulted: dict, onto=None) -> dict:
        """A copy of ``case`` with ``keys`` resampled onto ``target`` and the geometry entries updated."""
        onto = self.target is not None if onto is None else onto
        out = copy.copy(case)
        for key in keys:
            out[key] = self._resample(sources[key], target, modes[key], defaulted[key], onto)
            meta_key = f"{key}_{self.meta_key_postfix}"
            if sources[key].origin == "meta_dict":
                meta = dict(case[meta_key])
                meta[AFFINE_ENTRY] = _like(meta[AFFINE_ENTRY], target.affine)
                out[meta_key] = meta
        if self.affine_key is not None and self.affine_key in case:
            out[self.affine_key] = _like(case[self.affine_key], target.affine)
        if self.spacing_key is not None and self.spacing_key in case:
            out[self.spacing_key] = target.spacing
        return out

    def _shared_grid(self, sources, keys) -> Grid:
        first = keys[0]
        grid = sources[first].grid
        for key in keys[1:]:
            other = sources[key].grid
            if other.shape != grid.shape or grid.misfit_voxels(other) > MASK_GRID_TOL_VOXELS:
                raise ValueError(f"{key!r} is not on the grid of {first!r} ({other!r} vs {grid!r}); "
                                 "every key of a case must share one grid")
        return grid

    def _ndim(self, case, keys) -> int:
        """Spatial axes: the target's, else (a scalar target) those of the case's first affine."""
        if self.spatial_ndim is not None:
            return self.spatial_ndim
        for key in keys:
            affine = self._own_affine(case, key)
            if affine is not None:
                return int(np.shape(affine)[0]) - 1
        if self.affine_key is not None and self.affine_key in case:
            return int(np.shape(case[self.affine_key])[0]) - 1
        return DEFAULT_SPATIAL_NDIM

    def _sources(self, case, keys, ndim: int, fallback: Grid | None = None) -> dict:
        """Each key's array and grid; keys without geometry of their own share the case's
        (another key's, else the case's ``affine_key`` entry, else ``fallback``, else the spacing)."""
        own = {key: self._own_source(case, key, ndim) for key in keys}
        shared = next((source.grid for source in own.values() if source is not None), None)
        if shared is None and self.affine_key is not None and self.affine_key in case:
            value = case[keys[0]]
            shared = grid_from_affine(self._spatial_shape(value, keys[0], ndim), _host(case[self.affine_key]),
                                      source=f"case[{self.affine_key!r}]")
        if shared is None:
            shared = fallback
        sources = {}
        for key in keys:
            if own[key] is not None:
                sources[key] = own[key]
                continue
            value = case[key]
            if shared is not None:
                grid = Grid(self._spatial_shape(value, key, ndim), shared.spacing, shared.origin, shared.direction)
                sources[key] = _Source(key, value, value, grid, "shared")
            else:
                grid = self._grid(value, None, key, ndim, self._spacing(case, key, ndim))
                sources[key] = _Source(key, value, value, grid, "spacing")
        return sources

    def _own_affine(self, case, key):
        """The affine ``case[key]`` carries itself (or in its metadata dictionary), or None."""
        value = case[key]
        if isinstance(value, Mapping):
            try:
                return value[AFFINE_ENTRY]
            except KeyError:
                return None
        if hasattr(value, "__dlpack__") and hasattr(value, AFFINE_ENTRY) and isinstance(getattr(value, "meta", None), dict):
            return value.affine
        meta = case.get(f"{key}_{self.meta_key_postfix}")
        if isinstance(meta, Mapping) and AFFINE_ENTRY in meta:
            return meta[AFFINE_ENTRY]
        return None

    def _own_source(self, case, key, ndim: int) -> _Source | None:
        value = case[key]
        if isinstance(value, Mapping):
            try:  # item access, not `in`: TorchIO images load their data and affine on first access
                array, affine = value[DATA_ENTRY], value[AFFINE_ENTRY]
            except KeyError:
                raise ValueError(f"{key!r} is a mapping without 'data' and 'affine' entries; "
                                 "give an array, or an image mapping with both") from None
            return _Source(key, value, array, self._grid(array, affine, key, ndim), "mapping")
        if hasattr(value, "__dlpack__") and hasattr(value, AFFINE_ENTRY) and isinstance(getattr(value, "meta", None), dict):
            return _Source(key, value, _plain_tensor(value), self._grid(value, value.affine, key, ndim), "meta_tensor")
        meta = case.get(f"{key}_{self.meta_key_postfix}")
        if isinstance(meta, Mapping) and AFFINE_ENTRY in meta:
            return _Source(key, value, value, self._grid(value, meta[AFFINE_ENTRY], key, ndim), "meta_dict")
        return None

    def _spacing(self, case, key, ndim: int):
        if self.spacing_key is not None and self.spacing_key in case:
            return case[self.spacing_key]
        if self.spacing is not None:
            return self.spacing
        if self.target_shape is not None and self.target is None:
            return (1.0,) * ndim
        raise ValueError(f"no geometry for {key!r}: the case has no affine (in {key!r} or "
                         f"{key + '_' + self.meta_key_postfix!r}) and no {self.spacing_key!r} entry, and the "
                         "transform has no spacing=; a target_spacing needs the source spacing")

    def _spatial_shape(self, array, key, ndim: int) -> tuple:
        shape = tuple(int(n) for n in array.shape)
        if len(shape) == ndim:
            return shape
        if len(shape) == ndim + 1:
            if not -len(shape) <= self.channel_axis < len(shape):
                raise ValueError(f"channel_axis={self.channel_axis} is not an axis of {key!r} (shape {shape})")
            axis = self.channel_axis % len(shape)
            return shape[:axis] + shape[axis + 1:]
        raise ValueError(f"{key!r} has shape {shape}; the target has {ndim} spatial axes, so it needs "
                         f"{ndim} axes, or {ndim + 1} with channels on channel_axis")

    def _grid(self, array, affine, key, ndim: int, spacing=None) -> Grid:
        shape = self._spatial_shape(array, key, ndim)
        if affine is None:
            return Grid(shape, check_spacing(spacing, f"spacing of {key!r}", len(shape)))
        return grid_from_affine(shape, _host(affine), source=f"affine of {key!r}")

    def _resample(self, source: _Source, target: Grid, interpolation: Interpolation, defaulted: bool, onto: bool):
        array = source.array
        if interpolation is Interpolation.LINEAR and defaulted and _is_label_map(source.value):
            interpolation = Interpolation.NEAREST
        elif interpolation is Interpolation.LINEAR and defaulted and np.dtype(_dtype_of(array)).kind in "iub":
            warnings.warn(f"{source.key!r} holds {np.dtype(_dtype_of(array))} values and is resampled with linear "
                          "interpolation, which creates values between labels; name its interpolation "
                          f"(interpolation={{{source.key!r}: 'nearest'}} for labels, 'linear' for images)",
                          UserWarning, stacklevel=4)
        channel_axis = None if len(array.shape) == target.ndim else self.channel_axis
        smooth = self.antialias and interpolation in (Interpolation.LINEAR, Interpolation.CUBIC)
        if onto:
            spacing, request = source.grid, {"target": target, "fill": self.fill.get(source.key, 0)}
        elif self.target_spacing is not None:
            spacing, request = source.grid.spacing, {"target_spacing": target.spacing}
        else:
            spacing, request = source.grid.spacing, {"target_shape": target.shape}
        result = resample(array, spacing, **request, interpolation=interpolation,
                          antialias=smooth, channel_axis=channel_axis, backend=self.backend, device=self.device)
        if source.origin == "mapping":
            new = copy.copy(source.value)
            new[DATA_ENTRY] = result
            new[AFFINE_ENTRY] = _like(source.value[AFFINE_ENTRY], target.affine)
            return new
        if source.origin == "meta_tensor":
            value = source.value
            meta = dict(value.meta)
            meta[AFFINE_ENTRY] = _like(value.affine, target.affine)
            operations = list(getattr(value, "applied_operations", []) or [])
            return type(value)(result, meta=meta, applied_operations=operations)
        return result


def _broadcast(target_shape, target_spacing, ndim: int | None = None) -> tuple:
    """Scalars as one value per spatial axis: ``(target_shape, target_spacing, ndim)``; ``ndim``
    is that of a sequence given, else the one passed (``None``: not known yet)."""
    for value in (target_shape, target_spacing):
        if value is not None and np.ndim(value) == 1:
            ndim = len(value) if ndim is None else ndim
    def spread(value):
        if value is None or np.ndim(value) != 0 or ndim is None:
            return value
        return (value,) * ndim
    return spread(target_shape), spread(target_spacing), ndim


def _given_keys(interpolation, keys) -> set:
    """Keys whose interpolation the caller named."""
    if interpolation is None:
        return set()
    if isinstance(interpolation, Mapping):
        return set(interpolation)
    return set(keys)


def _entry_array(value):
    """The array of a case entry (an image mapping's ``"data"``, else the entry itself)."""
    return value[DATA_ENTRY] if isinstance(value, Mapping) else value


def _is_label_map(value) -> bool:
    """Whether a case entry says it is a label map (TorchIO's ``LabelMap``, ``type == 'label'``)."""
    if type(value).__name__ == "LabelMap":
        return True
    kind = value.get("type") if isinstance(value, Mapping) else getattr(value, "type", None)
    return isinstance(kind, str) and kind == LABEL_TYPE


def _dtype_of(array):
    dtype = array.dtype
    if hasattr(dtype, "is_floating_point"):  # torch: torch.uint8 -> uint8
        try:
            return np.dtype(str(dtype).rsplit(".", 1)[-1])
        except TypeError:  # bfloat16 and the like: floats
            return np.float32
    return dtype


@dataclass
class _Source:
    """One key's value, the array to resample, its grid, and where the geometry came from."""

    key: str
    value: Any
    array: Any
    grid: Grid
    origin: str  # "mapping", "meta_tensor", "meta_dict", "shared" or "spacing"


def _keys(keys) -> tuple:
    if isinstance(keys, str):
        return (keys,)
    try:
        keys = tuple(keys)
    except TypeError:
        raise TypeError(f"keys must be a string or a sequence of strings, got {keys!r}") from None
    if not keys or len(set(keys)) != len(keys):
        raise ValueError(f"keys must be non-empty and unique, got {keys!r}")
    return keys


def _per_key(interpolation, keys) -> dict:
    """Each key's interpolation (``None``, or a key left out of a mapping: linear, which a
    label map's value turns into nearest when the key is resampled)."""
    if interpolation is None:
        chosen = {k: Interpolation.LINEAR for k in keys}
    elif isinstance(interpolation, (str, Interpolation)):
        chosen = {k: interpolation for k in keys}
    elif isinstance(interpolation, Mapping):
        unknown = set(interpolation) - set(keys)
        if unknown:
            raise ValueError(f"interpolation names keys {sorted(unknown)} that are not in keys={list(keys)}")
        chosen = {k: interpolation.get(k, Interpolation.LINEAR) for k in keys}
    else:
        values = tuple(interpolation)
        if len(values) != len(keys):
            raise ValueError(f"interpolation has {len(values)} entries, keys has {len(keys)}; give one per key")
        chosen = dict(zip(keys, values))
    return {k: Interpolation.parse(v, f"interpolation of {k!r}") for k, v in chosen.items()}


def _host(affine) -> np.ndarray:
    """A (small) affine matrix as float64 NumPy, wherever it lives."""
    return np.asarray(_host_affine(affine), dtype=np.float64)


def _like(template, affine: np.ndarray):
    """``affine`` as the same kind as ``template``: a tensor of its dtype on its device, or NumPy."""
    if hasattr(template, "new_tensor"):  # torch
        return template.new_tensor(affine)
    if isinstance(template, np.ndarray):
        return affine.astype(template.dtype if template.dtype.kind == "f" else np.float64)
    if hasattr(template, "__cuda_array_interface__"):  # CuPy
        import cupy
        return cupy.asarray(affine, dtype=template.dtype)
    return affine


def _plain_tensor(tensor):
    """A tensor subclass (e.g. MONAI's MetaTensor) viewed as its plain torch base class, no copy."""
    for cls in type(tensor).__mro__:
        if cls.__module__ == "torch" and cls.__name__ == "Tensor":
            return tensor.as_subclass(cls)
    return tensor


__all__ = ["Resampled"]
