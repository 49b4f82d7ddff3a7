"""The client package's boundaries (subpackages included): of ours it imports only `protocol`
(wire contracts) and `common` (pure helpers), and only the command modules read the environment."""

from __future__ import annotations

from pathlib import Path

import client
from tests.imports import OURS, imported_packages

PACKAGE = Path(client.__file__).parent
ALLOWED = {"client", "protocol", "common"}


def sources() -> list[Path]:
    paths = sorted(PACKAGE.rglob("*.py"))
    assert len(paths) > 5, f"no client sources found under {PACKAGE}"
    return paths


def test_client_imports_only_protocol_and_common_of_ours() -> None:
    found = {str(path.relative_to(PACKAGE)): imported_packages(path) & OURS for path in sources()}
    offenders = {name: sorted(ours - ALLOWED) for name, ours in found.items() if ours - ALLOWED}
    assert offenders == {}
    assert any("common" in ours for ours in found.values())  # the rule sees the imports


def test_only_the_command_reads_the_environment() -> None:
    readers = sorted(path.name for path in sources() if "os.environ" in path.read_text("utf-8"))
    assert readers == ["bench_command.py", "generate_command.py"]
