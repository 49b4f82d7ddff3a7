"""The stand-in `text-generation-launcher` (tests/bin) on PATH, for tests that start TGI."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

STAND_IN_BIN = Path(__file__).resolve().parent / "bin"


def path_with_stand_in() -> str:
    """PATH with the stand-in first, then this virtual environment's bin folder (its `python3`
    runs the stand-in; its `tgi-serverless` runs the templates' scripts)."""
    venv_bin = str(Path(sys.executable).parent)
    return os.pathsep.join([str(STAND_IN_BIN), venv_bin, os.environ.get("PATH", "")])


def read_report(path: Path) -> dict[str, Any]:
    """What the stand-in wrote to STAND_IN_REPORT: its arguments and HF_TOKEN's digest."""
    facts: dict[str, Any] = json.loads(path.read_text())
    return facts
