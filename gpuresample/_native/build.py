"""Build the ahead-of-time CPU loops (``grloops_*.c``) into a shared library.

Standalone on purpose (standard library only, no import of ``gpuresample``): the wheel's
build hook (``hatch_build.py``) runs it before the package can be imported, and
``gpuresample.backends._native`` runs it at first use when no built library matches the
sources. From a checkout: ``python gpuresample/_native/build.py [DEST_DIR]``.

The library is a plain C11 shared object loaded with ``ctypes`` (no Python ABI, so one
build serves every Python version). It is built with ``-ffp-contract=off`` and without
fast-math so its results equal the Numba loops' bit for bit.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: The translation units, compiled in parallel and linked into one library.
UNITS = ("grloops_separable.c", "grloops_recursion.c", "grloops_affine.c")
#: Every source of the library (the units include the headers).
SOURCES = UNITS + ("grloops.h", "grloops_work.h", "grloops_in.h", "grloops_out.h", "grloops_label.h",
                   "grloops_source.h", "grloops_dest.h", "grloops_affine.h")
#: Compiler flags: optimised, position-independent, exact IEEE arithmetic (no contraction
#: into fused multiply-adds, no fast-math), only the gr_* entry points exported.
FLAGS = ("-O3", "-std=c11", "-fPIC", "-pthread", "-ffp-contract=off", "-fno-fast-math",
         "-fvisibility=hidden")


#: Variants built besides the baseline: ``(name suffix, extra flags, the CPU feature it
#: needs, as NumPy names it)``. On x86-64 an AVX2 variant (wider vectors for the dtype
#: conversions; the same IEEE operations, so the same bits) is loaded where the CPU has
#: AVX2; elsewhere the baseline build is the only one.
X86_VARIANTS = (("-avx2", ("-mavx2",), "AVX2"),)


def variants() -> tuple:
    """``(suffix, flags, feature)`` of every library built on this machine, the baseline
    (``""``, needing no feature: ``None``) first."""
    x86 = platform.machine().lower() in ("x86_64", "amd64")
    return (("", (), None),) + (X86_VARIANTS if x86 else ())


def library_name(suffix: str = "") -> str:
    """A library's file name on this platform (``suffix`` names the variant)."""
    return f"libgrloops{suffix}" + (".dylib" if sys.platform == "darwin" else ".so")


def source_hash(directory: Path = HERE) -> str:
    """A short hash of the sources and of this build recipe (its flags): a library built from
    other sources, or with other flags, is never loaded."""
    digest = hashlib.sha256()
    for name in SOURCES + (Path(__file__).name,):
        digest.update(name.encode())
        digest.update((Path(directory) / name).read_bytes())
    return digest.hexdigest()[:16]


def compiler() -> str | None:
    """The C compiler to use (``$CC``, Python's own, or ``cc``/``gcc``/``clang``), or None."""
    candidates = [os.environ.get("CC"), (sysconfig.get_config_var("CC") or "").split(" ")[0], "cc", "gcc", "clang"]
    for candidate in candidates:
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


def _run_all(commands) -> None:
    """Run the commands in parallel; ``RuntimeError`` with the first failure's message."""
    processes = [(command, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
                 for command in commands]
    failure = None
    for command, process in processes:
        _, stderr = process.communicate()
        if process.returncode != 0 and failure is None:
            failure = f"{' '.join(command)} failed:\n{stderr.strip()}"
    if failure:
        raise RuntimeError(failure)


def build(dest_dir: Path | str = HERE, source_dir: Path | str = HERE, suffixes=None) -> list:
    """Compile the variants (all, or those named in ``suffixes``) into ``dest_dir``; returns
    their paths, the baseline first.

    Every translation unit of every variant compiles in parallel, then each variant is
    linked to a temporary file and renamed into place (atomic). Raises ``RuntimeError``
    with the compiler's message when there is no compiler or a step fails; on Windows (no
    POSIX threads) always.
    """
    if os.name != "posix":
        raise RuntimeError("the ahead-of-time CPU loops build on POSIX systems only")
    cc = compiler()
    if cc is None:
        raise RuntimeError("no C compiler found (set CC, or install gcc or clang)")
    source_dir, dest_dir = Path(source_dir), Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    chosen = [(suffix, flags) for suffix, flags, _ in variants() if suffixes is None or suffix in suffixes]
    digest = source_hash(source_dir)
    with tempfile.TemporaryDirectory(prefix=".grloops-", dir=dest_dir) as scratch:
        objects = {suffix: [Path(scratch) / f"{Path(unit).stem}{suffix}.o" for unit in UNITS] for suffix, _ in chosen}
        _run_all([cc, *FLAGS, *flags, f'-DGR_SOURCE_HASH="{digest}"', "-c", str(source_dir / unit), "-o", str(obj)]
                 for suffix, flags in chosen for unit, obj in zip(UNITS, objects[suffix]))
        linked = {suffix: Path(scratch) / library_name(suffix) for suffix, _ in chosen}
        _run_all([cc, "-shared", "-pthread", *flags, "-o", str(linked[suffix]), *map(str, objects[suffix]), "-lm"]
                 for suffix, flags in chosen)
        targets = []
        for suffix, _ in chosen:
            target = dest_dir / library_name(suffix)
            os.chmod(linked[suffix], 0o755)
            os.replace(linked[suffix], target)
            targets.append(target)
    return targets


if __name__ == "__main__":
    for path in build(sys.argv[1] if len(sys.argv) > 1 else HERE):
        print(path)
