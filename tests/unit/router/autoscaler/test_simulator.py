from __future__ import annotations

import random

import pytest

from common.trace import Trace
from protocol import WorkerState
from router.autoscaler.decision import Action, ActionKind
from router.autoscaler.params import EndpointParams
from router.autoscaler.policies import make_policy
from router.simulator.billing import BillingSpec
from router.simulator.engine import SimConfig, simulate
from router.simulator.fleet import FleetSpec, VirtualFleet
from router.simulator.results import format_result
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
        "resumes",
        "flaps",
        "billed_seconds",
        "storage_seconds",
        "cost",
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


def burst_silence_one() -> Trace:
    """A minute at 8 requests/s, five minutes of silence, then one request."""
    arrivals = [i / 8 for i in range(480)] + [360.0]
    n = len(arrivals)
    return Trace("burst-silence-one", arrivals, [500] * n, [200] * n)


@pytest.mark.parametrize(
    ("inactivity_timeout", "resumed_for_the_request"),
    [(300.0, 0), (10.0, 1)],  # still up when it comes (300 s); parked and resumed once (10 s)
)
def test_an_idle_spell_after_a_burst_does_not_flap(
    inactivity_timeout: float, resumed_for_the_request: int
) -> None:
    policy = make_policy("default", EndpointParams(inactivity_timeout=inactivity_timeout))
    _, cold_at_rest = policy.at_rest()
    result = simulate(
        burst_silence_one(), policy, SimConfig(initial_cold=cold_at_rest, until_s=600)
    )
    assert result.flaps == 0
    # The burst resumes the cold pool kept at rest; the lone request at most one worker more.
    assert result.resumes == cold_at_rest + resumed_for_the_request
    assert "flaps 0" in format_result(result)


def test_the_fleet_bills_spells_from_the_call_and_storage_while_it_exists() -> None:
    fleet = VirtualFleet(FleetSpec(start_s=60.0, resume_s=5.0), random.Random(0))
    fleet.apply((Action(ActionKind.START),), 0.0)
    fleet.advance(60.0)  # loaded
    fleet.apply((Action(ActionKind.DRAIN, "sim-1", to_cold=True),), 100.0)
    fleet.advance(100.0)  # nothing in flight: parked at once
    fleet.apply((Action(ActionKind.RESUME, "sim-1"),), 200.0)
    fleet.advance(205.0)
    assert fleet.spells(300.0) == [100.0, 100.0]  # start to park; resume (its load time) to now
    assert fleet.billed_seconds(300.0) == 200.0
    assert fleet.stored_seconds(300.0) == 300.0  # parked or not, the disk is billed
    per_second = BillingSpec(compute_per_hour=3600.0, storage_per_hour=36.0)
    assert per_second.invoice(fleet.spells(300.0), 300.0).cost == 200.0 + 3.0
    minimum = BillingSpec(compute_per_hour=3600.0, storage_per_hour=0.0, min_billed_s=150.0)
    invoice = minimum.invoice(fleet.spells(300.0), 300.0)
    assert (invoice.spells, invoice.billed_s, invoice.cost) == (2, 300.0, 300.0)


def test_a_minimum_billing_period_makes_each_start_and_resume_cost_at_least_that() -> None:
    policy = make_policy("default", PARAMS)
    per_second = simulate(trace("bursty"), policy)
    policy = make_policy("default", PARAMS)
    at_rest = policy.at_rest()
    config = SimConfig(
        billing=BillingSpec(min_billed_s=600.0), initial_workers=at_rest[0], initial_cold=at_rest[1]
    )
    minimum = simulate(trace("bursty"), policy, config)
    assert minimum.worker_seconds == per_second.worker_seconds  # the fleet did the same
    assert minimum.billed_seconds >= 600.0 * (minimum.cold_starts + minimum.resumes)
    assert minimum.cost > per_second.cost
    assert per_second.billed_seconds == pytest.approx(per_second.worker_seconds)
