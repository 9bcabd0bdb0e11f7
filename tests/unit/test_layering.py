"""The import graph points one way (issue 11): the storage and sandbox layers never import the services above
them (functions/, auth/, logs/, invoke/, api/), so cluster mode can put other implementations behind their
interfaces."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "lambdad"
UPPER = ("lambdad.functions", "lambdad.auth", "lambdad.logs", "lambdad.invoke", "lambdad.api", "lambdad.app")
SANDBOX_KNOWN: set[tuple[str, str]] = set()  # (module, what it imports): none left


def upward_imports(layer: str) -> set[tuple[str, str]]:
    found = set()
    for path in sorted((PACKAGE / layer).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                if name.startswith(UPPER):
                    found.add((path.name, name))
    return found


def test_the_store_imports_nothing_above_it() -> None:
    assert upward_imports("store") == set()


def test_the_sandbox_imports_nothing_above_it() -> None:
    assert upward_imports("sandbox") == SANDBOX_KNOWN
