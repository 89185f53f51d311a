"""The layer diagram of docs/design.md §3 is what the imports show: no upward import, no cycle
(between top-level modules, and between the modules of ``backends``, its device packages'
modules included), and the device packages ``backends/cpu``, ``backends/cuda`` and
``backends/cupyx`` never import one another (the modules below them never import them)."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gpuresample"
DESIGN = ROOT / "docs" / "design.md"

#: Packages whose modules are checked one by one (each in the package's layer): an import
#: cycle between two of their modules fails as one between top-level modules does.
SPLIT_PACKAGES = ("backends",)
#: The backends' device packages: above the shared modules of ``backends``, beside one another.
DEVICE_PACKAGES = ("cpu", "cuda", "cupyx")


@functools.cache
def declared_layers() -> dict:
    """``{top-level module: layer}`` from the table in design.md §3."""
    text = DESIGN.read_text()
    section = text[text.index("## 3. Layers"):text.index("## 4.")]
    layers = {}
    for number, modules in re.findall(r"^\| (\d+) \| ([^|]+) \|", section, re.MULTILINE):
        for name in re.findall(r"`([\w]+)`", modules):
            layers[name] = int(number)
    return layers


def _dotted(parts) -> str:
    return ".".join(parts)


def unit_of(path: Path) -> str:
    """The unit a file is checked as: a top-level module (or folder); inside ``backends`` its
    dotted path (``backends.base``, ``backends.cuda.launch``; a package's ``__init__`` is the
    package: ``backends``, ``backends.cpu``)."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[0] not in SPLIT_PACKAGES:
        return parts[0]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return _dotted(parts)


def _is_module(parts) -> bool:
    folder = PACKAGE.joinpath(*parts)
    return folder.with_suffix(".py").is_file() or (folder / "__init__.py").is_file()


def _unit_of_module(parts: list, names=()) -> set:
    """Units of the module ``gpuresample.<parts>`` (``names``: what ``from`` it imports)."""
    if not parts:  # "from gpuresample import x": x is a module or a name of __init__
        return {name if (PACKAGE / f"{name}.py").exists() else "__init__" for name in names} or {"__init__"}
    if parts[0] not in SPLIT_PACKAGES:
        return {parts[0]}
    if (PACKAGE.joinpath(*parts) / "__init__.py").is_file():
        # "from .backends.cpu import x": x is a module of that package or a name of its __init__
        return {_dotted(parts + [name]) if _is_module(parts + [name]) else _dotted(parts) for name in names} \
            or {_dotted(parts)}
    return {_dotted(parts)}


def imports_of(path: Path) -> set:
    """Package modules ``path`` imports (function-level imports included), as units."""
    tree = ast.parse(path.read_text())
    package = list(path.relative_to(PACKAGE).parts[:-1])  # [] for gpuresample/x.py, ["backends"] for backends/x.py
    found = set()
    for node in ast.walk(tree):
        names = ()
        if isinstance(node, ast.ImportFrom):
            names = [alias.name for alias in node.names]
            if node.level == 0:
                if node.module and node.module.split(".")[0] == "gpuresample":
                    found |= _unit_of_module(node.module.split(".")[1:], names)
                continue
            base = package[:len(package) - (node.level - 1)]
            found |= _unit_of_module(base + (node.module.split(".") if node.module else []), names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("gpuresample."):
                    found |= _unit_of_module(alias.name.split(".")[1:])
    return found


@functools.cache
def import_graph() -> dict:
    graph = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        unit = unit_of(path)
        graph.setdefault(unit, set()).update(imports_of(path) - {unit})
    return graph


def layer_of(unit: str, layers: dict) -> int:
    """A unit's layer: its own row, or its package's for a module of a split package."""
    return layers[unit.split(".")[0]]


def test_every_module_has_a_layer():
    layers = declared_layers()
    missing = {unit for unit in import_graph() if unit.split(".")[0] not in layers}
    assert not missing, missing


def test_every_backend_module_is_named_in_its_row():
    """The backends row of the table names every module of the package, its device packages'
    modules as ``cpu.backend`` (and no other)."""
    text = DESIGN.read_text()
    section = text[text.index("## 3. Layers"):text.index("## 4.")]
    row = next(line for line in section.splitlines() if line.startswith("| 4 |"))
    named = set(re.findall(r"`([\w.]+)`", row)) - {"backends", "gpuresample._core"}
    files = {unit_of(p).removeprefix("backends.") for p in (PACKAGE / "backends").rglob("*.py")} - {"backends"}
    assert named == files, (files - named, named - files)


def device_package(unit: str) -> str | None:
    """The device package a ``backends`` unit belongs to (``cpu``, ``cuda``, ``cupyx``), else None."""
    parts = unit.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "backends" and parts[1] in DEVICE_PACKAGES else None


@pytest.mark.parametrize("unit", sorted(u for u in import_graph() if u.startswith("backends")))
def test_device_packages_never_import_one_another(unit):
    """A device package imports the shared modules below it and its own modules; the shared
    modules import no device package (dispatch finds them by name, at run time)."""
    own = device_package(unit)
    others = {name for name in import_graph()[unit] if device_package(name) not in (None, own)}
    assert not others, f"{unit} imports {others}"


@pytest.mark.parametrize("unit", sorted(import_graph()))
def test_no_import_from_a_higher_layer(unit):
    layers = declared_layers()
    upward = {name for name in import_graph()[unit] if layer_of(name, layers) > layer_of(unit, layers)}
    assert not upward, f"{unit} (layer {layer_of(unit, layers)}) imports higher layers: {upward}"


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
    """The checker itself: relative imports from a backend file, between backend modules,
    into and out of device packages, and function-level ones are found."""
    cupyx = PACKAGE / "backends" / "cupyx" / "backend.py"
    assert {"_cupy", "tables", "backends.base", "backends._array"} <= imports_of(cupyx)
    assert "backends._staging" in imports_of(PACKAGE / "backends" / "base.py")  # inside a method
    assert "backends._spline_states" in imports_of(PACKAGE / "executor.py")
    assert "backends.base" in imports_of(PACKAGE / "backends" / "__init__.py")
    assert {"backends.cuda.compile", "backends.cuda.launch"} <= imports_of(PACKAGE / "backends" / "cuda" / "backend.py")
    assert "backends.cpu.backend" in imports_of(PACKAGE / "backends" / "cpu" / "__init__.py")
    assert unit_of(PACKAGE / "backends" / "cuda" / "__init__.py") == "backends.cuda"
    assert device_package("backends.cuda.launch") == "cuda" and device_package("backends._array") is None
    assert "executor" in imports_of(PACKAGE / "job.py")
