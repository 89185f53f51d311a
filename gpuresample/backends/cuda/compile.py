"""The CUDA kernel sources, the names of their instantiations, and the compile caches.

Sizes, strides and table pointers are kernel arguments: a module is compiled once per
(input dtype, output dtype, interpolation) and device by NVRTC through CuPy, which keeps
the binary on disk for later processes. The sources are ``kernels/*.cu`` (installed as
``gpuresample/_kernels``), with every quoted include inlined once (:func:`module_source`),
so the text CuPy's cache is keyed by is the whole text compiled. Importing this module
needs neither CuPy nor a GPU.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..._cupy import BackendUnavailable
from ...interpolation import Interpolation, working_dtype
from .._common import WIDE_INTEGERS, label_view_dtype

#: The header every kernel source includes.
KERNEL_HEADER = "gpuresample.cuh"
#: Kernel sources, in the order they are concatenated into one module.
KERNEL_FILES = ("separable.cu", "label.cu", "spline.cu", "affine.cu")
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
#: Element type of the separable kernel's offsets: int (32-bit arithmetic, fewer registers)
#: when every offset fits, else long long.
INDEX_TYPES = {np.dtype(np.int32): "int", np.dtype(np.int64): "long long"}
#: How a separable thread marches (GR_MARCH_B / GR_MARCH_C in kernels/separable.cu): along
#: slot B keeping p1 rows, or along slot C keeping one p2 per input row.
MARCH_B = 1
MARCH_C = 2
PREFILTER_NAME = "gr_spline_prefilter"
#: The prefilter of a cubic slab, continuing the whole line's recursion from its states.
PREFILTER_CUT_NAME = "gr_spline_prefilter_cut"
#: ``extern "C"`` kernels: found by name in a module, no name expression needed.
EXTERN_C_NAMES = (PREFILTER_NAME, PREFILTER_CUT_NAME)
#: (device id, in dtype, out dtype, interpolation) -> compiled RawModule.
_compile_cache = {}
#: (device id, in dtype, out dtype, interpolation, name) -> RawKernel: get_function
#: builds a new RawKernel on every call, which costs microseconds per launch.
_function_cache = {}
#: The kernel sources' folder and module text, found once per process (no file-system
#: access per call).
_sources = {}


def kernel_source_dir() -> Path | None:
    """Where the kernel sources are: ``gpuresample/_kernels`` in a wheel, else the repo's ``kernels/``.

    Returns None when neither holds every file.
    """
    package = Path(__file__).resolve().parents[2]
    for candidate in (package / "_kernels", package.parent / "kernels"):
        if all((candidate / name).is_file() for name in (KERNEL_HEADER,) + KERNEL_FILES):
            return candidate
    return None
#: A quoted include of a file next to the sources (``#include "gr_label.cuh"``).
_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]+"([^"]+)"[ \t]*$', re.MULTILINE)


def _inlined(directory: Path, name: str, seen: set) -> str:
    """``name``'s text with every quoted include replaced by that file's text, recursively;
    a file already inlined (``seen``) is not repeated. ``#line`` directives keep compiler
    messages pointing at the original files and lines."""
    text = (directory / name).read_text()
    parts = [f'#line 1 "{name}"\n']
    position = 0
    for match in _INCLUDE.finditer(text):
        parts.append(text[position:match.start()])
        line = text.count("\n", 0, match.start()) + 1
        header = match.group(1)
        if header in seen:
            parts.append(f"// {header} is inlined above")
        else:
            if not (directory / header).is_file():
                raise FileNotFoundError(f"{directory / name}:{line}: included file {header} not found")
            seen.add(header)
            parts.append(_inlined(directory, header, seen) + f'\n#line {line + 1} "{name}"')
        position = match.end()
    parts.append(text[position:])
    return "".join(parts)


def module_source(directory: Path) -> str:
    """The text CuPy compiles: the header, then every kernel file, includes resolved.

    Every ``#include "x.cuh"`` of a kernel file or header is inlined, once (not found
    through an include path), so CuPy's on-disk cache, keyed by this text, never serves a
    binary built from an older header.
    """
    seen = {KERNEL_HEADER}
    parts = [_inlined(directory, KERNEL_HEADER, seen)]
    for name in KERNEL_FILES:
        seen.add(name)
        parts.append(_inlined(directory, name, seen))
    return "\n".join(parts)


def c_type(dtype) -> str:
    """The kernels' element type for ``dtype``; ``TypeError`` for anything unsupported."""
    dtype = np.dtype(dtype)
    try:
        return C_TYPES[dtype]
    except KeyError:
        raise TypeError(f"the CUDA kernels do not take dtype {dtype}") from None


def separable_name(source_dtype, work, out_dtype, taps: int, march: int, index) -> str:
    """Name expression of the separable kernel reading ``source_dtype``, summing in ``work``,
    marching along slot ``march`` with offsets of dtype ``index`` (int32 or int64)."""
    return (f"gr_separable<{c_type(source_dtype)}, {c_type(work)}, {c_type(out_dtype)}, {taps}, {march}, "
            f"{INDEX_TYPES[np.dtype(index)]}>")


def _separable_names(sources, work, out_dtype, taps: int) -> tuple:
    return tuple(separable_name(source, work, out_dtype, taps, march, index)
                 for source in dict.fromkeys(np.dtype(s) for s in sources)
                 for march in (MARCH_B, MARCH_C) for index in INDEX_TYPES)


def table_pass_name(source_dtype, work) -> str:
    """Name expression of the one-axis pass with any number of taps (the anti-aliasing
    Gaussian) reading ``source_dtype`` and writing ``work``."""
    return f"gr_table_pass<{c_type(source_dtype)}, {c_type(work)}>"


def label_name(dtype) -> str:
    """Name expression of the label kernel for labels of ``dtype`` (bool as unsigned char, float16 as gr_half)."""
    dtype = np.dtype(dtype)
    return f"gr_label<{c_type(label_view_dtype(dtype))}>"


def gather_name(dtype) -> str:
    """Name expression of the kernel gathering ``dtype`` rows into float64 coefficients."""
    return f"gr_gather_coefficients<{c_type(dtype)}>"


def affine_name(in_dtype, out_dtype, interpolation) -> str:
    """Name expression of the oblique-target kernel (``kernels/affine.cu``) for this kind of block."""
    interpolation = Interpolation.parse(interpolation)
    in_dtype, out_dtype = np.dtype(in_dtype), np.dtype(out_dtype)
    if interpolation is Interpolation.LABEL or (interpolation is Interpolation.NEAREST and in_dtype == out_dtype):
        kind = "label" if interpolation is Interpolation.LABEL else "copy"
        return f"gr_affine_{kind}<{c_type(label_view_dtype(in_dtype))}>"
    if interpolation is Interpolation.NEAREST:
        return f"gr_affine_nearest<{c_type(in_dtype)}, {c_type(out_dtype)}>"
    work = c_type(working_dtype(in_dtype))
    if interpolation is Interpolation.LINEAR:
        return f"gr_affine_linear<{c_type(in_dtype)}, {work}, {c_type(out_dtype)}>"
    return f"gr_affine_cubic<{work}, {c_type(out_dtype)}>"


def kernel_names(in_dtype, out_dtype, interpolation) -> tuple:
    """Every kernel a block of this kind may launch, with or without anti-aliasing, for
    targets derived from the source and for targets on another grid (oblique ones).

    This is what one compiled module holds.
    """
    return _table_kernel_names(in_dtype, out_dtype, interpolation) + (affine_name(in_dtype, out_dtype, interpolation),)


def _table_kernel_names(in_dtype, out_dtype, interpolation) -> tuple:
    interpolation = Interpolation.parse(interpolation)
    in_dtype, out_dtype = np.dtype(in_dtype), np.dtype(out_dtype)
    if interpolation is Interpolation.LABEL or (interpolation is Interpolation.NEAREST and in_dtype in WIDE_INTEGERS):
        return (label_name(in_dtype),)  # see uses_label_arithmetic
    work = working_dtype(in_dtype)
    taps = TAPS[interpolation]
    names = ()
    if interpolation in (Interpolation.LINEAR, Interpolation.CUBIC):  # anti-aliasing: input, then smoothed rows
        names = tuple(dict.fromkeys((table_pass_name(in_dtype, work), table_pass_name(work, work))))
    if interpolation is Interpolation.CUBIC:
        gathers = tuple(dict.fromkeys((gather_name(in_dtype), gather_name(work))))
        return names + gathers + EXTERN_C_NAMES + _separable_names((work,), work, out_dtype, taps)
    return names + _separable_names((in_dtype, work), work, out_dtype, taps)


def clear_compile_caches() -> None:
    """Forget compiled modules, kernel functions and the kernel source text."""
    _compile_cache.clear()
    _function_cache.clear()
    _sources.clear()


def source_dir() -> Path | None:
    """:func:`kernel_source_dir`, looked up once per process."""
    if "dir" not in _sources:
        _sources["dir"] = kernel_source_dir()
    return _sources["dir"]


def _module_text() -> str:
    """:func:`module_source` of the kernel sources, read once per process."""
    if "text" not in _sources:
        directory = source_dir()
        if directory is None:
            raise BackendUnavailable("CUDA kernel sources not found (kernels/ or gpuresample/_kernels/)")
        _sources["text"] = module_source(directory)
    return _sources["text"]


def kernel_function(cupy, key: tuple, name: str):
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
        names = [n for n in kernel_names(*key) if n not in EXTERN_C_NAMES]
        module = cupy.RawModule(code=_module_text(), options=COMPILE_OPTIONS, name_expressions=names)
        module.compile()
        _compile_cache[cache_key] = module
    return module


__all__ = ["kernel_source_dir", "module_source", "kernel_names", "kernel_function", "source_dir", "c_type",
           "separable_name", "table_pass_name", "label_name", "gather_name", "affine_name", "clear_compile_caches",
           "KERNEL_HEADER", "KERNEL_FILES", "COMPILE_OPTIONS", "C_TYPES", "TAPS", "INDEX_TYPES", "MARCH_B", "MARCH_C",
           "PREFILTER_NAME", "PREFILTER_CUT_NAME", "EXTERN_C_NAMES"]
