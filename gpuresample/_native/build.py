"""Build the ahead-of-time CPU loops (``grloops.c``) into a shared library.

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
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: The C sources of the library (the .c file includes the headers).
SOURCES = ("grloops.c", "grloops_work.h", "grloops_in.h", "grloops_out.h", "grloops_label.h",
           "grloops_source.h", "grloops_dest.h")
#: Compiler flags: optimised, position-independent, exact IEEE arithmetic (no contraction
#: into fused multiply-adds, no fast-math), only the gr_* entry points exported.
FLAGS = ("-O3", "-std=c11", "-fPIC", "-shared", "-pthread", "-ffp-contract=off", "-fno-fast-math",
         "-fvisibility=hidden")


def library_name() -> str:
    """The library's file name on this platform."""
    return "libgrloops.dylib" if sys.platform == "darwin" else "libgrloops.so"


def source_hash(directory: Path = HERE) -> str:
    """A short hash of the sources: a library built from other sources is never loaded."""
    digest = hashlib.sha256()
    for name in SOURCES:
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


def build(dest_dir: Path | str = HERE, source_dir: Path | str = HERE) -> Path:
    """Compile the library into ``dest_dir`` (atomically: a temporary file, then a rename).

    Raises ``RuntimeError`` with the compiler's message when there is no compiler or the
    compilation fails; on Windows (no POSIX threads) always.
    """
    if os.name != "posix":
        raise RuntimeError("the ahead-of-time CPU loops build on POSIX systems only")
    cc = compiler()
    if cc is None:
        raise RuntimeError("no C compiler found (set CC, or install gcc or clang)")
    source_dir, dest_dir = Path(source_dir), Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / library_name()
    fd, tmp = tempfile.mkstemp(prefix=".grloops-", suffix=".so", dir=dest_dir)
    os.close(fd)
    command = [cc, *FLAGS, f'-DGR_SOURCE_HASH="{source_hash(source_dir)}"', "-o", tmp,
               str(source_dir / "grloops.c"), "-lm"]
    try:
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr.strip()}")
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


if __name__ == "__main__":
    print(build(sys.argv[1] if len(sys.argv) > 1 else HERE))
