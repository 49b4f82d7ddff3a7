"""Every policy, replayed over observation sequences against a toy fleet: the bounds always
hold, constant load does not flap, and each baseline behaves as its source describes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.autoscaler.decision import ActionKind
from router.autoscaler.params import EndpointParams
from router.autoscaler.policies import PolicyHints, make_policy, policy_names
from router.autoscaler.policies.registry import UnknownPolicy
from router.autoscaler.policy import Policy
from tests.unit.router.autoscaler.fleet_model import PERF, ToyFleet

HINTS = PolicyHints(mean_request_tokens=50.0, worker_concurrency=4)


def replay(policy: Policy, loads: list[float], fleet: ToyFleet, floor: int = 0) -> list[int]:
    """Feed one load per second; return the worker total (every phase) after each tick, and
    check at every tick that the policy never wants, nor leaves, fewer active workers than
    `floor` (from the first tick on: what it asks for is under way at once)."""
    totals = []
    for t, load in enumerate(loads):
        now = float(t)
        fleet.advance(now)
        none_ready = not any(w.phase.value == "ready" for w in fleet.workers.values())
        waiting = 3 if load and none_ready else 0
        decision = policy.decide(fleet.observe(now, load, waiting=waiting))
        assert decision.desired_active >= floor, decision.summary()
        fleet.apply(decision, now)
        active = sum(1 for w in fleet.workers.values() if w.phase.active)
        assert active >= floor, (t, decision.summary())
        totals.append(len(fleet.workers))
    return totals


params_strategy = st.builds(
    EndpointParams,
    min_workers=st.integers(0, 3),
    min_load=st.sampled_from([0.0, 150.0]),
    cold_workers=st.integers(0, 3),
    max_workers=st.integers(4, 12),
    cold_mult=st.sampled_from([0.0, 1.0, 2.5]),
    inactivity_timeout=st.sampled_from([0.0, 5.0, 30.0]),
    assumed_max_perf=st.just(PERF),
)
loads_strategy = st.lists(st.sampled_from([0.0, 0.0, 50.0, 300.0, 2000.0]), min_size=1, max_size=8)


@settings(max_examples=60, deadline=None)
@given(params_strategy, loads_strategy, st.sampled_from(["default", "vast", "kpa", "skypilot"]))
def test_never_more_than_max_workers_never_fewer_than_the_minimum(
    params: EndpointParams, segments: list[float], name: str
) -> None:
    loads = [load for load in segments for _ in range(25)]
    fleet = ToyFleet()
    policy = make_policy(name, params, HINTS)
    per_worker = PERF * params.target_util
    floor = max(params.min_workers, -(-int(params.min_load) // int(per_worker)))
    totals = replay(policy, loads, fleet, floor=min(floor, params.max_workers))
    assert max(totals) <= params.max_workers
    ready = sum(1 for w in fleet.workers.values() if w.phase.value == "ready")
    assert ready >= min(floor, params.max_workers)


@settings(max_examples=20, deadline=None)
@given(st.sampled_from([50.0, 120.0, 400.0, 950.0]), st.sampled_from(policy_names()))
def test_constant_load_does_not_flap(load: float, name: str) -> None:
    params = EndpointParams(max_workers=20, cold_workers=2, assumed_max_perf=PERF)
    policy = make_policy(name, params, HINTS)
    fleet = ToyFleet()
    replay(policy, [load] * 120, fleet)  # settle
    changes = []
    for t in range(120, 600):
        fleet.advance(float(t))
        decision = policy.decide(fleet.observe(float(t), load))
        fleet.apply(decision, float(t))
        moves = {a.kind for a in decision.actions} - {ActionKind.START_COLD, ActionKind.DESTROY}
        if moves:
            changes.append((t, sorted(moves)))
    assert changes == []


def test_every_decision_says_why_and_on_what() -> None:
    policy = make_policy("default", EndpointParams(assumed_max_perf=PERF), HINTS)
    decision = policy.decide(ToyFleet().observe(0.0, 500.0, waiting=2))
    assert decision.reason
    assert {"stable_rate", "panic_rate", "backlog_tokens", "ready", "waiting_requests"} <= set(
        decision.inputs
    )
    assert decision.summary().startswith("[default] active->")


def test_an_unknown_policy_names_the_known_ones() -> None:
    with pytest.raises(UnknownPolicy, match="default, vast, kpa, skypilot"):
        make_policy("magic", EndpointParams())
