"""The native CPU loops under AddressSanitizer and UndefinedBehaviorSanitizer.

A copy of the package gets the library built with ``-fsanitize=address,undefined`` in place
of the normal one; the CPU, oblique and chunking tests (every interpolation, dtype, output
dtype, strided and 2-D input, both cubic engines, slabs cutting the prefilter) then run in a
child Python with the sanitizer runtimes preloaded. (``tests/test_native.py`` is left out:
its comparisons with Numba's loops would recompile them all for the copy, minutes of CI
time, and the runs here already reach every native loop.) Any out-of-bounds access, use after free or undefined behaviour in the C code
aborts the child, and the test fails with the sanitizer's report.
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
#: The child must run at least this many tests (it ran 287 when written).
MIN_TESTS = 250
#: Seconds for the sanitized run (the build, then about a minute of tests on 2 cores).
TIMEOUT_S = 900


def runtime(name: str) -> str | None:
    build = _native._build_module()
    cc = build.compiler()
    if cc is None:
        return None
    path = subprocess.run([cc, f"-print-file-name={name}"], capture_output=True, text=True).stdout.strip()
    return path if os.path.isabs(path) and os.path.exists(path) else None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sanitizer runtimes preloaded the Linux way")
def test_native_loops_are_clean_under_sanitizers(tmp_path):
    asan, ubsan = runtime("libasan.so"), runtime("libubsan.so")
    if not (asan and ubsan):
        pytest.skip("the C compiler has no AddressSanitizer/UndefinedBehaviorSanitizer runtime")
    build = _native._build_module()
    shutil.copytree(ROOT / "gpuresample", tmp_path / "gpuresample",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.dylib"))
    for folder in ("tests", "kernels"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    native = tmp_path / "gpuresample" / "_native"
    units = [str(native / unit) for unit in build.UNITS]
    compiled = subprocess.run(
        [build.compiler(), "-O1", "-g", "-std=c11", "-fPIC", "-shared", "-pthread", "-ffp-contract=off",
         "-fvisibility=hidden", "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
         "-fno-omit-frame-pointer", f'-DGR_SOURCE_HASH="{build.source_hash(native)}"', "-o",
         str(native / build.library_name()), *units, "-lm"], capture_output=True, text=True)
    assert compiled.returncode == 0, compiled.stderr[-3000:]
    env = dict(os.environ, LD_PRELOAD=f"{asan}:{ubsan}", ASAN_OPTIONS="detect_leaks=0:abort_on_error=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1", PYTHONPATH=str(tmp_path),
               GPURESAMPLE_CPU_LOOPS="native", GPURESAMPLE_CACHE_DIR=str(tmp_path / "cache"))
    check = ("from pathlib import Path; from gpuresample.backends import _native; "
             "print(Path(_native.library()._name).resolve())")
    loaded = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=TIMEOUT_S)
    assert loaded.stdout.strip() == str((native / build.library_name()).resolve()), loaded.stderr[-3000:]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "tests/test_resample_cpu.py",
         "tests/test_onto.py", "tests/test_chunking.py", "-k", "not threads_calling and not cuda and not kernels"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-5000:])
    passed = re.search(r"(\d+) passed", done.stdout)
    assert passed and int(passed.group(1)) >= MIN_TESTS, done.stdout[-2000:]
