"""`common` is pure helpers: it imports no other package of ours and does no I/O."""

from __future__ import annotations

import re
from pathlib import Path

import common
from tests.imports import OURS, imported_packages

PACKAGE = Path(common.__file__).parent
IO_MODULES = {"aiohttp", "asyncio", "os", "shutil", "socket", "subprocess", "sys", "urllib"}
FORBIDDEN = (OURS - {"common"}) | IO_MODULES


def sources() -> list[Path]:
    paths = sorted(PACKAGE.rglob("*.py"))
    assert len(paths) >= 4, f"no common sources found under {PACKAGE}"
    return paths


def test_common_imports_no_other_package_of_ours_and_no_io_module() -> None:
    offenders = {path.name: sorted(imported_packages(path) & FORBIDDEN) for path in sources()}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_common_opens_no_file() -> None:
    calls = re.compile(r"\b(open|read_text|write_text|read_bytes|write_bytes)\(")
    assert [path.name for path in sources() if calls.search(path.read_text("utf-8"))] == []
