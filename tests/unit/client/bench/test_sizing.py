"""`--processes auto`: how many client processes a load needs."""

from __future__ import annotations

import math

import pytest

from client.bench.arrivals import Phase
from client.bench.plan import LoadPlan
from client.bench.sizing import auto_processes, expected_events, mean_length
from client.bench.workload import LengthDist, RequestSpec, Workload

WORKLOAD = Workload(LengthDist("fixed", 8), LengthDist("uniform", 100, 300))


def test_mean_lengths() -> None:
    assert mean_length(LengthDist("fixed", 7)) == 7
    assert mean_length(LengthDist("uniform", 10, 30)) == 20
    assert mean_length(LengthDist("lognormal", 100, 1)) == pytest.approx(100 * math.exp(0.5))


def test_open_loops_expect_peak_rate_times_mean_output() -> None:
    plan = LoadPlan("open", (Phase(0, 10), Phase(30, 5), Phase(10, 5)))
    assert expected_events(plan, WORKLOAD) == 30 * 200


def test_datasets_use_their_own_lengths() -> None:
    specs = (RequestSpec("a", 1, 10), RequestSpec("b", 1, 30))
    workload = Workload(LengthDist("fixed", 1), LengthDist("fixed", 999), specs)
    assert expected_events(LoadPlan("open", (Phase(2, 1),)), workload) == 40


def test_closed_loops_assume_a_typical_stream_speed() -> None:
    assert expected_events(LoadPlan("closed", users=100, seconds=1), WORKLOAD) == 5000


@pytest.mark.parametrize(
    ("events", "cpus", "processes"), [(10, 16, 1), (10000, 16, 3), (10**6, 16, 15), (9000, 1, 1)]
)
def test_auto_processes_is_bounded_by_the_cpus(events: float, cpus: int, processes: int) -> None:
    assert auto_processes(events, cpus) == processes
