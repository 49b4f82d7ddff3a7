"""Each fuzz target, fuzzed for a few seconds in its own process (`python -m fuzz`): the short,
time-boxed run of `make test` (`make fuzz` runs them for minutes). A contract broken here
fails the test with libFuzzer's report; keep the input it wrote under `fuzz/regressions/`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fuzz.run import FUZZ_DIR, TARGETS

SECONDS = 5
ROOT = FUZZ_DIR.parent


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_a_short_fuzz_run_breaks_no_contract(name: str, tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    command = [sys.executable, "-m", "fuzz", name, f"--seconds={SECONDS}"]
    command += [f"--corpus={tmp_path / 'corpus'}", f"--artifacts={artifacts}"]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=SECONDS + 60, check=False
    )
    report = done.stdout + done.stderr
    found = sorted(path.name for path in artifacts.iterdir())
    assert not found, f"fuzzing {name} found {found}:\n{report[-4000:]}"
    assert done.returncode == 0, report[-4000:]
    assert "stat::number_of_executed_units" in report, report[-2000:]
