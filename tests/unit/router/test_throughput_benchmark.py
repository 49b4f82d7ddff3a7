"""`benchmarks/router_throughput.py` runs as a plain script from the repository root with the
venv the project is installed in, and leaves the importing process's `sys.path` alone."""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
SCRIPT = REPO_ROOT / "benchmarks" / "router_throughput.py"


def test_loading_the_benchmark_does_not_edit_sys_path() -> None:
    before = list(sys.path)
    namespace = runpy.run_path(str(SCRIPT), run_name="router_throughput")  # not __main__
    assert callable(namespace["main"])
    assert sys.path == before


def test_the_benchmark_runs_as_a_script_and_explains_its_flags() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "per second" in result.stdout
    for flag in ("--workers", "--duration", "--connections", "--rounds"):
        assert flag in result.stdout


def test_a_duration_wrk_cannot_measure_is_refused_before_anything_starts() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--duration", "0.5", "--workers", "1", "--rounds", "1"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "--duration" in result.stderr
    assert "whole seconds" in result.stderr
    assert "Traceback" not in result.stderr
