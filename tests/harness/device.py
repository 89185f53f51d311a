"""Build ``kernels/*.cu`` as a C++ shared library and run backend launches through it.

:class:`HarnessDevice` implements :class:`gpuresample.backends.cuda.Device` with NumPy
arrays: :func:`gpuresample.backends.cuda.run_kernels` plans exactly the launches it would
give CuPy (names, grids, arguments) and this device runs each launch over its whole grid,
one thread at a time, in the kernels compiled by g++ from the very text CuPy compiles
(:func:`~gpuresample.backends.cuda.module_source`), with ``cuda_shim.h`` standing in for
the CUDA built-ins.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from gpuresample.backends.cuda import Device, Launch, kernel_source_dir, module_source

HERE = Path(__file__).resolve().parent
#: g++ flags: no contraction into FMA (the kernels' arithmetic contract, as nvcc --fmad=false),
#: every warning an error except CUDA's '#pragma unroll', which g++ does not know.
CXX_FLAGS = ("-std=c++17", "-O2", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror",
             "-Wno-unknown-pragmas", "-shared", "-fPIC")
#: Seconds g++ may take before the build counts as failed.
BUILD_TIMEOUT_S = 600
#: ctypes type of each NumPy scalar type a launch passes by value.
SCALAR_CTYPES = {np.dtype(np.int32): ctypes.c_int32, np.dtype(np.int64): ctypes.c_int64,
                 np.dtype(np.float64): ctypes.c_double, np.dtype(np.float32): ctypes.c_float}


def compiler() -> str | None:
    """The C++ compiler to use: ``$CXX`` or g++; None when there is none."""
    return shutil.which(os.environ.get("CXX", "g++"))


def translation_unit(names) -> str:
    """C++ source registering the kernel instantiations ``names`` (name expressions)."""
    entries = ",\n".join(f"    GR_KERNEL({name})" for name in names)
    return (
        '#include "cuda_shim.h"\n'
        '#include "module.cu"\n'
        '#include "harness.h"\n\n'
        f"static const gr_harness::Entry gr_entries[] = {{\n{entries}\n}};\n\n"
        "GR_HARNESS_API(gr_entries)\n"
    )


def build(names, build_dir: Path) -> Path:
    """Compile the kernels with the instantiations ``names`` into ``build_dir``; the library path."""
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    (build_dir / "module.cu").write_text(module_source(kernel_source_dir()))
    unit = build_dir / "harness.cpp"
    unit.write_text(translation_unit(names))
    library = build_dir / "libgrharness.so"
    command = [compiler(), *CXX_FLAGS, f"-I{HERE}", f"-I{build_dir}", str(unit), "-o", str(library)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    if result.returncode != 0:
        raise RuntimeError(f"harness build failed: {' '.join(command)}\n{result.stderr}")
    return library


class HarnessDevice(Device):
    """Runs :class:`~gpuresample.backends.cuda.Launch` es through the compiled harness."""

    def __init__(self, library: Path):
        self.lib = ctypes.CDLL(str(library))
        self.lib.gr_harness_launch.restype = ctypes.c_int
        self.lib.gr_harness_launch.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint),
                                               ctypes.POINTER(ctypes.c_uint), ctypes.POINTER(ctypes.c_void_p)]
        self.lib.gr_harness_kernel_name.restype = ctypes.c_char_p
        self.lib.gr_harness_kernel_kinds.restype = ctypes.c_char_p
        self.lib.gr_harness_kernel_kinds.argtypes = [ctypes.c_char_p]
        self.lib.gr_harness_kernel_sizes.restype = ctypes.POINTER(ctypes.c_int)
        self.lib.gr_harness_kernel_sizes.argtypes = [ctypes.c_char_p]
        #: Name expressions launched, in order (tests check them against kernel_names()).
        self.launched = []

    def kernel_names(self) -> list:
        return [self.lib.gr_harness_kernel_name(i).decode() for i in range(self.lib.gr_harness_kernel_count())]

    def empty(self, shape, dtype):
        return np.empty(shape, dtype)

    def upload(self, arrays) -> list:
        return [np.array(a, copy=True) for a in arrays]

    def signature(self, name: str) -> list:
        """The kernel's parameters as ``(kind, bytes)``: kind 'p' pointer, 'f' float, 'i' integer."""
        kinds = self.lib.gr_harness_kernel_kinds(name.encode())
        if kinds is None:
            raise KeyError(f"kernel {name!r} is not compiled into the harness")
        sizes = self.lib.gr_harness_kernel_sizes(name.encode())
        return [(chr(k), sizes[i]) for i, k in enumerate(kinds)]

    def check_arguments(self, launch: Launch) -> None:
        """Each argument as CuPy would pass it must match the parameter's kind and size.

        CuPy packs arrays as pointers and NumPy scalars by their dtype, so an int64 given
        for an int parameter would shift every later argument on a GPU; on the CPU the
        harness would read it correctly by accident. Refuse it here instead.
        """
        params = self.signature(launch.name)
        if len(params) != len(launch.args):
            raise TypeError(f"{launch.name}: {len(launch.args)} arguments for {len(params)} parameters")
        for i, (arg, (kind, size)) in enumerate(zip(launch.args, params)):
            if isinstance(arg, np.ndarray):
                given = ("p", 8)
            else:
                dtype = np.dtype(type(arg))
                given = ("f" if dtype.kind == "f" else "i", dtype.itemsize)
            if given != (kind, size):
                raise TypeError(f"{launch.name}: argument {i} is {given}, the parameter is {(kind, size)}")

    def launch(self, launch: Launch) -> None:
        self.check_arguments(launch)
        keep = []  # ctypes objects the parameter pointers point at
        for arg in launch.args:
            if isinstance(arg, np.ndarray):
                keep.append(ctypes.c_void_p(arg.ctypes.data))
            else:
                keep.append(SCALAR_CTYPES[np.dtype(type(arg))](arg))
        params = (ctypes.c_void_p * len(keep))(*[ctypes.cast(ctypes.pointer(k), ctypes.c_void_p) for k in keep])
        grid = (ctypes.c_uint * 3)(*launch.grid)
        block = (ctypes.c_uint * 3)(*launch.block)
        self.launched.append(launch.name)
        if self.lib.gr_harness_launch(launch.name.encode(), grid, block, params) != 0:
            raise KeyError(f"kernel {launch.name!r} is not compiled into the harness")
