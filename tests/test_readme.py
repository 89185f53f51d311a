"""The README's examples run as written, top to bottom, in one empty folder.

Every Python and shell block runs **in order**: the Python blocks in one namespace of one
fresh interpreter, the shell blocks (``gpuresample`` commands) in the same folder between
them, as a reader pasting them one after the other would. A block may use what earlier blocks
defined and the files they wrote, but nothing the test adds. Install, test-suite and docs-build
commands are shown but not run (``tests/doc_blocks.py`` says which and why); blocks that import
a package this machine lacks are skipped, naming it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from doc_blocks import blocks, run_page, shell_commands

README = Path(__file__).resolve().parents[1] / "README.md"
TEXT = README.read_text()
BLOCKS = blocks(TEXT)
#: Seconds for all blocks together.
ALL_BLOCKS_TIMEOUT_S = 600
#: The README's length limit: the rest lives in docs/.
MAX_LINES = 250


@pytest.fixture(scope="module")
def block_results(tmp_path_factory):
    """``{index: result}`` from running every block, in order, in one empty folder."""
    return run_page(TEXT, tmp_path_factory.mktemp("readme"), ALL_BLOCKS_TIMEOUT_S)[1]


def test_readme_opens_with_the_two_commands():
    """The first two blocks: install and run the main job; install and run the tests as CI does."""
    assert BLOCKS[0] == ("bash", "python3 -m venv .venv && . .venv/bin/activate && pip install . && "
                                 "gpuresample --spacing 1 1 1\n")
    assert BLOCKS[1] == ("bash", 'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[test]" && '
                                 "python -m pytest -q -n auto\n")
    ci = (README.parent / ".ci" / "run").read_text()
    assert 'python -m pip install -e ".[test]"' in ci and "python -m pytest -q -n auto\n" in ci
    assert shell_commands(BLOCKS[0][1])[0] == ["gpuresample --spacing 1 1 1"]


def test_readme_is_short_and_installs_from_the_checkout():
    assert len(TEXT.splitlines()) <= MAX_LINES
    assert len([b for b in BLOCKS if b[0] == "python"]) >= 5
    assert '"gpuresample[' not in TEXT and "'gpuresample[" not in TEXT  # not on a package index
    for page in ("docs/guide/start.md", "docs/api/index.md"):
        assert f"({page})" in TEXT, f"the README links {page}"
        assert (README.parent / page).exists()


def test_readme_links_resolve():
    """Every relative link of the README names a file of the repository (the docs' sources)."""
    links = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", TEXT)
    assert len(links) >= 15
    missing = [link for link in links if not (README.parent / link).exists()]
    assert not missing, missing


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_block(index, block_results):
    result = block_results[index]
    if "skip" in result:
        pytest.skip(f"README block {index}: {result['skip']}")
    assert "error" not in result, f"README block {index}:\n{BLOCKS[index][1]}\n{result.get('error')}"
