"""Sphinx configuration of the gpuresample documentation.

Build it from the repository root (``pip install ".[docs]"`` first)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# An installed gpuresample wins; a checkout without one documents its own sources.
try:
    import gpuresample  # noqa: F401
except ImportError:
    sys.path.insert(0, str(ROOT))
    import gpuresample  # noqa: F401

project = "gpuresample"
author = "the gpuresample developers"
copyright = "the gpuresample developers"
release = gpuresample.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_nb",  # Markdown pages (myst-parser) and the notebooks
]

root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "api/generated/*.rst.txt", "**.ipynb_checkpoints"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}

# Markdown: anchors for headings down to ###, so pages link to sections as [text](page.md#section).
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "dollarmath"]

# The notebooks keep their outputs (tests/test_notebooks.py checks them against a fresh run), so
# the docs show the stored outputs and the build needs no kernel.
nb_execution_mode = "off"
nb_merge_streams = True

# API reference from the docstrings (numpydoc style).
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": True, "inherited-members": False, "show-inheritance": False}
autodoc_typehints = "none"
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set = set()

html_theme = "pydata_sphinx_theme"
html_title = f"gpuresample {release}"
html_theme_options = {
    "navigation_depth": 3,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_static_path: list = []
