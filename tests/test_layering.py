"""The layering rules: ``protocol/`` is pure and never imports ``reference/``.

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
