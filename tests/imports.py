"""Which top-level packages a source file imports, for the tests of package boundaries."""

from __future__ import annotations

import ast
from pathlib import Path

OURS = frozenset(
    {
        "protocol",
        "common",
        "httpedge",
        "client",
        "router",
        "pyworker",
        "tgi_server",
        "tgi_serverless",
    }
)
"""Our top-level packages."""


def imported_packages(path: Path) -> set[str]:
    """The top-level names of every absolute import in the file (relative ones are its own)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names
