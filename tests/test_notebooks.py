"""The notebooks in notebooks/ are documentation that runs (STYLE rule 11).

Every notebook is executed top to bottom in a fresh kernel of this interpreter; any cell that
raises fails the test. The stored copies must carry their outputs, so readers see real results,
and those outputs must be what the code prints today: every cell's text output (its stdout and
the text form of its results) is compared with the fresh run's. Only stderr (progress bars,
timings) is left out. The kernel runs with ``NOTEBOOK_THREADS`` CPU threads, as the stored
outputs were made, because per-thread scratch memory shows in the plans (peak memory, slabs).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402  (comes with nbclient)
from jupyter_client.manager import KernelManager  # noqa: E402

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXPECTED = {"01_quickstart.ipynb", "02_masks.ipynb", "03_large_volumes.ipynb", "04_deep_learning.ipynb",
            "05_onto_reference.ipynb", "06_images.ipynb"}
#: Seconds one cell may take: generous, because CI machines are small.
CELL_TIMEOUT_S = 600
#: The kernel the tests start: this interpreter, whatever kernels the machine has registered.
KERNEL_NAME = "gpuresample-tests"
#: CPU threads in the kernel: the plans' peak memory and slab counts depend on it.
NOTEBOOK_THREADS = 2


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory):
    """A kernel spec that runs ``sys.executable``, so notebooks see the environment under test."""
    root = tmp_path_factory.mktemp("kernels")
    spec = root / KERNEL_NAME
    spec.mkdir()
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "gpuresample tests", "language": "python",
        "env": {"GPURESAMPLE_NUM_THREADS": str(NOTEBOOK_THREADS)},
    }))
    return root


def test_all_notebooks_present():
    assert EXPECTED <= {p.name for p in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_with_outputs(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{path.name} has no code cells"
    counts = [c.execution_count for c in code]
    assert None not in counts, f"{path.name}: cells stored without running"
    assert counts == sorted(counts), f"{path.name}: not run top to bottom"
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{path.name}: stored with an error: {errors[0].get('evalue')}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_runs_top_to_bottom(path, kernel_dir):
    nb = nbformat.read(path, as_version=4)
    manager = KernelManager(kernel_name=KERNEL_NAME,
                            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernel_dir)]))
    client = nbclient.NotebookClient(nb, km=manager, timeout=CELL_TIMEOUT_S, kernel_name=KERNEL_NAME,
                                     resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    figures = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    stored = nbformat.read(path, as_version=4)
    stored_figures = sum("image/png" in o.get("data", {})
                         for c in stored.cells if c.cell_type == "code" for o in c.outputs)
    assert figures == stored_figures, f"{path.name}: {figures} figures now, {stored_figures} stored"
    code_now = [c for c in nb.cells if c.cell_type == "code"]
    code_stored = [c for c in stored.cells if c.cell_type == "code"]
    for number, (now, was) in enumerate(zip(code_now, code_stored), 1):
        assert text_outputs(now) == text_outputs(was), (
            f"{path.name}, code cell {number}: stored output differs from a fresh run; re-store the "
            f"notebooks (docs/notebooks/index.md)\nstored:\n{text_outputs(was)}\nnow:\n{text_outputs(now)}")


def text_outputs(cell) -> str:
    """A cell's stdout and the text form of its results, in order (stderr left out)."""
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream" and output.name == "stdout":
            parts.append(output.text)
        elif output.output_type in ("execute_result", "display_data"):
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "".join(parts)
