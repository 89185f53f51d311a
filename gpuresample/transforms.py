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
5. When no key has an affine: ``case[spacing_key]`` (default ``"spacing"``), the spacing
   alone; else the transform's ``spacing=`` argument; else, with ``target_shape`` only,
   1 mm per axis (the sampling positions do not depend on the spacing when the bounding
   box is kept). A ``target_spacing`` without any source spacing is an error.

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

from ._validate import check_backend_name, check_flag, check_shape, check_spacing
from .api import resample
from .arrays import prepare
from .backends import ALIASES, BACKEND_NAMES
from .geometry import Grid, grid_from_affine
from .interpolation import Interpolation
from .io import MASK_GRID_TOL_VOXELS

#: Keys of a TorchIO-style image mapping.
DATA_ENTRY, AFFINE_ENTRY = "data", "affine"


class Resampled:
    """Resample keys of a dictionary onto one target grid, carrying the affine along.

    Parameters
    ----------
    keys : str or sequence of str
        Entries to resample; all must share one grid (shape and affine).
    target_spacing : sequence of float, optional
        Voxel size per spatial axis in mm; the grid stays centred.
    target_shape : sequence of int, optional
        Voxels per spatial axis; the bounding box is kept. Give this or ``target_spacing``
        (or both, agreeing).
    interpolation : str, sequence of str, or mapping of key to str
        One name for every key, one per key (in ``keys`` order), or ``{key: name}``;
        ``'nearest'``, ``'linear'`` (default), ``'cubic'``; labels take ``'nearest'`` or
        ``'label'`` (smooth boundaries, only the input's label values).
    channel_axis : int
        Axis of channels for arrays with one axis more than the target (default 0).
    spacing : sequence of float, optional
        Spacing of every case, when the cases carry no geometry of their own.
    spacing_key : str or None
        Entry holding a case's spacing (read when there is no affine, updated when present).
    meta_key_postfix : str
        Metadata dictionaries are ``case[f"{key}_{meta_key_postfix}"]``.
    antialias : bool
        Gaussian smoothing before downsampling, for keys with linear or cubic interpolation.
    backend, device : str, optional
        As in :func:`gpuresample.resample`.
    allow_missing_keys : bool
        Skip keys the case lacks instead of raising ``KeyError``.
    target : Grid or reference image, optional
        Resample onto this grid instead of ``target_spacing``/``target_shape`` (SPEC §8):
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
    """

    def __init__(self, keys, target_spacing=None, target_shape=None, interpolation="linear", *,
                 channel_axis: int = 0, spacing=None, spacing_key: str | None = "spacing",
                 meta_key_postfix: str = "meta_dict", antialias: bool = False, backend: str = "auto",
                 device: str | None = None, allow_missing_keys: bool = False, target=None, fill=0):
        self.keys = _keys(keys)
        self.target = None if target is None else reference_grid(target)
        self.fill = dict(fill) if isinstance(fill, Mapping) else {key: fill for key in self.keys}
        if self.target is not None:
            given = [n for n, v in (("target_spacing", target_spacing), ("target_shape", target_shape)) if v is not None]
            if given:
                raise ValueError(f"target= and {' and '.join(given)}= were both given; give one way to say the grid")
            target_shape = self.target.shape  # the checks below then see one entry per spatial axis
        if target_spacing is None and target_shape is None:
            raise ValueError("give target_spacing or target_shape (or both, agreeing), or target=; got neither")
        self.target_spacing = None if target_spacing is None else check_spacing(target_spacing, "target_spacing")
        self.target_shape = None if target_shape is None else check_shape(target_shape, "target_shape")
        lengths = {len(t) for t in (self.target_spacing, self.target_shape) if t is not None}
        if len(lengths) != 1:
            raise ValueError(f"target_spacing={self.target_spacing} and target_shape={self.target_shape} "
                             "must have one entry per spatial axis each")
        self.spatial_ndim = lengths.pop()
        if self.spatial_ndim not in (2, 3):
            raise ValueError(f"the target has {self.spatial_ndim} axes; 2 or 3 spatial axes are supported")
        self.interpolation = _per_key(interpolation, self.keys)
        self.spacing = None if spacing is None else check_spacing(spacing, "spacing", self.spatial_ndim)
        if isinstance(channel_axis, bool) or not isinstance(channel_axis, (int, np.integer)):
            raise TypeError(f"channel_axis must be an int, got {channel_axis!r}")
        self.channel_axis = int(channel_axis)
        check_backend_name(backend, BACKEND_NAMES, ALIASES)
        self.spacing_key = spacing_key
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
        sources = self._sources(case, keys)
        first = keys[0]
        grid = sources[first].grid
        for key in keys[1:]:
            other = sources[key].grid
            if other.shape != grid.shape or grid.misfit_voxels(other) > MASK_GRID_TOL_VOXELS:
                raise ValueError(f"{key!r} is not on the grid of {first!r} ({other!r} vs {grid!r}); "
                                 "every key of a case must share one grid")
        target = self.target if self.target is not None else grid.resolve(self.target_shape, self.target_spacing)
        out = copy.copy(case)
        for key in keys:
            out[key] = self._resample(sources[key], target)
            meta_key = f"{key}_{self.meta_key_postfix}"
            if sources[key].origin == "meta_dict":
                meta = dict(case[meta_key])
                meta[AFFINE_ENTRY] = _like(meta[AFFINE_ENTRY], target.affine)
                out[meta_key] = meta
        if self.spacing_key is not None and self.spacing_key in case:
            out[self.spacing_key] = target.spacing
        return out

    def _sources(self, case, keys) -> dict:
        """Each key's array and grid; keys without geometry of their own share the case's."""
        own = {key: self._own_source(case, key) for key in keys}
        shared = next((source.grid for source in own.values() if source is not None), None)
        sources = {}
        for key in keys:
            if own[key] is not None:
                sources[key] = own[key]
                continue
            value = case[key]
            if shared is not None:
                grid = Grid(self._spatial_shape(value, key), shared.spacing, shared.origin, shared.direction)
                sources[key] = _Source(key, value, value, grid, "shared")
            else:
                sources[key] = _Source(key, value, value, self._grid(value, None, key, self._spacing(case, key)), "spacing")
        return sources

    def _own_source(self, case, key) -> _Source | None:
        value = case[key]
        if isinstance(value, Mapping):
            try:  # item access, not `in`: TorchIO images load their data and affine on first access
                array, affine = value[DATA_ENTRY], value[AFFINE_ENTRY]
            except KeyError:
                raise ValueError(f"{key!r} is a mapping without 'data' and 'affine' entries; "
                                 "give an array, or an image mapping with both") from None
            return _Source(key, value, array, self._grid(array, affine, key), "mapping")
        if hasattr(value, "__dlpack__") and hasattr(value, AFFINE_ENTRY) and isinstance(getattr(value, "meta", None), dict):
            return _Source(key, value, _plain_tensor(value), self._grid(value, value.affine, key), "meta_tensor")
        meta = case.get(f"{key}_{self.meta_key_postfix}")
        if isinstance(meta, Mapping) and AFFINE_ENTRY in meta:
            return _Source(key, value, value, self._grid(value, meta[AFFINE_ENTRY], key), "meta_dict")
        return None

    def _spacing(self, case, key):
        if self.spacing_key is not None and self.spacing_key in case:
            return case[self.spacing_key]
        if self.spacing is not None:
            return self.spacing
        if self.target_shape is not None and self.target is None:
            return (1.0,) * self.spatial_ndim
        raise ValueError(f"no geometry for {key!r}: the case has no affine (in {key!r} or "
                         f"{key + '_' + self.meta_key_postfix!r}) and no {self.spacing_key!r} entry, and the "
                         "transform has no spacing=; a target_spacing needs the source spacing")

    def _spatial_shape(self, array, key) -> tuple:
        shape = tuple(int(n) for n in array.shape)
        if len(shape) == self.spatial_ndim:
            return shape
        if len(shape) == self.spatial_ndim + 1:
            if not -len(shape) <= self.channel_axis < len(shape):
                raise ValueError(f"channel_axis={self.channel_axis} is not an axis of {key!r} (shape {shape})")
            axis = self.channel_axis % len(shape)
            return shape[:axis] + shape[axis + 1:]
        raise ValueError(f"{key!r} has shape {shape}; the target has {self.spatial_ndim} spatial axes, so it needs "
                         f"{self.spatial_ndim} axes, or {self.spatial_ndim + 1} with channels on channel_axis")

    def _grid(self, array, affine, key, spacing=None) -> Grid:
        shape = self._spatial_shape(array, key)
        if affine is None:
            return Grid(shape, check_spacing(spacing, f"spacing of {key!r}", len(shape)))
        return grid_from_affine(shape, _host(affine), source=f"affine of {key!r}")

    def _resample(self, source: _Source, target: Grid):
        interpolation = self.interpolation[source.key]
        array = source.array
        channel_axis = None if len(array.shape) == self.spatial_ndim else self.channel_axis
        smooth = self.antialias and interpolation in (Interpolation.LINEAR, Interpolation.CUBIC)
        if self.target is not None:
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


def reference_grid(reference) -> Grid:
    """The grid of a reference: a :class:`Grid`, a ``{"data", "affine"}`` mapping, or an
    array/tensor with an ``affine`` (its last ``affine.shape[0] - 1`` axes are spatial)."""
    if isinstance(reference, Grid):
        return reference
    if isinstance(reference, Mapping):
        try:
            array, affine = reference[DATA_ENTRY], reference[AFFINE_ENTRY]
        except KeyError:
            raise ValueError("target is a mapping without 'data' and 'affine' entries; give a Grid or a "
                             "reference image with both") from None
    elif hasattr(reference, AFFINE_ENTRY) and hasattr(reference, "shape"):
        array, affine = reference, reference.affine
    else:
        raise TypeError(f"target must be a gpuresample.Grid or a reference image with an affine, "
                        f"got {type(reference).__name__}")
    affine = _host(affine)
    ndim = affine.shape[0] - 1
    shape = tuple(int(n) for n in array.shape)[-ndim:]
    return grid_from_affine(shape, affine, source="affine of the target reference")


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
    if isinstance(interpolation, (str, Interpolation)):
        chosen = {k: interpolation for k in keys}
    elif isinstance(interpolation, Mapping):
        unknown = set(interpolation) - set(keys)
        if unknown:
            raise ValueError(f"interpolation names keys {sorted(unknown)} that are not in keys={list(keys)}")
        chosen = {k: interpolation.get(k, "linear") for k in keys}
    else:
        values = tuple(interpolation)
        if len(values) != len(keys):
            raise ValueError(f"interpolation has {len(values)} entries, keys has {len(keys)}; give one per key")
        chosen = dict(zip(keys, values))
    return {k: Interpolation.parse(v, f"interpolation of {k!r}") for k, v in chosen.items()}


def _host(affine) -> np.ndarray:
    """A (small) affine matrix as float64 NumPy, wherever it lives."""
    if isinstance(affine, (str, bytes)) or not (isinstance(affine, (list, tuple)) or hasattr(affine, "shape")):
        raise TypeError(f"affine must be a square matrix (an array, a tensor or nested lists), "
                        f"got {type(affine).__name__} {affine!r:.60}")
    if hasattr(affine, "detach") and hasattr(affine, "cpu"):  # torch, CPU or CUDA: 16 numbers, copy them
        affine = affine.detach().cpu()
    host = prepare(affine, "cpu").array if not isinstance(affine, (list, tuple)) else affine
    return np.asarray(host, dtype=np.float64)


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
