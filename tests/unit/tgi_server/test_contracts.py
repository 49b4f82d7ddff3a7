"""The engine and scheduler contracts import no torch, transformers or llguidance."""

from __future__ import annotations

import pytest

from tests.heavy_libraries import heavy_libraries_loaded_by

CONTRACTS = ("tgi_server.engine.base", "tgi_server.scheduler.base")


@pytest.mark.parametrize("module", CONTRACTS)
def test_a_contract_imports_no_heavy_library(module: str) -> None:
    assert heavy_libraries_loaded_by(f"import {module}") == []


def test_the_probe_sees_torch_where_a_module_imports_it() -> None:
    """The sequential scheduler runs the model: if the probe missed its torch, the tests above
    would pass whatever the contracts import."""
    assert "torch" in heavy_libraries_loaded_by("import tgi_server.scheduler.sequential")
