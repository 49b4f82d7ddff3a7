from __future__ import annotations

import random

import pytest

from common.trace import Trace
from protocol import WorkerState
from router.autoscaler.params import EndpointParams
from router.autoscaler.policies import make_policy
from router.simulator.engine import SimConfig, simulate
from router.simulator.fleet import FleetSpec
from router.simulator.routing import SimRouter
from router.simulator.synth import synthesise

PARAMS = EndpointParams(cold_workers=2, max_workers=8, max_queue_time=10.0)


def trace(shape: str) -> Trace:
    rows = synthesise(shape, seed=3)
    return Trace(shape, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])


def test_a_replay_serves_every_request_and_accounts_for_cost() -> None:
    result = simulate(trace("steady"), make_policy("default", PARAMS))
    assert result.served == result.requests > 1000
    assert 0.0 < result.slo_attainment <= 1.0
    assert result.worker_seconds > 0
    assert result.max_workers_seen <= PARAMS.max_workers
    assert result.p50_queue_time_s <= result.p99_queue_time_s <= result.p99_ttft_s
    assert set(result.to_json()) >= {
        "requests",
        "served",
        "slo_attainment",
        "p99_queue_time_s",
        "p99_ttft_s",
        "worker_seconds",
        "cold_starts",
    }


def test_a_replay_is_deterministic() -> None:
    one = simulate(trace("bursty"), make_policy("vast", PARAMS))
    two = simulate(trace("bursty"), make_policy("vast", PARAMS))
    assert one.to_json() == two.to_json()


def test_a_spike_from_zero_is_served_from_the_cold_pool() -> None:
    result = simulate(trace("spike"), make_policy("default", PARAMS))
    assert result.resumes > 0
    assert result.scale_up_lag_mean_s < 60.0


def test_failed_starts_are_replaced_and_never_exceed_max_workers() -> None:
    spec = FleetSpec(failure_rate=0.5)
    policy = make_policy("default", PARAMS)
    result = simulate(trace("bursty"), policy, SimConfig(fleet=spec, seed=5))
    assert result.failures > 0
    assert result.served == result.requests
    assert result.max_workers_seen <= PARAMS.max_workers


def test_the_router_picks_the_least_expected_wait_and_counts_the_ticket() -> None:
    router = SimRouter(random.Random(0))
    router.report("a", WorkerState.READY, 0.0, max_perf=100.0, in_flight=500.0)
    router.report("b", WorkerState.READY, 0.0, max_perf=100.0, in_flight=100.0)
    router.report("c", WorkerState.DRAINING, 0.0, max_perf=100.0, in_flight=0.0)
    router.reindex(0.0)
    picks = [router.route(100.0, 0.1) for _ in range(6)]
    ids = [p.id for p in picks if p]
    assert ids[:4] == ["b", "b", "b", "b"]  # until b expects as much as a
    assert sorted(ids[4:]) == ["a", "b"]  # then they tie, and take turns
    a, b = router.registry.get("a"), router.registry.get("b")
    assert a is not None
    assert b is not None
    assert a.expected_load == b.expected_load == pytest.approx(600.0)


def test_no_routable_worker_means_no_route() -> None:
    router = SimRouter(random.Random(0))
    router.report("a", WorkerState.LOADING, 0.0)
    router.reindex(0.0)
    assert router.route(10.0, 0.0) is None
