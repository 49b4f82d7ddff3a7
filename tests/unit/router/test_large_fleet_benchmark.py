"""`benchmarks/large_fleet.py` runs as a plain script from the repository root and prints its
figures for both fleets, with no error, on a small fleet."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
SCRIPT = REPO_ROOT / "benchmarks" / "large_fleet.py"


def test_a_small_run_prints_both_fleets_and_their_ratios() -> None:
    args = ["--workers", "40", "--baseline", "4", "--routes", "20", "--reports", "10"]
    args += ["--churn", "5"]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--rounds", "1"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for name in ("route p50", "route after change p50", "report p50", "memory per worker"):
        [row] = [line for line in lines if line.startswith(name + " ")]
        assert row.rstrip().endswith("x"), row
    assert "errors: 0 (4 workers), 0 (40 workers)" in result.stdout
