"""The layer diagram of docs/design.md §3 is what the imports show: no upward import, no cycle."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gpuresample"
DESIGN = ROOT / "docs" / "design.md"


def declared_layers() -> dict:
    """``{top-level module: layer}`` from the table in design.md §3."""
    text = DESIGN.read_text()
    section = text[text.index("## 3. Layers"):text.index("## 4.")]
    layers = {}
    for number, modules in re.findall(r"^\| (\d+) \| ([^|]+) \|", section, re.MULTILINE):
        for name in re.findall(r"`([\w]+)`", modules):
            layers[name] = int(number)
    return layers


def unit_of(path: Path) -> str:
    """The layer unit a file belongs to: a top-level module, or ``backends`` for its files."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def imports_of(path: Path) -> set:
    """Package modules ``path`` imports (function-level imports included), as layer units."""
    tree = ast.parse(path.read_text())
    depth = len(path.relative_to(PACKAGE).parts) - 1  # 0 for gpuresample/x.py, 1 for backends/x.py
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if node.module and node.module.startswith("gpuresample"):
                    parts = node.module.split(".")[1:]
                    found.add(parts[0] if parts else "__init__")
                continue
            base = list(path.relative_to(PACKAGE).parts[:-1])[:depth - (node.level - 1)] if node.level > 1 else \
                list(path.relative_to(PACKAGE).parts[:-1])
            target = base + (node.module.split(".") if node.module else [])
            if not target:  # "from . import x" at the package root: x is a module or a name of __init__
                for alias in node.names:
                    found.add(alias.name if (PACKAGE / f"{alias.name}.py").exists() else "__init__")
            else:
                found.add(target[0])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("gpuresample."):
                    found.add(alias.name.split(".")[1])
    return found


def import_graph() -> dict:
    graph = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        unit = unit_of(path)
        graph.setdefault(unit, set()).update(imports_of(path) - {unit})
    return graph


def test_every_module_has_a_layer():
    layers = declared_layers()
    assert set(import_graph()) <= set(layers), set(import_graph()) - set(layers)


@pytest.mark.parametrize("unit", sorted(import_graph()))
def test_no_import_from_a_higher_layer(unit):
    layers = declared_layers()
    upward = {name for name in import_graph()[unit] if layers[name] > layers[unit]}
    assert not upward, f"{unit} (layer {layers[unit]}) imports higher layers: {upward}"


def test_no_import_cycle():
    graph = import_graph()
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for child in graph.get(node, ()):
            if state.get(child) == "open":
                raise AssertionError("import cycle: " + " -> ".join(stack + [node, child]))
            if child not in state:
                visit(child, stack + [node])
        state[node] = "done"

    for node in graph:
        if node not in state:
            visit(node, [])


def test_the_checker_sees_function_level_and_relative_imports():
    """The checker itself: a function-level relative import from a backend file is found."""
    fake = PACKAGE / "backends" / "cupyx.py"
    assert "_cupy" in imports_of(fake) and "tables" in imports_of(fake)
    assert "executor" in imports_of(PACKAGE / "job.py")
