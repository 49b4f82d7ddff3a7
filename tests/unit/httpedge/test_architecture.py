"""`httpedge` is the aiohttp edge the servers share: of our packages it imports only `protocol`,
and only the servers (router, PyWorker, backend) import it."""

from __future__ import annotations

from pathlib import Path

import httpedge
from tests.imports import OURS, imported_packages

PACKAGE = Path(httpedge.__file__).parent
ROOT = PACKAGE.parent
NEVER_IMPORTING_IT = ("protocol", "common", "client")


def test_httpedge_imports_only_protocol_of_ours() -> None:
    found = set().union(*(imported_packages(path) for path in PACKAGE.rglob("*.py")))
    assert found & OURS <= {"protocol", "httpedge"}


def test_the_wire_the_helpers_and_the_sdk_never_import_it() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for package in NEVER_IMPORTING_IT
        for path in sorted((ROOT / package).rglob("*.py"))
        if "httpedge" in imported_packages(path)
    ]
    assert offenders == []
