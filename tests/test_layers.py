"""The layering of byoc's modules (docs/architecture.md): which layer may import which, what the pure
core may not import, and no import circles, counting every import: at module level, inside
functions and under TYPE_CHECKING. It reads the sources with ``ast``; nothing is imported.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parent.parent

#: The layers, top to bottom. A module may import modules of its own layer and of any layer below
#: it, never above. A pattern is a module (``byoc.engine``) or a package and all under it
#: (``byoc.cli.*``); the longest matching pattern decides, so ``byoc.state.model`` is in "data".
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # the terminal, and the scripts' entry points (nothing imports them)
    ("cli", ("byoc.cli.*", "byoc.__main__", "byoc.docgen")),
    # the Python API: ``byoc.Cluster`` (the package ``byoc`` hands it out)
    ("api", ("byoc", "byoc.api", "byoc.fleet")),
    # the rotation Lambda's code (byoc.templates.rotation_lambda) runs in AWS Lambda: boto3, no byoc
    ("operations", ("byoc.operations.*", "byoc.templates.*")),
    ("engine", ("byoc.engine",)),
    # the engine's state-editing half: typed against its own EngineLike protocol, called by the engine
    ("toolbox", ("byoc.toolbox",)),
    ("executor", ("byoc.executor",)),
    ("planner", ("byoc.planner", "byoc.rolling", "byoc.protection", "byoc.render", "byoc.cost",
                 "byoc.iampolicy", "byoc.iamactions")),
    # the plan carries the drift report, so drift sits with it
    ("plan", ("byoc.plan", "byoc.planjson", "byoc.drift", "byoc.upgrade")),
    ("blueprint", ("byoc.blueprint.*", "byoc.userdata")),
    ("state", ("byoc.state.*",)),
    ("discovery", ("byoc.discover",)),
    ("resources", ("byoc.resources.*",)),
    # the AWS seam (context, errors, calls, tags); until it has its package it is part of
    # byoc/resources/base.py; the sandbox is the local AWS endpoint
    ("aws", ("byoc.aws.*", "byoc.sandbox")),
    # plain data and pure helpers the layers above share: the spec, the state document, the graph
    ("data", ("byoc.spec.*", "byoc.state.model", "byoc.graph", "byoc.outputs", "byoc.proton")),
    ("model", ("byoc.model",)),
    ("ground", ("byoc.errors", "byoc.version")),
)

#: The pure core: no I/O, so it may import neither boto3/botocore nor a layer that does I/O.
PURE = (
    "byoc.model", "byoc.spec.*", "byoc.state.model", "byoc.graph", "byoc.outputs", "byoc.proton",
    "byoc.blueprint.*", "byoc.userdata", "byoc.plan", "byoc.planjson", "byoc.drift", "byoc.upgrade",
    "byoc.planner",
    "byoc.rolling",
    "byoc.protection", "byoc.render", "byoc.cost", "byoc.errors", "byoc.version",
    "byoc.iampolicy", "byoc.iamactions",
)
IO_LAYERS = frozenset({"cli", "api", "operations", "engine", "toolbox", "executor", "state", "discovery",
                       "resources", "aws"})
IO_LIBRARIES = ("boto3", "botocore")

#: Imports that break a rule above, on purpose for now: (importer, imported) → why.
EXCEPTIONS: dict[tuple[str, str], str] = {
    # The ownership tag names (two string constants) the blueprint writes and discovery reads
    # live with the AWS seam, which does no I/O when imported. To go when they move to the ground.
    ("byoc.blueprint.base", "byoc.aws.tags"): "the tag names byoc:cluster and byoc:address",
}

@dataclass(frozen=True)
class Import:
    importer: str
    imported: str  # a byoc module, or the top-level name of another library
    line: int


def find_modules(root: Path) -> dict[str, tuple[Path, bool]]:
    """Every module of the package ``byoc`` under ``root``: dotted name → (file, is a package)."""
    found = {}
    for path in sorted((root / "byoc").rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if package else parts)] = (path, package)
    return found


def _targets(node: ast.Import | ast.ImportFrom, here: str, package: bool, known: set[str]) -> Iterator[str]:
    """What one import statement imports. ``from p import m`` names module ``p.m`` when it is one;
    a package's ``__init__`` that Python runs before any module inside it is not counted (a
    package re-exporting its modules would otherwise close a circle with each of them)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
        return
    base = node.module or ""
    if node.level:
        parts = here.split(".") if package else here.split(".")[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join(parts + ([node.module] if node.module else []))
    plain = False
    for alias in node.names:
        if f"{base}.{alias.name}" in known:
            yield f"{base}.{alias.name}"
        else:
            plain = True
    if plain:
        yield base


def find_imports(root: Path) -> list[Import]:
    """Every import of every byoc module, wherever it stands in the file."""
    modules = find_modules(root)
    known = set(modules)
    found = []
    for name, (path, package) in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _targets(node, name, package, known):
                    if target.split(".")[0] == "byoc":
                        while target not in known and "." in target:  # import byoc.x.y (a name in x)
                            target = target.rsplit(".", 1)[0]
                    else:
                        target = target.split(".")[0]
                    if target != name:
                        found.append(Import(name, target, node.lineno))
    return found


def _matches(module: str, pattern: str) -> bool:
    if pattern.endswith(".*"):
        return module == pattern[:-2] or module.startswith(pattern[:-1])
    return module == pattern


def layer_of(module: str) -> str | None:
    best: tuple[int, str] | None = None
    for layer, patterns in LAYERS:
        for pattern in patterns:
            if _matches(module, pattern) and (best is None or len(pattern) > best[0]):
                best = (len(pattern), layer)
    return best[1] if best else None


def _is_pure(module: str) -> bool:
    return any(_matches(module, p) for p in PURE)


def layering_problems(root: Path) -> list[str]:
    """One sentence per module in no layer and per import that breaks a rule."""
    rank = {layer: i for i, (layer, _) in enumerate(LAYERS)}
    problems = [f"{m} is in no layer: add it to LAYERS in tests/test_layers.py and docs/architecture.md"
                for m in find_modules(root) if layer_of(m) is None]
    for imp in find_imports(root):
        if (imp.importer, imp.imported) in EXCEPTIONS:
            continue
        where = f"{imp.importer} (line {imp.line}) imports {imp.imported}"
        src = layer_of(imp.importer)
        if imp.imported.startswith("byoc"):
            dst = layer_of(imp.imported)
            if src and dst and rank[dst] < rank[src]:
                problems.append(f"{where}: the {src} layer may not import the {dst} layer above it")
            elif _is_pure(imp.importer) and dst in IO_LAYERS:
                problems.append(f"{where}: the pure core may not import the {dst} layer (it does I/O)")
        elif _is_pure(imp.importer) and imp.imported in IO_LIBRARIES:
            problems.append(f"{where}: the pure core may not use {imp.imported}")
    return problems


def import_circles(root: Path) -> list[list[str]]:
    """One circle (a → b → … → a) per group of byoc modules that import each other."""
    graph = nx.DiGraph((i.importer, i.imported) for i in find_imports(root) if i.imported.startswith("byoc"))
    circles = []
    for group in sorted(map(sorted, nx.strongly_connected_components(graph))):
        if len(group) < 2:
            continue
        edges = nx.find_cycle(graph.subgraph(group))
        circles.append([a for a, _ in edges] + [edges[0][0]])
    return circles


# -- byoc itself --------------------------------------------------------------------------------


def test_every_import_keeps_to_the_layers() -> None:
    assert layering_problems(ROOT) == []


def test_no_import_circles() -> None:
    assert [" -> ".join(c) for c in import_circles(ROOT)] == []


def test_the_table_names_real_modules() -> None:
    """A pattern or an exception that matches nothing is a typo (the seam's byoc.aws may not exist yet)."""
    modules = find_modules(ROOT)
    for _, patterns in LAYERS:
        for pattern in patterns:
            assert pattern.startswith("byoc.aws") or any(_matches(m, pattern) for m in modules), pattern
    for importer, _ in EXCEPTIONS:
        assert importer in modules, importer


# -- the checker, on a tiny tree ------------------------------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in {"byoc/__init__.py": "", **files}.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


GOOD = {
    "byoc/model.py": "from byoc.errors import ByocError\n",
    "byoc/errors.py": "class ByocError(Exception): ...\n",
    "byoc/engine.py": "import byoc.model\nfrom byoc import model, errors\nimport boto3\n",
    "byoc/blueprint/__init__.py": "from byoc.blueprint.base import Builder\n",
    "byoc/blueprint/base.py": "from byoc.model import Resource\nclass Builder: ...\n",
    "byoc/blueprint/nodes.py": "from . import base\nfrom .base import Builder\n",
}


def test_the_checker_accepts_a_tree_that_keeps_the_rules(tmp_path: Path) -> None:
    root = _tree(tmp_path, GOOD)
    assert layering_problems(root) == []
    assert import_circles(root) == []
    assert {(i.importer, i.imported) for i in find_imports(root)} >= {
        ("byoc.engine", "byoc.model"), ("byoc.engine", "byoc.errors"), ("byoc.engine", "boto3"),
        ("byoc.blueprint.nodes", "byoc.blueprint.base"), ("byoc.blueprint", "byoc.blueprint.base"),
    }


@pytest.mark.parametrize(("files", "problem"), [
    # a lazy import of a higher layer
    ({"byoc/model.py": "def f():\n    from byoc.engine import Engine\n"},
     "byoc.model (line 2) imports byoc.engine: the model layer may not import the engine layer above it"),
    # an import for typing only counts too
    ({"byoc/blueprint/base.py": "import typing\nif typing.TYPE_CHECKING:\n    import byoc.engine\n"},
     "byoc.blueprint.base (line 3) imports byoc.engine: the blueprint layer may not import the engine "
     "layer above it"),
    # the pure core doing I/O
    ({"byoc/blueprint/nodes.py": "import boto3.session\n"},
     "byoc.blueprint.nodes (line 1) imports boto3: the pure core may not use boto3"),
    ({"byoc/blueprint/nodes.py": "from byoc.state import local\n", "byoc/state/__init__.py": "",
      "byoc/state/local.py": ""},
     "byoc.blueprint.nodes (line 1) imports byoc.state.local: the pure core may not import the state "
     "layer (it does I/O)"),
    # a module nobody placed
    ({"byoc/newthing.py": ""},
     "byoc.newthing is in no layer: add it to LAYERS in tests/test_layers.py and docs/architecture.md"),
])
def test_the_checker_finds_a_forbidden_import(tmp_path: Path, files: dict[str, str], problem: str) -> None:
    assert layering_problems(_tree(tmp_path, GOOD | files)) == [problem]


def test_the_checker_finds_a_circle_however_it_is_imported(tmp_path: Path) -> None:
    root = _tree(tmp_path, GOOD | {
        "byoc/blueprint/lb.py": "from byoc.blueprint.nodes import Node\n",
        "byoc/blueprint/nodes.py": "def f():\n    from byoc.blueprint import monitoring\n",
        "byoc/blueprint/monitoring.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                        "    from byoc.blueprint.lb import Balancer\n",
    })
    assert layering_problems(root) == []  # one layer: only the circle is wrong
    [circle] = import_circles(root)
    assert circle[0] == circle[-1]
    assert sorted(circle[:-1]) == ["byoc.blueprint.lb", "byoc.blueprint.monitoring", "byoc.blueprint.nodes"]


def test_the_checker_finds_circles_inside_a_package_and_through_its_init(tmp_path: Path) -> None:
    files = {"byoc/cli/__init__.py": "", "byoc/cli/app.py": "from byoc.cli import day2\n",
             "byoc/cli/day2.py": "from byoc.cli.app import app\n"}
    assert [sorted(c[:-1]) for c in import_circles(_tree(tmp_path / "cli", GOOD | files))] == [
        ["byoc.cli.app", "byoc.cli.day2"]]
    files = {"byoc/plan.py": "from byoc import __version__\n", "byoc/__init__.py": "import byoc.plan\n"}
    assert [c[:-1] for c in import_circles(_tree(tmp_path / "init", GOOD | files))] in (
        [["byoc", "byoc.plan"]], [["byoc.plan", "byoc"]])
