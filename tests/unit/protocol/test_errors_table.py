"""docs/errors.md and the catalogue in `protocol.errors` list the same error types, with the
same statuses, so that neither can change without the other."""

from __future__ import annotations

import re
from pathlib import Path

from protocol.errors import ERROR_TYPES, ErrorKind

DOC = Path(__file__).resolve().parents[3] / "docs" / "errors.md"
SERVICES = {"router", "gateway", "PyWorker", "backend", "TGI"}


def table() -> dict[str, tuple[ErrorKind, set[str]]]:
    """Each row of the table: its type, the statuses and stream flag, and who emits it."""
    lines = [line for line in DOC.read_text("utf-8").splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header[:3] == ["`error_type`", "status", "emitted by"]
    rows: dict[str, tuple[ErrorKind, set[str]]] = {}
    for line in lines[2:]:
        name, status, emitted_by = (cell.strip() for cell in line.strip("|").split("|")[:3])
        error_type = name.strip("`")
        assert error_type not in rows, f"{error_type} is listed twice"
        statuses = tuple(int(number) for number in re.findall(r"\d{3}", status))
        kind = ErrorKind(statuses, in_stream="in stream" in status)
        rows[error_type] = (kind, {who.strip() for who in emitted_by.split(",")})
    return rows


def test_the_table_lists_every_type_of_the_catalogue_and_no_other() -> None:
    assert sorted(table()) == sorted(ERROR_TYPES)


def test_each_type_has_the_statuses_of_the_catalogue() -> None:
    documented = {error_type: kind for error_type, (kind, _) in table().items()}
    assert documented == {str(error_type): kind for error_type, kind in ERROR_TYPES.items()}


def test_each_type_names_who_emits_it() -> None:
    for error_type, (_, emitted_by) in table().items():
        assert emitted_by, error_type
        assert emitted_by <= SERVICES, error_type
