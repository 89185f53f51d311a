"""Backends and the dispatch rule.

``cpu``     NumPy/SciPy on the CPU (compiled loops), always available (alias ``scipy``):
            the ``cpu/`` package.
``cupyx``   CuPy arrays through CuPy array operations and ``cupyx.scipy.ndimage``: ``cupyx/``.
``kernels`` CuPy arrays through our CUDA kernels in ``kernels/*.cu``: ``cuda/``.

The modules of this folder are what the three share, below them: the protocol (``base``),
backend-neutral helpers (``_common``), the array code of the array path and cupyx
(``_array``, ``_affine_xp``), the compiled host loops (``_native``, ``_loops``), the cubic
pre-pass (``_spline_states``) and the device staging pipeline (``_staging``). The three
packages never import one another. GPU backends are imported lazily: importing gpuresample
never needs CuPy.
"""

from __future__ import annotations

import importlib

from .._cupy import BackendUnavailable
from .base import Backend

#: Backend name -> (module, class). Adding a backend is adding one file and one line here.
REGISTRY = {
    "kernels": ("gpuresample.backends.cuda", "KernelsBackend"),
    "cupyx": ("gpuresample.backends.cupyx", "CupyxBackend"),
    "cpu": ("gpuresample.backends.cpu", "CpuBackend"),
}
#: Older names still accepted (and shown nowhere): the CPU backend was called "scipy".
ALIASES = {"scipy": "cpu"}
#: What ``backend="auto"`` tries for data on the GPU, in order.
GPU_PREFERENCE = ("kernels", "cupyx")
#: The names shown to users (error messages, docs); aliases are accepted too.
BACKEND_NAMES = ("auto",) + tuple(REGISTRY)
#: Every name ``backend=`` accepts.
ACCEPTED_NAMES = BACKEND_NAMES + tuple(ALIASES)

_instances: dict = {}


def canonical_name(name: str) -> str:
    """The registry name for ``name`` (aliases resolved)."""
    return ALIASES.get(name, name)


def get_backend(name: str) -> Backend:
    """The backend called ``name`` (not checked for availability)."""
    name = canonical_name(name)
    if name not in REGISTRY:
        allowed = ", ".join(repr(n) for n in BACKEND_NAMES)
        raise ValueError(f"backend={name!r} is not a backend; allowed: {allowed}")
    if name not in _instances:
        module_name, class_name = REGISTRY[name]
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:  # a backend file that cannot even import
            raise BackendUnavailable(f"backend {name!r} cannot be imported: {exc}") from exc
        _instances[name] = getattr(module, class_name)()
    return _instances[name]


def clear_caches() -> None:
    """Forget backend instances and every compiled-kernel cache (tests use this to start afresh)."""
    _instances.clear()
    for module_name, _ in REGISTRY.values():
        module = importlib.sys.modules.get(module_name)
        reset = getattr(module, "clear_caches", None) if module is not None else None
        if reset is not None:
            reset()


def unavailable_reason(name: str) -> str | None:
    """None when backend ``name`` runs here, else the reason it does not."""
    try:
        return get_backend(name).unavailable_reason()
    except BackendUnavailable as exc:
        return str(exc)


def available_backends() -> dict:
    """Every backend and whether it runs here: ``{name: None or reason}``.

    Examples
    --------
    >>> import gpuresample as gr
    >>> gr.available_backends()["cpu"] is None
    True
    """
    return {name: unavailable_reason(name) for name in REGISTRY}


def choose_backend(name: str, on_gpu: bool, interpolation=None) -> Backend:
    """The dispatch rule (``docs/design.md`` §4), as code.

    * a named backend is used if it can run here, else ``BackendUnavailable`` says why;
    * ``auto`` with data on the GPU: our kernels where they cover the case, else cupyx;
    * ``auto`` with data on the host: the CPU.
    """
    if name != "auto":
        backend = get_backend(name)
        reason = backend.unavailable_reason()
        if reason is not None:
            raise BackendUnavailable(f"backend={canonical_name(name)!r} cannot run here: {reason}")
        if on_gpu != backend.on_device:
            where = "on the GPU" if on_gpu else "on the host"
            hint = " (pass device='cuda' to move NumPy data to the GPU)" if backend.on_device else ""
            raise ValueError(f"backend={canonical_name(name)!r} cannot take data {where}{hint}")
        return backend
    if not on_gpu:
        return get_backend("cpu")
    reasons = []
    for candidate in GPU_PREFERENCE:
        reason = unavailable_reason(candidate)
        if reason is None:
            backend = get_backend(candidate)
            if interpolation is None or backend.covers(interpolation):
                return backend
            reason = f"does not cover {interpolation}"
        reasons.append(f"{candidate}: {reason}")
    raise BackendUnavailable("no GPU backend can run here: " + "; ".join(reasons))


__all__ = ["Backend", "BackendUnavailable", "available_backends", "choose_backend", "get_backend",
           "clear_caches", "canonical_name", "BACKEND_NAMES", "ACCEPTED_NAMES", "ALIASES"]
