"""Registers per separable kernel instantiation, as ptxas reports them for one architecture.

    python benchmarks/ptxas_registers.py [--arch sm_90] [--kernels DIR] [--out FILE.md]

Compiles ``kernels/separable.cu`` (or the copy in ``--kernels``) with the backend's NVRTC
options and ``-Xptxas -v`` for every separable instantiation the backend can ask for, and
writes one table row per instantiation: registers, spill stores/loads, stack frame. Needs
nvcc on PATH; runs no kernel.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_kernels_nvcc import separable_register_usage

from gpuresample.backends.cuda import kernel_source_dir


def demangled(names):
    tool = shutil.which("cu++filt") or shutil.which("c++filt")
    if tool is None:
        return list(names)
    result = subprocess.run([tool], input="\n".join(names), capture_output=True, text=True)
    return result.stdout.splitlines() if result.returncode == 0 else list(names)


def registers(kernel_dir: Path, arch: str) -> list:
    rows = separable_register_usage(kernel_dir, arch)
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
