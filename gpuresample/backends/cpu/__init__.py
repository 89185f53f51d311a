"""Backend ``cpu``: NumPy arrays on the CPU, through the compiled loops on every core.

``backend``  :class:`CpuBackend`, its block operation, anti-aliasing and memory model;
``_cubic``   the cubic engine's host side (prefilter coefficients, the streamed engine's layout);
``_affine``  oblique targets: host glue around the compiled oblique loops.

Without the compiled module every block runs the array path (``backends/_array.py``, the
array code the cupyx backend runs) on NumPy and SciPy, with the same bits.
"""

from .backend import CpuBackend, clear_caches, cpu_scratch_bytes, smooth

__all__ = ["CpuBackend", "clear_caches", "cpu_scratch_bytes", "smooth"]
