"""The README's examples run as written: every Python block and the command-line block.

Blocks run in order, each in a fresh interpreter, in one scratch folder (the file examples
write ``ct.nii.gz`` and ``organs.nii.gz`` that later ones read). A block that continues an
earlier one, or reads data the README leaves to the reader, gets a small setup first.
Blocks that need a package this machine lacks (MONAI, TorchIO, CuPy, dask-cuda) are
skipped with that reason.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
TEXT = README.read_text()
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", TEXT, re.S)

#: Setup for blocks that use names the README defines in prose or in an earlier block.
SETUP = {
    'masks={"Liver": liver}': PYTHON_BLOCKS[0],
    "# Memory reduction": """
import numpy as np
rng = np.random.default_rng(0)
spacing = (2.0, 2.0, 4.0)                       # 64 x 64 x 32 voxels: a 128 mm cube
ct = image = scan_a = rng.normal(size=(64, 64, 32)).astype(np.float32)
label = (ct > 1).astype(np.uint8)
spacing_a, spacing_b = spacing, (3.0, 1.0, 1.0)
scan_b = rng.normal(size=(40, 80, 80)).astype(np.float32)
""",
    'np.load("big.npy"': """
import numpy as np
np.save("big.npy", np.random.default_rng(0).normal(size=(40, 48, 56)).astype(np.float32))
""",
}

OPTIONAL = ("monai", "torchio", "cupy", "dask_cuda", "nibabel", "SimpleITK", "torch", "dask", "zarr")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("readme")


def _run(args, cwd, timeout=600):
    return subprocess.run(args, cwd=cwd, capture_output=True, encoding="utf-8", errors="replace", timeout=timeout)


def _missing(code: str) -> str | None:
    for name in OPTIONAL:
        if re.search(rf"^\s*(import|from)\s+{name}\b", code, re.M) and importlib.util.find_spec(name) is None:
            return name
    return None


def test_readme_has_examples():
    assert len(PYTHON_BLOCKS) >= 10
    assert "gpuresample --spacing 1 1 1" in TEXT.split("## In one minute")[0]


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_python_block(index, folder):
    code = PYTHON_BLOCKS[index]
    setup = "".join(prelude for marker, prelude in SETUP.items() if marker in code)
    missing = _missing(setup + code)
    if missing:
        pytest.skip(f"README block {index} needs {missing}, not installed here")
    done = _run([sys.executable, "-c", setup + "\n" + code], folder)
    assert done.returncode == 0, f"README block {index}:\n{code}\n{done.stderr[-3000:]}"


def test_command_line_block(folder):
    """The command-line examples, after the file examples wrote their inputs."""
    block = re.search(r"## Command line\n\n```bash\n(.*?)```", TEXT, re.S).group(1)
    if importlib.util.find_spec("nibabel") is None:
        pytest.skip("the command-line examples read NIfTI files: nibabel is not installed")
    if not (folder / "ct.nii.gz").exists():
        done = _run([sys.executable, "-c", next(b for b in PYTHON_BLOCKS if "io.save(" in b)], folder)
        assert done.returncode == 0, done.stderr[-3000:]
    command = Path(sys.executable).with_name("gpuresample")
    for line in block.strip().splitlines():
        args = shlex.split(line, comments=True)
        assert args[0] == "gpuresample", line
        done = _run([str(command), *args[1:], "--force"], folder)
        assert done.returncode == 0, f"{line}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        assert "gpuresample plan" in done.stdout, line
