"""The layering rules: ``protocol/`` is pure and never imports ``reference/``;
``reference/`` lives in rooms whose imports flow one way, with no cycles.

Spec: spec/README.md (layering); ../ARCHITECTURE: every arrow points into protocol/.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL_FILES = sorted((ROOT / "protocol").glob("*.py"))

#: Modules that would give protocol/ I/O, clocks, global randomness or logging.
FORBIDDEN_MODULES = frozenset(
    {
        "os",
        "random",
        "time",
        "socket",
        "logging",
        "secrets",
        "subprocess",
        "sys",
        "datetime",
        "pathlib",
        "io",
        "urllib",
        "http",
        "asyncio",
        "threading",
        "multiprocessing",
        "shutil",
        "tempfile",
        "reference",
    }
)
FORBIDDEN_CALLS = frozenset({"print", "open", "input", "exec", "eval"})


def violations(source: str) -> list[str]:
    """Every layering rule that ``source`` breaks, as readable strings."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            if name.split(".")[0] in FORBIDDEN_MODULES:
                found.append(f"line {node.lineno}: imports {name}")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in FORBIDDEN_CALLS
        ):
            found.append(f"line {node.lineno}: calls {node.func.id}()")
        if isinstance(node, ast.Attribute) and node.attr == "random":
            base = node.value
            if isinstance(base, ast.Name) and base.id in {"np", "numpy"}:
                found.append(f"line {node.lineno}: uses {base.id}.random")
    return found


def test_protocol_has_modules() -> None:
    assert {p.name for p in PROTOCOL_FILES} >= {"errors.py", "field.py", "xof.py", "shamir.py"}


@pytest.mark.parametrize("path", PROTOCOL_FILES, ids=lambda p: p.name)
def test_protocol_module_is_pure(path: Path) -> None:
    assert violations(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import os", "imports os"),
        ("import os.path", "imports os.path"),
        ("from time import perf_counter", "imports time"),
        ("import random as r", "imports random"),
        ("from reference.cli import main", "imports reference.cli"),
        ("import logging", "imports logging"),
        ("import socket", "imports socket"),
        ("print('x')", "calls print()"),
        ("import numpy as np\nnp.random.default_rng()", "uses np.random"),
    ],
)
def test_layering_checker_catches_each_rule(source: str, expected: str) -> None:
    found = violations(source)
    assert any(expected in v for v in found), found


def test_layering_checker_allows_relative_and_pure_imports() -> None:
    assert violations("import hashlib\nimport numpy as np\nfrom protocol.field import Field") == []


# ------------------------------------------------------------------ reference/'s rooms

REFERENCE = ROOT / "reference"

#: The rooms of ``reference/`` and the rooms each may import (besides itself and
#: ``protocol``). Imports flow one way: the command line uses every room; the
#: oracle kit, the benchmarks, the learning job and the deployment run rounds
#: through the simulator (the evaluation also stamps its rows with the vectors'
#: format tag, from the oracle kit); the deployment runs the learning job's
#: rounds, and the benchmarks run a deployment; everything may use ``common``.
ROOM_IMPORTS: dict[str, frozenset[str]] = {
    "common": frozenset(),
    "accounting": frozenset(),
    "channels": frozenset({"common"}),
    "sim": frozenset({"common", "channels"}),
    "oracle": frozenset({"common", "channels", "sim"}),
    "bench": frozenset({"common", "accounting", "channels", "sim", "deploy"}),
    "learning": frozenset({"common", "channels", "sim", "oracle"}),
    "deploy": frozenset({"common", "channels", "sim", "learning"}),
    "cli": frozenset(
        {"common", "accounting", "channels", "sim", "oracle", "bench", "learning", "deploy"}
    ),
}


def module_name(path: Path) -> str:
    """``reference/sim/simulate.py`` -> ``reference.sim.simulate``."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, package: str) -> set[str]:
    """Every module ``source`` imports, lazily or not, with relative imports resolved."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            # ``from reference.oracle import vectors`` imports the module vectors.
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def reference_graph() -> dict[str, set[str]]:
    """Module -> the reference modules it imports (only those that exist)."""
    paths = sorted(REFERENCE.rglob("*.py"))
    names = {module_name(p) for p in paths}
    graph: dict[str, set[str]] = {}
    for path in paths:
        name = module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        imports = imported_modules(path.read_text(encoding="utf-8"), package)
        graph[name] = {m for m in imports if m in names and m != name}
    return graph


def room(module: str) -> str | None:
    """The room a ``reference`` module lives in, or None for ``reference`` itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def room_violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import between rooms that flows the wrong way, or into an unknown room."""
    found: list[str] = []
    for module, imports in sorted(graph.items()):
        mine = room(module)
        if mine is None:
            continue
        if mine not in ROOM_IMPORTS:
            found.append(f"{module}: room {mine!r} is not in ROOM_IMPORTS")
            continue
        for target in sorted(imports):
            theirs = room(target)
            if theirs is not None and theirs != mine and theirs not in ROOM_IMPORTS[mine]:
                found.append(f"{module} imports {target}: {mine} may not import {theirs}")
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Import cycles among modules (lazy imports included), each as a path."""
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                found.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    return found


def test_reference_is_in_rooms() -> None:
    top_level = {p.name for p in REFERENCE.glob("*.py")}
    assert top_level == {"__init__.py"}, "every module of reference/ lives in a room"
    present = {p.parent.name for p in REFERENCE.glob("*/__init__.py")}
    assert present <= set(ROOM_IMPORTS)
    assert {"cli", "sim", "oracle", "bench", "learning", "common"} <= present


def test_imports_between_rooms_flow_one_way() -> None:
    assert room_violations(reference_graph()) == []


def test_reference_has_no_import_cycles() -> None:
    assert cycles(reference_graph()) == []


def test_results_know_nothing_of_plots() -> None:
    graph = reference_graph()
    assert "reference.learning.plots" not in graph["reference.learning.job"]


def test_room_checker_catches_a_wrong_way_import_and_a_cycle() -> None:
    graph = {
        "reference.sim.simulate": {"reference.cli.main"},
        "reference.cli.main": {"reference.sim.simulate"},
        "reference.learning.job": {"reference.learning.plots"},
        "reference.learning.plots": {"reference.learning.job"},
        "reference.attic.old": set(),
    }
    problems = room_violations(graph)
    assert problems == [
        "reference.attic.old: room 'attic' is not in ROOM_IMPORTS",
        "reference.sim.simulate imports reference.cli.main: sim may not import cli",
    ]
    assert sorted(map(tuple, cycles(graph))) == [
        ("reference.cli.main", "reference.sim.simulate", "reference.cli.main"),
        ("reference.learning.job", "reference.learning.plots", "reference.learning.job"),
    ]


def test_import_reader_resolves_relative_and_from_imports() -> None:
    source = "from . import job\nfrom ..sim import simulate\nimport reference.oracle.vectors"
    found = imported_modules(source, "reference.learning")
    assert {"reference.learning.job", "reference.sim.simulate"} <= found
    assert "reference.oracle.vectors" in found
