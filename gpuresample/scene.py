"""A dataset (volumes and masks on one grid) and the plan that resamples it."""

from __future__ import annotations

import warnings
from typing import Mapping

from ._validate import check_flag, check_spacing
from .display import plan_html, plan_text
from .geometry import Grid
from .interpolation import Interpolation
from .job import build_job, warn_cubic_mask
from .onto import check_target

#: Options of :meth:`Scene.plan` passed to every object's job.
JOB_OPTIONS = ("backend", "device", "max_memory")


class Scene:
    """Volumes and masks of one dataset, on one grid.

    Parameters
    ----------
    grid : Grid or sequence of float
        The dataset's grid, or just its spacing (the shape is taken from the arrays).
    volumes : mapping of str to array, optional
        Grey-value volumes (CT, MRI, ...).
    masks : mapping of str to array, optional
        Label masks; resampled with ``mask_interpolation`` (default nearest).

    Examples
    --------
    >>> import numpy as np
    >>> import gpuresample as gr
    >>> ct = np.zeros((40, 64, 64), np.float32)
    >>> liver = np.zeros((40, 64, 64), np.uint8)
    >>> scene = gr.Scene((2.5, 0.8, 0.8), volumes={"CT": ct}, masks={"Liver": liver})
    >>> new = scene.resample(target_spacing=(1.6, 1.6, 1.6))
    >>> new.grid.shape, new.masks["Liver"].dtype
    ((63, 32, 32), dtype('uint8'))
    """

    def __init__(self, grid, volumes: Mapping | None = None, masks: Mapping | None = None):
        volumes = dict(volumes or {})
        masks = dict(masks or {})
        for name in set(volumes) & set(masks):
            raise ValueError(f"name {name!r} is both a volume and a mask; names must be unique")
        if not isinstance(grid, Grid):
            arrays = list(volumes.values()) + list(masks.values())
            if not arrays:
                raise ValueError("Scene needs a Grid, or at least one array to take the shape from")
            shape = tuple(arrays[0].shape)
            grid = Grid(shape, check_spacing(grid, "grid (spacing)", len(shape)))
        for role, items in (("volume", volumes), ("mask", masks)):
            for name, array in items.items():
                if tuple(array.shape) != grid.shape:
                    raise ValueError(
                        f"{role} {name!r} has shape {tuple(array.shape)}, the dataset grid has shape {grid.shape}")
        self.grid = grid
        self.volumes = volumes
        self.masks = masks

    def __getitem__(self, name):
        if name in self.volumes:
            return self.volumes[name]
        if name in self.masks:
            return self.masks[name]
        raise KeyError(f"no volume or mask named {name!r}; have {sorted(self.names)}")

    @property
    def names(self) -> list:
        return list(self.volumes) + list(self.masks)

    def plan(self, target_shape=None, target_spacing=None, volume_interpolation="linear",
             mask_interpolation="nearest", names=None, antialias=False, progress=False,
             target=None, fill=0, **options) -> "Plan":
        """Decide how every object is resampled onto one target grid; nothing runs yet.

        Parameters
        ----------
        target_shape, target_spacing : sequence, optional
            The target grid, as in :func:`gpuresample.resample`.
        volume_interpolation, mask_interpolation : str or Interpolation
            Defaults: linear for volumes, nearest for masks.
        names : sequence of str, optional
            Objects to resample (default: all).
        antialias : bool
            Gaussian smoothing before downsampling, volumes only.
        progress : bool
            Progress bar when the plan is applied.
        target : Grid, optional
            Another dataset's grid to resample onto (instead of ``target_shape`` /
            ``target_spacing``; giving both is a ``ValueError``), as in
            :func:`gpuresample.resample`. This scene's grid (origin, direction) places it.
        fill : float
            Value of volumes outside this scene's data with ``target=`` (default 0); masks
            always get 0 there (background).
        **options
            ``backend``, ``device``, ``max_memory``, as in :func:`gpuresample.resample`.
        """
        unknown = set(options) - set(JOB_OPTIONS)
        if unknown:
            raise TypeError(f"unknown option(s) {sorted(unknown)}; allowed: {list(JOB_OPTIONS)}")
        antialias = check_flag(antialias, "antialias")
        volume_interpolation = Interpolation.parse(volume_interpolation, "volume_interpolation")
        mask_interpolation = Interpolation.parse(mask_interpolation, "mask_interpolation")
        if volume_interpolation is Interpolation.LABEL:
            raise ValueError("volume_interpolation='label' is for masks; use nearest, linear or cubic")
        if target is not None:  # another dataset's grid
            derived, onto = None, {"onto": check_target(target, target_shape, target_spacing, self.grid.ndim)}
        else:
            derived, onto = self.grid.resolve(target_shape, target_spacing), {}
            target = derived
        selected = self.names if names is None else list(names)
        for name in selected:
            if name not in self.volumes and name not in self.masks:
                raise ValueError(f"names contains {name!r}, which is not in this scene; have {self.names}")
        jobs = []
        for name in selected:
            is_mask = name in self.masks
            interpolation = mask_interpolation if is_mask else volume_interpolation
            if is_mask and interpolation is Interpolation.CUBIC:
                warn_cubic_mask(name)
            jobs.append(build_job(
                self[name], self.grid.spacing, target=derived, interpolation=interpolation,
                antialias=antialias and not is_mask and interpolation is not Interpolation.NEAREST,
                name=name, role="mask" if is_mask else "volume",
                origin=self.grid.origin, direction=self.grid.direction, fill=0 if is_mask else fill, **onto,
                **options))
        return Plan(self, target, jobs, progress)

    def resample(self, names=None, target_shape=None, target_spacing=None, volume_interpolation="linear",
                 mask_interpolation="nearest", **options) -> "Scene":
        """Plan and apply in one call; returns the new :class:`Scene`.

        Accepts a positional form,
        ``scene.resample(["CT"], [256, 256, 128], [0.5, 0.5, 1.0], LINEAR, NEAREST)``
        (names, target shape, target spacing, volume and mask interpolation),
        and ``target=`` / ``fill=`` as :meth:`plan` does.
        """
        return self.plan(target_shape, target_spacing, volume_interpolation, mask_interpolation,
                         names=names, **options).apply()

    def __repr__(self) -> str:
        return f"Scene({self.grid!r}, volumes={list(self.volumes)}, masks={list(self.masks)})"


class Plan:
    """What resampling a scene will do: print it before anything runs, then :meth:`apply`.

    Made by :meth:`Scene.plan`; the plan itself never changes, and nothing is computed
    until :meth:`apply`. ``print(plan)`` shows the information display (HTML in a notebook):
    both grids, one row per object, the total bytes before and after, and a line with the
    plan's peak memory.

    Attributes
    ----------
    scene : Scene
        The dataset being resampled.
    source : Grid
        The dataset's grid (``scene.grid``).
    target : Grid
        The shared target grid every object lands on.
    jobs : list of Job
        One per object, in the order they run: name, role (``"volume"`` or ``"mask"``),
        interpolation, dtypes, bytes before and after, backend, slabs (``job.chunking``).
    progress : bool
        Whether :meth:`apply` shows a progress bar by default.
    executions : dict of str to Execution
        Empty until :meth:`apply`; then, per object, the
        :class:`~gpuresample.executor.Execution`: the result, the slabs that ran and any
        out-of-memory replans.
    memory_ratio : float
        ``(X'*Y'*Z') / (X*Y*Z)``: target voxels over source voxels.
    bytes_before : dict of str to int
        Per object, the bytes of its data now.
    bytes_after : dict of str to int
        Per object, the bytes of its result (the whole result array).
    backends : dict of str to str
        Per object, the backend that will run it (``"cpu"``, ``"kernels"``, ``"cupyx"``).
    chunks : dict of str to int
        Per object, how many slabs along axis 0 it runs in (1: the whole volume at once).
    peak_bytes : int
        The plan's overall peak memory: objects run one after another, so it is the
        largest object's peak, that is the most one slab needs at once (its input rows,
        its output rows and the backend's scratch). This is what ``max_memory`` limits.
        ``max_memory`` never splits a result array: each is allocated whole before its
        slabs run, so a chunked run needs its whole result (``bytes_after``) beyond the
        slab's share of this figure. The input data is not counted either.

    Examples
    --------
    >>> import gpuresample as gr
    >>> plan = gr.phantom().plan(target_spacing=(1.0, 1.0, 1.0))
    >>> plan.target.shape, plan.chunks, round(plan.memory_ratio, 4)
    ((240, 102, 102), {'CT': 1, 'Organs': 1}, 1.5875)
    >>> print(str(plan).splitlines()[-1])  # doctest: +NORMALIZE_WHITESPACE
    peak memory: 15.7 MiB (largest slab: input rows + output rows + scratch; max_memory limits
    this, but each result array is allocated whole: 11.9 MiB in all)
    """

    def __init__(self, scene: Scene, target: Grid, jobs, progress=False):
        self.scene = scene
        self.source = scene.grid
        self.target = target
        self.jobs = jobs
        self.progress = progress
        # Filled by apply() (see the class docstring); the plan itself never changes.
        self.executions = {}

    @property
    def memory_ratio(self) -> float:
        return self.target.size / self.source.size

    @property
    def bytes_before(self) -> dict:
        return {job.name: job.bytes_before for job in self.jobs}

    @property
    def bytes_after(self) -> dict:
        return {job.name: job.bytes_after for job in self.jobs}

    @property
    def backends(self) -> dict:
        return {job.name: job.backend.name for job in self.jobs}

    @property
    def chunks(self) -> dict:
        return {job.name: job.chunking.count for job in self.jobs}

    @property
    def peak_bytes(self) -> int:
        return max((job.chunking.peak_bytes for job in self.jobs), default=0)

    def __str__(self) -> str:
        return plan_text(self.source, self.target, self.jobs)

    def __repr__(self) -> str:
        return self.__str__()

    def _repr_html_(self) -> str:
        return plan_html(self.source, self.target, self.jobs)

    def apply(self, progress: bool | None = None) -> Scene:
        """Run every job; returns the new scene on the target grid."""
        show = self.progress if progress is None else progress
        self.executions = {job.name: job.execute(progress=show) for job in self.jobs}
        replans = [line for e in self.executions.values() for line in e.replans]
        if replans:
            warnings.warn("; ".join(replans), RuntimeWarning, stacklevel=2)
        results = {name: e.result for name, e in self.executions.items()}
        volumes = {j.name: results[j.name] for j in self.jobs if j.role == "volume"}
        masks = {j.name: results[j.name] for j in self.jobs if j.role == "mask"}
        return Scene(self.target, volumes=volumes, masks=masks)
