"""The compiled CPU loops under AddressSanitizer and UndefinedBehaviorSanitizer.

``gpuresample._core`` is built again by CMake with ``-fsanitize=address,undefined`` into a
temporary folder and installed into a copy of the package; the CPU and chunking tests (every
interpolation, dtype, output dtype, strided and 2-D input, both cubic engines, slabs cutting
the prefilter) and the border checks of ``tests/test_native.py`` then run in a child Python
with the sanitizer runtimes preloaded. Any out-of-bounds access, use after free or undefined
behaviour in the C++ code aborts the child, and the test fails with the sanitizer's report.
(The comparisons with other loop sets are left out: the runs here already reach every loop.)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gpuresample.backends import _native

ROOT = Path(__file__).resolve().parents[1]
#: The child must run at least this many tests.
MIN_TESTS = 150
#: Seconds for the build, and for the sanitized run (a few minutes on 2 cores).
BUILD_TIMEOUT_S = 900
TIMEOUT_S = 1200
SANITIZE = "-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"


def runtime(cxx: str, name: str) -> str | None:
    path = subprocess.run([cxx, f"-print-file-name={name}"], capture_output=True, text=True).stdout.strip()
    return path if os.path.isabs(path) and os.path.exists(path) else None


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sanitizer runtimes preloaded the Linux way")
def test_compiled_loops_are_clean_under_sanitizers(tmp_path):
    cxx, cmake = shutil.which(os.environ.get("CXX", "g++")), shutil.which("cmake")
    if cxx is None or cmake is None or shutil.which("ninja") is None:
        pytest.skip("needs a C++ compiler, cmake and ninja")
    asan, ubsan = runtime(cxx, "libasan.so"), runtime(cxx, "libubsan.so")
    if not (asan and ubsan):
        pytest.skip("the C++ compiler has no AddressSanitizer/UndefinedBehaviorSanitizer runtime")
    copy = tmp_path / "copy"
    shutil.copytree(ROOT / "gpuresample", copy / "gpuresample",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd", "*.dylib"))
    for folder in ("tests", "kernels"):
        shutil.copytree(ROOT / folder, copy / folder, ignore=shutil.ignore_patterns("__pycache__"))
    build = tmp_path / "build"
    steps = [
        [cmake, "-S", str(ROOT), "-B", str(build), "-G", "Ninja", "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
         f"-DCMAKE_CXX_COMPILER={cxx}", f"-DPython_EXECUTABLE={sys.executable}",
         f"-DCMAKE_CXX_FLAGS={SANITIZE}", f"-DCMAKE_MODULE_LINKER_FLAGS={SANITIZE}",
         f"-DCMAKE_SHARED_LINKER_FLAGS={SANITIZE}"],
        [cmake, "--build", str(build)],
        [cmake, "--install", str(build), "--prefix", str(copy), "--component", "core"],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
        assert done.returncode == 0, (" ".join(step), done.stdout[-3000:], done.stderr[-3000:])
    assert list((copy / "gpuresample").glob("_core.*")), "the sanitized module was not installed"
    env = dict(os.environ, LD_PRELOAD=f"{asan}:{ubsan}", ASAN_OPTIONS="detect_leaks=0:abort_on_error=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1", PYTHONPATH=str(copy))
    check = "import gpuresample._core as c; print(c.__file__)"
    loaded = subprocess.run([sys.executable, "-c", check], cwd=copy, env=env, capture_output=True, text=True,
                            timeout=TIMEOUT_S)
    assert loaded.returncode == 0 and Path(loaded.stdout.strip()).parent == copy / "gpuresample", loaded.stderr[-3000:]
    files = ["tests/test_resample_cpu.py", "tests/test_chunking.py", "tests/test_native.py"]
    if hasattr(_native.library(), "affine_nearest"):
        files.append("tests/test_onto.py")  # the oblique loops, where this build has them
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", *files, "-k",
         "not threads_calling and not cuda and not kernels and not damaged and not agree"],
        cwd=copy, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-5000:])
    passed = re.search(r"(\d+) passed", done.stdout)
    assert passed and int(passed.group(1)) >= MIN_TESTS, done.stdout[-2000:]
