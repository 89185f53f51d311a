"""Every ``kernels/*.cu`` compiles with nvcc to PTX for sm_80 and sm_90, warning-free.

Templates only compile when instantiated, so each file is compiled inside a small
translation unit that takes the address of the instantiations the backend asks CuPy for
(:func:`gpuresample.backends.cuda.kernel_names`): every input dtype with every
interpolation, and every output dtype. The module text CuPy compiles (the header inlined
by :func:`~gpuresample.backends.cuda.module_source`) is compiled the same way. Skips
when nvcc is not on PATH.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import ALL_DTYPES

from gpuresample.backends.cuda.compile import (
    COMPILE_OPTIONS,
    KERNEL_FILES,
    PREFILTER_CUT_NAME,
    PREFILTER_NAME,
    kernel_names,
    kernel_source_dir,
    module_source,
)

NVCC = shutil.which("nvcc")
pytestmark = pytest.mark.skipif(NVCC is None, reason="nvcc is not on PATH")

#: Virtual architectures checked: Ampere (A100) and Hopper (H100/H200).
ARCHITECTURES = ("compute_80", "compute_90")
#: nvcc flags beyond the backend's NVRTC options: any warning fails the build.
STRICT_FLAGS = ("-Werror", "all-warnings", "--ptx")
#: Seconds one nvcc run may take.
NVCC_TIMEOUT_S = 300
#: CuPy appends this to every option list it compiles with (NVRTC honours the last).
CUPY_APPENDED_OPTIONS = ("-ftz=true",)
#: Which file defines the kernels whose name expressions start with each prefix.
DEFINING_FILE = {"gr_separable": "separable.cu", "gr_label": "label.cu",
                 "gr_gather_coefficients": "spline.cu", "gr_table_pass": "separable.cu", PREFILTER_NAME: "spline.cu",
                 PREFILTER_CUT_NAME: "spline.cu",
                 "gr_affine_copy": "affine.cu", "gr_affine_nearest": "affine.cu", "gr_affine_linear": "affine.cu",
                 "gr_affine_cubic": "affine.cu", "gr_affine_label": "affine.cu"}


def instantiations() -> list:
    """Name expressions covering every dtype as input and as output, per interpolation."""
    combos = [(d, d, i) for d in ALL_DTYPES for i in ("nearest", "linear", "cubic", "label")]
    combos += [("float32", d, i) for d in ALL_DTYPES for i in ("nearest", "linear", "cubic")]
    names = []
    for combo in combos:
        names += [n for n in kernel_names(*combo) if n not in names]
    return names


def defining_file(name: str) -> str:
    return DEFINING_FILE[name.split("<")[0]]


def wrapper(include: str, names) -> str:
    """A translation unit that includes ``include`` and instantiates ``names``."""
    refs = ",\n".join(f"        reinterpret_cast<const void*>(&{n})" for n in names)
    return (f'#include "{include}"\n\n'
            "const void* gr_instantiated(int i)\n{\n"
            f"    static const void* const kernels[] = {{\n{refs}\n    }};\n"
            "    return kernels[i];\n}\n")


def nvcc(source, arch: str, include_dir, output, extra=()):
    command = [NVCC, *STRICT_FLAGS, f"-arch={arch}", *COMPILE_OPTIONS, *extra, f"-I{include_dir}", str(source),
               "-o", str(output)]
    return command, subprocess.run(command, capture_output=True, text=True, timeout=NVCC_TIMEOUT_S)


def compile_all(units, tmp_path) -> list:
    """Compile every (unit, arch) in parallel; the failures as (command, output)."""
    jobs = [(unit, arch) for unit in units for arch in ARCHITECTURES]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(
            lambda job: nvcc(job[0], job[1], kernel_source_dir(), tmp_path / f"{job[0].stem}.{job[1]}.ptx"), jobs))
    return [(" ".join(cmd), r.stdout + r.stderr) for cmd, r in results
            if r.returncode != 0 or (r.stdout + r.stderr).strip()]


def test_every_kernel_file_compiles_to_ptx_without_warnings(tmp_path):
    names = instantiations()
    units = []
    for file in KERNEL_FILES:
        unit = tmp_path / f"instantiate_{file}"
        unit.write_text(wrapper(file, [n for n in names if defining_file(n) == file]))
        units.append(unit)
    assert {p.name for p in kernel_source_dir().glob("*.cu")} == set(KERNEL_FILES), "a .cu file the backend ignores"
    failures = compile_all(units, tmp_path)
    assert not failures, "\n\n".join(f"{cmd}\n{out}" for cmd, out in failures)
    for unit in units:
        for arch in ARCHITECTURES:
            ptx = (tmp_path / f"{unit.stem}.{arch}.ptx").read_text()
            assert ptx.count(".entry") >= 1
            assert f".target sm_{arch.split('_')[1]}" in ptx


def test_module_text_compiles_and_holds_every_kernel(tmp_path):
    """The exact text and options CuPy compiles with: one PTX entry per instantiation, and
    resampling arithmetic that neither fuses multiply-adds nor flushes subnormals even
    under CuPy's -ftz=true."""
    module = tmp_path / "module.cu"
    module.write_text(module_source(kernel_source_dir()))
    names = instantiations()
    unit = tmp_path / "instantiate_module.cu"
    unit.write_text(wrapper(module.name, names))
    command, result = nvcc(unit, ARCHITECTURES[0], tmp_path, tmp_path / "module.ptx", CUPY_APPENDED_OPTIONS)
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), \
        f"{' '.join(command)}\n{result.stdout}{result.stderr}"
    ptx = (tmp_path / "module.ptx").read_text()
    entries = ptx.split(".entry")[1:]
    assert len(entries) == len(names)
    separable = [e for e in entries if e.lstrip().startswith("_Z12gr_separable")]
    label = [e for e in entries if e.lstrip().startswith("_Z8gr_label")]
    assert separable and label and "gr_spline_prefilter(" in ptx and "gr_spline_prefilter_cut(" in ptx
    for entry in entries:  # each kernel's own body; libdevice's pow is a separate .func
        body = entry.split("\n}\n")[0]
        assert "fma." not in body and ".ftz" not in body, entry.split("(")[0]
    for entry in separable:
        assert "mul.rn.f" in entry.split("\n}\n")[0]


_ENTRY = re.compile(r"Compiling entry function '([^']+)' for '(sm_\d+)'")
_USED = re.compile(r"Used (\d+) registers")
_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")


def separable_register_usage(kernel_dir, arch: str = "sm_90") -> list:
    """``(mangled name, registers, (stack frame, spill stores, spill loads))`` of every separable
    instantiation, as ``ptxas -v`` reports them for ``arch`` (benchmarks/ptxas_registers.py)."""
    names = [n for n in instantiations() if n.startswith("gr_separable")]
    with tempfile.TemporaryDirectory() as tmp:
        unit = Path(tmp) / "separable_all.cu"
        unit.write_text(wrapper("separable.cu", names))
        command = [NVCC, f"-arch={arch}", *COMPILE_OPTIONS, "-Xptxas", "-v", "-cubin", f"-I{kernel_dir}", str(unit),
                   "-o", str(Path(tmp) / "separable.cubin")]
        result = subprocess.run(command, capture_output=True, text=True, timeout=NVCC_TIMEOUT_S)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stderr}"
    rows, current = [], None
    for line in result.stderr.splitlines():
        entry = _ENTRY.search(line)
        if entry:
            current = [entry.group(1), None, None]
            rows.append(current)
        elif current is not None and _FRAME.search(line):
            current[2] = tuple(int(v) for v in _FRAME.search(line).groups())
        elif current is not None and _USED.search(line):
            current[1] = int(_USED.search(line).group(1))
    return [tuple(r) for r in rows]


def test_separable_kernels_do_not_spill_on_sm_90():
    """ptxas's register counts per separable instantiation (printed; recorded in
    benchmarks/results/ptxas-registers.md): none spills or needs a stack frame."""
    usage = separable_register_usage(kernel_source_dir())
    assert len(usage) == len([n for n in instantiations() if n.startswith("gr_separable")])
    for name, registers, frame in sorted(usage, key=lambda row: -row[1]):
        print(f"{registers:4d} registers, frame/spills {frame}: {name}")
        assert registers is not None and frame == (0, 0, 0), (name, registers, frame)
