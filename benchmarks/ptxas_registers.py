"""Registers per separable kernel instantiation, as ptxas reports them for one architecture.

    python benchmarks/ptxas_registers.py [--arch sm_90] [--kernels DIR] [--out FILE.md]

Compiles ``kernels/separable.cu`` (or the copy in ``--kernels``) with the backend's NVRTC
options and ``-Xptxas -v`` for every separable instantiation the backend can ask for, and
writes one table row per instantiation: registers, spill stores/loads, stack frame. Needs
nvcc on PATH; runs no kernel.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from gpuresample.backends.kernels import COMPILE_OPTIONS, kernel_source_dir  # noqa: E402
from test_kernels_nvcc import instantiations, wrapper  # noqa: E402

FUNCTION = re.compile(r"Compiling entry function '([^']+)' for '(sm_\d+)'")
USAGE = re.compile(r"Used (\d+) registers")
FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")


def demangled(names):
    tool = shutil.which("cu++filt") or shutil.which("c++filt")
    if tool is None:
        return list(names)
    result = subprocess.run([tool], input="\n".join(names), capture_output=True, text=True)
    return result.stdout.splitlines() if result.returncode == 0 else list(names)


def registers(kernel_dir: Path, arch: str) -> list:
    names = [n for n in instantiations() if n.startswith("gr_separable")]
    with tempfile.TemporaryDirectory() as tmp:
        unit = Path(tmp) / "separable_all.cu"
        unit.write_text(wrapper("separable.cu", names))
        command = ["nvcc", f"-arch={arch}", *COMPILE_OPTIONS, "-Xptxas", "-v", "-cubin", f"-I{kernel_dir}",
                   str(unit), "-o", str(Path(tmp) / "out.cubin")]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(result.stderr)
    rows, current = [], None
    for line in result.stderr.splitlines():
        match = FUNCTION.search(line)
        if match:
            current = [match.group(1), None, None]
            rows.append(current)
            continue
        if current is None:
            continue
        frame = FRAME.search(line)
        if frame:
            current[2] = tuple(int(v) for v in frame.groups())
        usage = USAGE.search(line)
        if usage:
            current[1] = int(usage.group(1))
    pretty = demangled([r[0] for r in rows])
    return sorted((p, r[1], r[2]) for p, r in zip(pretty, rows))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="sm_90")
    parser.add_argument("--kernels", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if shutil.which("nvcc") is None:
        raise SystemExit("nvcc is not on PATH")
    rows = registers(args.kernels or kernel_source_dir(), args.arch)
    lines = [f"| separable instantiation ({args.arch}) | registers | stack / spill stores / spill loads (bytes) |",
             "|---|---|---|"]
    for name, regs, frame in rows:
        lines.append(f"| `{name}` | {regs} | {' / '.join(map(str, frame)) if frame else '-'} |")
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
