"""Fails when a setting or an implemented API operation is not documented."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from lambdad.config import Settings

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_setting_is_documented():
    text = (DOCS / "configuration.md").read_text()
    for field in dataclasses.fields(Settings):
        assert f"LAMBDAD_{field.name.upper()}" in text, field.name


def _implemented_operations() -> set[str]:
    """Operation names that the handler tables in lambdad/api map to a handler."""
    names: set[str] = set()
    for module in (DOCS.parent / "lambdad" / "api").glob("*.py"):
        names |= set(re.findall(r'^\s+"([A-Z][A-Za-z]+)": [a-z_]+,$', module.read_text(), re.M))
    return names


def test_every_implemented_operation_is_documented():
    operations = _implemented_operations()
    assert {"CreateFunction", "Invoke", "ListFunctions"} <= operations
    text = (DOCS / "compatibility.md").read_text()
    for op in operations:
        assert f"| {op} |" in text, op


def test_readme_links_resolve():
    readme = (DOCS.parent / "README.md").read_text()
    for part in readme.split("](docs/")[1:]:
        assert (DOCS / part.split(")")[0]).exists(), part.split(")")[0]
