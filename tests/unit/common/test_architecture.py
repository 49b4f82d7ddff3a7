"""`common` does no I/O: its callers read and write files (its imports are checked by
`lint-imports`, with the other import rules)."""

from __future__ import annotations

import re
from pathlib import Path

import common

PACKAGE = Path(common.__file__).parent


def sources() -> list[Path]:
    paths = sorted(PACKAGE.rglob("*.py"))
    assert len(paths) >= 4, f"no common sources found under {PACKAGE}"
    return paths


def test_common_opens_no_file() -> None:
    calls = re.compile(r"\b(open|read_text|write_text|read_bytes|write_bytes)\(")
    assert [path.name for path in sources() if calls.search(path.read_text("utf-8"))] == []
