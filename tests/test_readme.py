"""The README's examples run as written: every Python block and the command-line block.

All Python blocks run **in order, in one namespace**, in one fresh interpreter whose working
folder is a scratch folder — as a reader pasting them one after the other into one session
would. A block may use what earlier blocks defined (and files they wrote), but nothing the
test adds: there is no setup code, so a snippet that uses an undefined name fails here.
The only blocks not run are those that import a package this machine lacks (CuPy,
dask-cuda, ...); they are reported as skipped, naming the package.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
TEXT = README.read_text()
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", TEXT, re.S)
#: Seconds for all blocks together (a 120 x 512 x 512 example, a Dask cluster, MONAI, TorchIO).
ALL_BLOCKS_TIMEOUT_S = 1200

#: Runs the blocks given as a JSON list in one namespace; one JSON line per block.
DRIVER = r'''
import contextlib, importlib.util, io, json, re, sys, traceback

def missing(code):
    for name in re.findall(r"^\s*(?:import|from)\s+([A-Za-z_]\w*)", code, re.M):
        if importlib.util.find_spec(name) is None:
            return name
    return None

if __name__ == "__main__":          # worker processes (Dask's spawn) import this file again
    blocks = json.load(open(sys.argv[1]))
    namespace = {"__name__": "__main__"}
    for index, code in enumerate(blocks):
        absent = missing(code)
        if absent:
            print(json.dumps({"index": index, "skip": absent}), flush=True)
            continue
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(code, f"README block {index}", "exec"), namespace)
        except BaseException:
            print(json.dumps({"index": index, "error": traceback.format_exc()[-3000:]}), flush=True)
        else:
            print(json.dumps({"index": index, "ok": True}), flush=True)
'''


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("readme")


@pytest.fixture(scope="module")
def block_results(folder):
    """``{index: result}`` from running every Python block, in order, in one namespace."""
    (folder / "blocks.json").write_text(json.dumps(PYTHON_BLOCKS))
    (folder / "run_readme_blocks.py").write_text(DRIVER)
    done = _run([sys.executable, "run_readme_blocks.py", "blocks.json"], folder, timeout=ALL_BLOCKS_TIMEOUT_S)
    results = {}
    for line in done.stdout.splitlines():
        if line.startswith('{"index"'):
            result = json.loads(line)
            results[result["index"]] = result
    assert len(results) == len(PYTHON_BLOCKS), f"the driver stopped early:\n{done.stderr[-3000:]}"
    return results


def _run(args, cwd, timeout=600):
    return subprocess.run(args, cwd=cwd, capture_output=True, encoding="utf-8", errors="replace", timeout=timeout)


def test_readme_has_examples():
    assert len(PYTHON_BLOCKS) >= 10
    assert "gpuresample --spacing 1 1 1" in TEXT.split("## In one minute")[0]


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_python_block(index, block_results):
    result = block_results[index]
    if "skip" in result:
        pytest.skip(f"README block {index} imports {result['skip']}, not installed here")
    assert "error" not in result, f"README block {index}:\n{PYTHON_BLOCKS[index]}\n{result.get('error')}"


def test_command_line_block(folder, block_results):
    """The command-line examples, in the folder where the Python blocks wrote their files."""
    block = re.search(r"## Command line\n\n```bash\n(.*?)```", TEXT, re.S).group(1)
    if importlib.util.find_spec("nibabel") is None:
        pytest.skip("the command-line examples read NIfTI files: nibabel is not installed")
    assert (folder / "ct.nii.gz").exists(), "the file examples did not write ct.nii.gz"
    command = Path(sys.executable).with_name("gpuresample")
    for line in block.strip().splitlines():
        args = shlex.split(line, comments=True)
        assert args[0] == "gpuresample", line
        done = _run([str(command), *args[1:], "--force"], folder)
        assert done.returncode == 0, f"{line}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        assert "gpuresample plan" in done.stdout, line
