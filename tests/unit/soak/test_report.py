"""The soak's table, its progress line and the capacity it reads from a sweep."""

from __future__ import annotations

import pytest

from soak.capacity import capacity
from soak.report import progress_line, verdict_table
from soak.verdict import Check, ProcessSample, SoakVerdict
from tests.unit.client.bench.documents import figures, stored


def verdict(*checks: Check) -> SoakVerdict:
    passed = all(check.passed for check in checks)
    return SoakVerdict(
        passed=passed, seconds=600, capacity_rps=20, rate_rps=16, requests=9600, checks=checks
    )


LOST = Check(check="requests lost", subject="all requests", value=0, limit=0, passed=True,
             detail="9600 sent")  # fmt: skip
RSS = Check(check="RSS growth", subject="router [7]", value=0.062, limit=0.05, passed=False,
            detail="100.0 -> 106.2 MiB (medians)")  # fmt: skip
FDS = Check(check="file descriptors", subject="router [7]", value=-2, limit=4, passed=True,
            detail="at rest 30 before, 28 after; 25 to 61 under load")  # fmt: skip
DRIFT = Check(check="p99 drift", subject="end-to-end latency", value=None, limit=0.1,
              passed=False, detail="not measured: 0 samples early, 3 at the end")  # fmt: skip


def test_the_table_has_a_row_per_check_and_says_which_failed() -> None:
    lines = verdict_table(verdict(LOST, RSS, FDS, DRIFT)).splitlines()
    assert lines[0].split()[:5] == ["check", "subject", "value", "limit", "result"]
    assert lines[1].split() == ["requests", "lost", "all", "requests", "0", "<=", "0", "pass",
                                "9600", "sent"]  # fmt: skip
    assert "+6.2%" in lines[2]
    assert "< 5%" in lines[2]
    assert "FAIL" in lines[2]
    assert "-2" in lines[3]
    assert "<= +4" in lines[3]
    assert "pass" in lines[3]
    assert " - " in lines[4]
    assert "FAIL" in lines[4]
    assert "not measured" in lines[4]
    assert lines[-1].startswith("soak verdict: FAIL (2 of 4 checks)")
    assert "16.00 req/s (capacity 20.00 req/s)" in lines[-1]
    # The columns line up: every row's result starts where the header's does.
    column = lines[0].index("result")
    assert all(line[column:].startswith(("pass", "FAIL", "result")) for line in lines[:-1])


def test_a_passing_verdict_says_pass_and_how_loaded_the_machine_was() -> None:
    loaded = verdict(LOST, FDS).model_copy(update={"machine_load": (2.04, 7.5)})
    lines = verdict_table(loaded).splitlines()
    assert lines[-2].startswith("soak verdict: PASS;")
    assert lines[-1] == "machine load average 2.0 early, 7.5 late (latency windows)"


def test_the_progress_line_shows_each_process() -> None:
    latest = {"router [7]": ProcessSample(60, 100 * 2**20, 31), "worker-1 backend [9]":
              ProcessSample(60, 512 * 2**20, 12)}  # fmt: skip
    line = progress_line(600, latest)
    assert line == (
        "soak 60/600 s  router [7] 100.0 MiB 31 fds  |  worker-1 backend [9] 512.0 MiB 12 fds"
    )


def test_capacity_is_the_best_throughput_of_a_step_that_kept_up() -> None:
    sweep = stored("sweep.json")
    assert sweep.sweep
    assert [bool(step.overloaded) for step in sweep.sweep] == [False, False, True]
    steps = [
        step.model_copy(update={"summary": figures(rps=rps)})
        for step, rps in zip(sweep.sweep, [3.0, 6.0, 11.5], strict=True)
    ]
    # the overloaded step completed more (a saturated batch), but a queue was building
    assert capacity(sweep.model_copy(update={"sweep": steps})) == 6.0


def test_a_refining_step_that_kept_up_raises_the_capacity() -> None:
    sweep = stored("sweep.json")
    assert sweep.sweep
    refined = sweep.sweep[1].model_copy(update={"step": 3, "summary": figures(rps=8.0)})
    steps = [
        step.model_copy(update={"summary": figures(rps=rps)})
        for step, rps in zip(sweep.sweep, [3.0, 6.0, 11.5], strict=True)
    ]
    assert capacity(sweep.model_copy(update={"sweep": [*steps, refined]})) == 8.0


def test_capacity_refuses_a_run_that_is_not_a_sweep() -> None:
    with pytest.raises(ValueError, match="no sweep"):
        capacity(stored("router-rate.json"))


def test_capacity_refuses_a_sweep_that_completed_nothing() -> None:
    sweep = stored("sweep.json")
    assert sweep.sweep
    steps = [step.model_copy(update={"summary": figures(rps=0.0)}) for step in sweep.sweep]
    with pytest.raises(ValueError, match="completed a request while it kept up"):
        capacity(sweep.model_copy(update={"sweep": steps}))
