"""`benchmarks/router_throughput.py` runs as a plain script from the repository root with the
venv the project is installed in, and leaves the importing process's `sys.path` alone."""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
SCRIPT = REPO_ROOT / "benchmarks" / "router_throughput.py"


def run_script(*args: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
    """`python benchmarks/router_throughput.py *args` from the repository root, as users run it."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def test_loading_the_benchmark_does_not_edit_sys_path() -> None:
    before = list(sys.path)
    namespace = runpy.run_path(str(SCRIPT), run_name="router_throughput")  # not __main__
    assert callable(namespace["main"])
    assert sys.path == before


def test_the_benchmark_runs_as_a_script_and_explains_its_flags() -> None:
    result = run_script("--help", timeout_s=60)
    assert result.returncode == 0, result.stderr
    assert "per second" in result.stdout
    for flag in ("--workers", "--duration", "--connections", "--rounds"):
        assert flag in result.stdout


def test_a_duration_wrk_cannot_measure_is_refused_before_anything_starts() -> None:
    result = run_script("--duration", "0.5", "--workers", "1", "--rounds", "1", timeout_s=120)
    assert result.returncode == 2, result.stderr
    assert "--duration" in result.stderr
    assert "whole seconds" in result.stderr
    assert "Traceback" not in result.stderr
