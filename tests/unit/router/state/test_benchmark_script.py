"""`benchmarks/routers_on_redis.py` runs as a plain script and explains its flags."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[4] / "benchmarks" / "routers_on_redis.py"


def test_the_benchmark_explains_its_flags() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--help"],
        cwd=SCRIPT.parents[1],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for flag in ("--workers", "--duration", "--connections", "--rounds"):
        assert flag in result.stdout
