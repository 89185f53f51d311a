"""Backend ``cupyx``: CuPy arrays through CuPy array operations and ``cupyx.scipy.ndimage``
(``backend``: :class:`CupyxBackend`). Importing it needs neither CuPy nor a GPU."""

from .backend import CupyxBackend

__all__ = ["CupyxBackend"]
