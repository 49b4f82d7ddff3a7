"""No decision undone by the next one: the default policy against the flap rule, with the clock
in the observations (`decide` is pure), on hand-made and on generated traces."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from router.autoscaler.decision import Action, ActionKind, Decision
from router.autoscaler.flaps import FlapCounter, count_flaps
from router.autoscaler.params import EndpointParams
from router.autoscaler.policies.default import DefaultPolicy
from tests.unit.router.autoscaler.fleet_model import PERF, ToyFleet

# `up --workers 0 --max-workers 2 --set inactivity_timeout=10`, as the policy sees it.
IDLE_10 = EndpointParams(max_workers=2, inactivity_timeout=10.0, assumed_max_perf=PERF)


def drive(
    policy: DefaultPolicy, fleet: ToyFleet, loads: list[float], start: float = 0.0
) -> list[Decision]:
    """Tick once a second over `loads` (tokens arriving each second); a request arriving with no
    worker ready waits at the router, as `/route/` holds it. The decisions, in order."""
    decisions = []
    for i, load in enumerate(loads):
        now = start + i
        fleet.advance(now)
        ready = any(w.phase.name == "READY" for w in fleet.workers.values())
        decision = policy.decide(fleet.observe(now, load, waiting=int(load > 0 and not ready)))
        fleet.apply(decision, now)
        decisions.append(decision)
    return decisions


def acts(decisions: list[Decision], *kinds: ActionKind) -> list[float]:
    return [d.now for d in decisions for a in d.actions if a.kind in kinds]


def parked(decisions: list[Decision]) -> list[str | None]:
    return [a.worker_id for d in decisions for a in d.actions if a.kind is ActionKind.DRAIN]


def test_one_request_then_silence_parks_each_worker_once() -> None:
    policy, fleet = DefaultPolicy(IDLE_10), ToyFleet()
    decisions = drive(policy, fleet, [50.0] + [0.0] * 60)
    assert count_flaps(decisions, IDLE_10) == []
    assert parked(decisions) == ["w1"]  # once
    assert acts(decisions, ActionKind.RESUME) == []  # and not resumed by the remembered load
    assert not any(w.phase.active for w in fleet.workers.values())


def test_a_request_after_the_park_resumes_one_worker_for_a_full_inactivity_timeout() -> None:
    policy, fleet = DefaultPolicy(IDLE_10), ToyFleet()
    drive(policy, fleet, [50.0] + [0.0] * 39)
    decisions = drive(policy, fleet, [50.0] + [0.0] * 59, start=40.0)
    assert count_flaps(decisions, IDLE_10) == []
    assert acts(decisions, ActionKind.RESUME) == [40.0]
    assert min(acts(decisions, ActionKind.DRAIN)) >= 41.0 + IDLE_10.inactivity_timeout
    # (the countdown to zero restarted at the resume)


def test_no_scale_up_within_the_cold_down_delay_and_a_tick_of_a_park() -> None:
    policy, fleet = DefaultPolicy(IDLE_10), ToyFleet()
    decisions = drive(policy, fleet, [50.0] + [0.0] * 11)
    assert decisions[-1].desired_active == 0  # to zero at t=11, the inactivity timeout after t=1
    assert ActionKind.DRAIN in {a.kind for a in decisions[-1].actions}
    decisions = drive(policy, fleet, [50.0] * 6, start=12.0)  # a request waits from t=12
    hold = IDLE_10.cold_down_delay_s + IDLE_10.tick_s
    assert "held: scaled down within cold_down_delay_s and a tick" in decisions[0].reason
    assert acts(decisions, ActionKind.RESUME)[0] == 11.0 + hold + 1  # the first tick past it


LOADS = st.sampled_from([0.0, 0.0, 0.0, 50.0, 90.0, 200.0, 450.0, 1500.0])


@st.composite
def traces(draw: st.DrawFn) -> list[float]:
    """Spells of a constant load, silences included, up to a few minutes in all."""
    spells = draw(st.lists(st.tuples(LOADS, st.integers(1, 40)), min_size=1, max_size=10))
    return [load for load, seconds in spells for _ in range(seconds)]


@settings(max_examples=60, deadline=None)
@given(
    trace=traces(),
    inactivity=st.sampled_from([0.0, 3.0, 10.0, 30.0]),
    cold_down=st.sampled_from([0.0, 2.0, 5.0]),
    cold_workers=st.integers(0, 3),
)
def test_no_flaps_on_generated_traces(
    trace: list[float], inactivity: float, cold_down: float, cold_workers: int
) -> None:
    params = EndpointParams(
        max_workers=8,
        cold_workers=cold_workers,
        inactivity_timeout=inactivity,
        cold_down_delay_s=cold_down,
        assumed_max_perf=PERF,
    )
    decisions = drive(DefaultPolicy(params), ToyFleet(), trace + [0.0] * 60)
    assert count_flaps(decisions, params) == []


def decided(now: float, *actions: Action) -> Decision:
    return Decision(now, "test", 0, 0, actions, "test")


def test_the_counter_names_a_park_undone_by_a_resume_and_a_resume_undone_by_a_park() -> None:
    counter = FlapCounter.for_params(EndpointParams(cold_down_delay_s=2.0, tick_s=1.0))
    counter.record(decided(10.0, Action(ActionKind.DRAIN, "w1", to_cold=True)))
    counter.record(decided(13.0, Action(ActionKind.RESUME, "w1")))  # 2 s + a tick: a flap
    counter.record(decided(14.0, Action(ActionKind.STOP_COLD, "w1")))  # a tick later: a flap
    counter.record(decided(20.0, Action(ActionKind.RESUME, "w1")))  # 6 s later: not one
    counter.record(decided(22.0, Action(ActionKind.DRAIN, "w1")))  # 2 s later: not one
    assert [str(f) for f in counter.flaps] == [
        "w1: drain, then resume 3 s later",
        "w1: resume, then stop_cold 1 s later",
    ]
