"""The engine and scheduler contracts import no torch, transformers or outlines-core.

Each module is imported in a fresh interpreter (this one has torch loaded already), which then
lists the heavy libraries it finds in `sys.modules`.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "outlines_core")
CONTRACTS = ("tgi_server.engine.base", "tgi_server.scheduler.base")

PROBE = """
import json, sys
import {module}
print(json.dumps(sorted(name for name in {heavy!r} if name in sys.modules)))
"""


def heavy_libraries_loaded_by(module: str) -> list[str]:
    """The heavy libraries a fresh interpreter has loaded after `import module`."""
    probe = PROBE.format(module=module, heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    loaded: list[str] = json.loads(done.stdout)
    return loaded


@pytest.mark.parametrize("module", CONTRACTS)
def test_a_contract_imports_no_heavy_library(module: str) -> None:
    assert heavy_libraries_loaded_by(module) == []


def test_the_probe_sees_torch_where_a_module_imports_it() -> None:
    """The sequential scheduler runs the model: if the probe missed its torch, the tests above
    would pass whatever the contracts import."""
    assert "torch" in heavy_libraries_loaded_by("tgi_server.scheduler.sequential")
