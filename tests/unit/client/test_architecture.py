"""The client package's boundaries (subpackages included): it imports only `protocol` of ours,
and only the command modules read the environment."""

from __future__ import annotations

import ast
from pathlib import Path

import client

PACKAGE = Path(client.__file__).parent
FORBIDDEN = {"router", "pyworker", "tgi_server", "tgi_serverless"}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def sources() -> list[Path]:
    paths = sorted(PACKAGE.rglob("*.py"))
    assert len(paths) > 5, f"no client sources found under {PACKAGE}"
    return paths


def test_client_imports_no_other_package_of_ours() -> None:
    offenders = {
        path.name: sorted(imported_packages(path) & FORBIDDEN)
        for path in sources()
        if imported_packages(path) & FORBIDDEN
    }
    assert offenders == {}


def test_only_the_command_reads_the_environment() -> None:
    readers = sorted(path.name for path in sources() if "environ" in path.read_text("utf-8"))
    assert readers == ["bench_command.py", "generate_command.py"]
