"""The documentation builds without a warning, and its examples run.

* ``python -m sphinx -W --keep-going -b html docs <tmp>``: the user guide, the API reference
  from the docstrings (numpydoc), the notebooks with their stored outputs (no kernel), the
  design notes and the benchmark tables; any warning fails the build.
* Every page's Python and shell blocks run top to bottom in an empty folder of their own
  (``tests/doc_blocks.py``), so each page works as written for a reader who starts there.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from doc_blocks import blocks, run_page

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
#: Pages with examples: every Markdown page of docs/ but the included benchmark tables.
PAGES = sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts and p.parent.name != "benchmarks")
PAGES_WITH_BLOCKS = [p for p in PAGES if blocks(p.read_text())]
PAGE_TIMEOUT_S = 300
BUILD_TIMEOUT_S = 300
#: Pages run side by side, each in its own interpreter and folder (most of their time is imports).
WORKERS = min(2, os.cpu_count() or 1)


def _name(page: Path) -> str:
    return str(page.relative_to(DOCS))


def test_sphinx_build_has_no_warnings(tmp_path):
    for module in ("sphinx", "numpydoc", "myst_parser", "myst_nb", "pydata_sphinx_theme"):
        pytest.importorskip(module, reason=f"{module} is not installed (pip install '.[docs]')")
    done = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                           "-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")],
                          cwd=tmp_path, capture_output=True, encoding="utf-8", errors="replace", timeout=BUILD_TIMEOUT_S)
    assert done.returncode == 0, f"sphinx failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    assert "WARNING" not in done.stderr, done.stderr[-5000:]
    html = tmp_path / "html"
    for page in ("index", "guide/start", "api/generated/gpuresample.Plan", "api/generated/gpuresample.resample",
                 "api/generated/gpuresample.transforms.Resampled", "notebooks/01_quickstart", "design",
                 "benchmarks/cpu"):
        assert (html / f"{page}.html").exists(), page
    plan = (html / "api/generated/gpuresample.Plan.html").read_text()
    assert "peak_bytes" in plan and "max_memory" in plan
    notebook = (html / "notebooks/01_quickstart.html").read_text()
    assert "gpuresample plan" in notebook  # the stored outputs are shown


def test_pages_have_examples():
    assert len(PAGES) >= 15
    with_python = [p for p in PAGES if any(kind == "python" for kind, _ in blocks(p.read_text()))]
    assert len(with_python) >= 10


@pytest.fixture(scope="module")
def page_results(tmp_path_factory):
    """``{page: (blocks, results)}``: every page's blocks, run in a folder of its own."""
    def run(page):
        folder = tmp_path_factory.mktemp(_name(page).replace("/", "-").removesuffix(".md"))
        return page, run_page(page.read_text(), folder, PAGE_TIMEOUT_S)
    with ThreadPoolExecutor(WORKERS) as pool:
        return dict(pool.map(run, PAGES_WITH_BLOCKS))


@pytest.mark.parametrize("page", PAGES_WITH_BLOCKS, ids=_name)
def test_page_blocks_run_in_order(page, page_results):
    found, results = page_results[page]
    errors = [f"block {i}:\n{found[i][1]}\n{r['error']}" for i, r in results.items() if "error" in r]
    assert not errors, f"{_name(page)}:\n" + "\n\n".join(errors)
    if all("skip" in r for r in results.values()) and any(kind == "python" for kind, _ in found):
        pytest.skip(f"{_name(page)}: every block skipped: {sorted({r['skip'] for r in results.values()})}")
