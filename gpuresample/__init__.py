"""gpuresample: resample 3-D volumes and label masks on the GPU, and on the CPU when there is none.

Geometry (:mod:`~gpuresample.geometry`) -> sampling tables (:mod:`~gpuresample.tables`)
-> plan (:mod:`~gpuresample.job`, :mod:`~gpuresample.planner`, :mod:`~gpuresample.scene`)
-> backend (:mod:`~gpuresample.backends`, run by :mod:`~gpuresample.executor`) -> result.
The layers and the contract are described in ``docs/design.md``.
"""

from .api import resample
from .backends import BackendUnavailable, available_backends
from .geometry import Grid, coarsest_spacing, isotropic
from .interpolation import Interpolation
from .sample import phantom
from .scene import Plan, Scene

__version__ = "0.1.0"

__all__ = [
    "resample", "Grid", "isotropic", "coarsest_spacing", "Interpolation", "Scene", "Plan",
    "available_backends", "BackendUnavailable", "phantom", "__version__",
]
