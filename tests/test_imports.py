"""The import graph of the installed package, read from the sources with ``ast`` (nothing is imported).

Modules are every ``.py`` file under each folder that pyproject.toml's
``[tool.setuptools.package-dir]`` maps to a package name (``fastfnn/`` -> ``fastfnn``, ``kernels/``
-> ``fastfnn.kernels``, ``benchmarks/harness/`` -> ``fastfnn.bench``); a package's ``__init__.py`` is
the package itself.

What counts as an arrow from module A to module B, wherever it stands in A (module level, inside a
function or method, under ``if TYPE_CHECKING:``, in a ``try``):
- ``import B`` and ``import B as x``;
- ``from B import name`` (B itself) and ``from P import B`` when ``P.B`` is a module (the submodule);
  relative imports are resolved against A's package;
- ``importlib.import_module("B")`` with a literal name.
An import of a module not in the package points to its longest prefix that is (``fastfnn.x.y`` ->
``fastfnn.x``). Importing ``P.B`` runs ``P/__init__.py`` first, but that is no arrow to ``P``: what
ties A to another module is whose names A uses, and a package whose ``__init__`` re-exports its
submodules' names would otherwise make a circle with each of them.

The rules checked: the compute floor (``fastfnn.kernels``) has no arrow to any other ``fastfnn``
module; no module imports the top-level name ``kernels`` (an unrelated PyPI distribution); and the
graph has no circle (a strongly connected component of more than one module, or a module importing
itself).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from .conftest import REPO

#: The package whose compute floor must not import upwards.
COMPUTE_FLOOR = "fastfnn.kernels"


# ---------------------------------------------------------------------------------- the walker
def package_dirs(pyproject: Path) -> dict[str, Path]:
    """Package name -> source folder, from the ``[tool.setuptools.package-dir]`` table."""
    text = pyproject.read_text(encoding="utf-8")
    table = re.search(r"^\[tool\.setuptools\.package-dir\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
    if table is None:
        raise ValueError(f"{pyproject}: no [tool.setuptools.package-dir] table")
    pairs = re.findall(r'^\s*"([\w.]+)"\s*=\s*"([^"]+)"', table.group(1), re.M)
    return {name: pyproject.parent / folder for name, folder in pairs}


def module_files(roots: dict[str, Path]) -> dict[str, Path]:
    """Module name -> source file for every ``.py`` file under the package folders."""
    modules: dict[str, Path] = {}
    for package, folder in roots.items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            if "__pycache__" in parts:
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join((package, *parts))
            # A package folder shadows a module file of the same name, as it does for Python's finder.
            if name not in modules or path.name == "__init__.py":
                modules[name] = path
    return modules


def _known(name: str, modules) -> str | None:
    """``name`` if it is a module of the package, else its longest prefix that is, else None."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _imported(node: ast.AST, module: str, is_package: bool, modules) -> list[str]:
    """The absolute names one node imports: modules where they are modules, else what holds them."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        source = node.module or ""
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            source = ".".join(base[:len(base) - (node.level - 1)] + ([source] if source else []))
        # `from P import B` imports the submodule P.B when there is one, else a name held by P.
        return [f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                for alias in node.names]
    if (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"):
        return [node.args[0].value]
    return []


def import_graph(modules: dict[str, Path]) -> tuple[dict[str, set[str]], dict[tuple[str, str], str]]:
    """Arrows between the package's modules, and for each arrow where it is written (``file:line``).

    An import of the top-level name ``kernels`` is an arrow to ``"<top-level kernels>"``, so that the
    caller can report it.
    """
    graph: dict[str, set[str]] = {name: set() for name in modules}
    where: dict[tuple[str, str], str] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            for imported in _imported(node, name, path.name == "__init__.py", modules):
                if imported == "kernels" or imported.startswith("kernels."):
                    target = "<top-level kernels>"
                else:
                    target = _known(imported, modules)
                    # Outside the package; or a missing name under this module, which is no arrow.
                    if target is None or (target == name and imported != name):
                        continue
                if target not in graph[name]:
                    graph[name].add(target)
                    shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
                    where[(name, target)] = f"{shown}:{node.lineno}"
    return graph, where


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with a circle (Tarjan), each as a sorted list of modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(start: str) -> None:
        # Iterative depth-first search: a deep package must not hit the recursion limit.
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for succ in successors:
                if succ not in graph:
                    continue
                if succ not in index:
                    index[succ] = low[succ] = len(index)
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph[succ]))))
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in graph[node]:
                        found.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return found


def describe(component: list[str], graph, where) -> str:
    """The arrows inside one circle, each with the file and line that writes it."""
    members = set(component)
    arrows = [f"    {a} -> {b}  ({where[(a, b)]})" for a in component for b in sorted(graph[a])
              if b in members]
    return "circle among " + ", ".join(component) + ":\n" + "\n".join(arrows)


# ------------------------------------------------------------------------------ the real package
@pytest.fixture(scope="module")
def package():
    modules = module_files(package_dirs(REPO / "pyproject.toml"))
    graph, where = import_graph(modules)
    return modules, graph, where


def test_the_walk_sees_every_floor_and_their_arrows(package):
    modules, graph, _ = package
    for name in ("fastfnn", "fastfnn.model", "fastfnn.io.atomic", COMPUTE_FLOOR, f"{COMPUTE_FLOOR}.base",
                 "fastfnn.bench", "fastfnn.bench.command"):
        assert name in modules, f"{name} not found: the walk would check nothing there"
    assert "fastfnn.bench.workloads" in graph["fastfnn.bench.command"]
    assert "fastfnn.io.atomic" in graph["fastfnn.io.idx"]
    assert "fastfnn.bench" in graph["fastfnn.cli"]  # importlib.import_module("fastfnn.bench"), in a function


def test_compute_floor_never_imports_the_learning_floor(package):
    modules, graph, where = package
    upward = [f"{name} -> {target}  ({where[(name, target)]})"
              for name in sorted(modules) if name == COMPUTE_FLOOR or name.startswith(COMPUTE_FLOOR + ".")
              for target in sorted(graph[name])
              if target.startswith("fastfnn") and not (target == COMPUTE_FLOOR
                                                       or target.startswith(COMPUTE_FLOOR + "."))]
    assert not upward, "fastfnn.kernels imports the learning floor:\n" + "\n".join(upward)


def test_nothing_imports_the_top_level_name_kernels(package):
    _, graph, where = package
    wrong = [f"{name}  ({where[(name, target)]})" for name, targets in sorted(graph.items())
             for target in targets if target == "<top-level kernels>"]
    assert not wrong, ("these import `kernels` (an unrelated PyPI distribution); import "
                       "fastfnn.kernels or use a relative import:\n" + "\n".join(wrong))


def test_no_import_circle(package):
    _, graph, where = package
    found = circles(graph)
    assert not found, "\n".join(describe(c, graph, where) for c in found)


def test_every_package_folder_is_installed():
    """A package folder missing from ``[tool.setuptools] packages`` works in an editable install and is
    absent from the wheel; the walk above would check modules that users never get."""
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    packages = re.search(r"^packages\s*=\s*\[(.*?)\]", text, re.M | re.S).group(1)
    listed = set(re.findall(r'"([\w.]+)"', packages))
    found = {name for name, path in module_files(package_dirs(REPO / "pyproject.toml")).items()
             if path.name == "__init__.py"}
    assert found == listed, (f"packages in the source folders but not in pyproject.toml: "
                             f"{sorted(found - listed)}; listed but not found: {sorted(listed - found)}")


# ----------------------------------------------------------------------- the walker on small trees
def _tree(tmp_path, files: dict[str, str]) -> dict[str, Path]:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return module_files({"pkg": tmp_path / "pkg", "pkg.low": tmp_path / "low"})


def test_function_level_relative_and_dynamic_imports_are_arrows(tmp_path):
    modules = _tree(tmp_path, {
        "pkg/__init__.py": "from pkg.a import thing\n",
        "pkg/a.py": "def f():\n    from .b import g\n",
        "pkg/b.py": "import importlib\n\ndef g():\n    importlib.import_module('pkg.c')\n",
        "pkg/c.py": "from pkg import a\n",
        "low/__init__.py": "from . import base\n",
        "low/base.py": "import numpy\nfrom pkg.low import base as again\n",
    })
    graph, where = import_graph(modules)
    assert graph["pkg"] == {"pkg.a"}
    assert graph["pkg.a"] == {"pkg.b"} and where[("pkg.a", "pkg.b")].endswith("a.py:2")
    assert graph["pkg.b"] == {"pkg.c"}
    assert graph["pkg.c"] == {"pkg.a"}  # `from pkg import a` is the submodule, not the package
    assert graph["pkg.low"] == {"pkg.low.base"}
    assert graph["pkg.low.base"] == {"pkg.low.base"}
    assert sorted(circles(graph)) == [["pkg.a", "pkg.b", "pkg.c"], ["pkg.low.base"]]


def test_names_that_are_not_modules_point_to_their_module(tmp_path):
    modules = _tree(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg.b import helper, CONSTANT\nimport pkg.b.missing\nfrom pkg import b\n",
        "pkg/b.py": "import kernels\n",
    })
    graph, _ = import_graph(modules)
    assert graph["pkg.a"] == {"pkg.b"}
    assert graph["pkg.b"] == {"<top-level kernels>"}
    assert circles(graph) == []
