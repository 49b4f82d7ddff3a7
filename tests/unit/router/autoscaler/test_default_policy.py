from __future__ import annotations

from router.autoscaler.decision import ActionKind
from router.autoscaler.params import EndpointParams
from router.autoscaler.policies.default import DefaultPolicy
from tests.unit.router.autoscaler.fleet_model import PERF, ToyFleet

PARAMS = EndpointParams(
    assumed_max_perf=PERF, cold_workers=0, cold_mult=0.0, max_workers=30, inactivity_timeout=20.0
)


def run(policy: DefaultPolicy, fleet: ToyFleet, loads: list[float], start: float = 0.0) -> None:
    for i, load in enumerate(loads):
        now = start + i
        fleet.advance(now)
        fleet.apply(policy.decide(fleet.observe(now, load)), now)


def active(fleet: ToyFleet) -> int:
    return sum(1 for w in fleet.workers.values() if w.phase.active)


def test_a_burst_scales_up_at_once_and_panics() -> None:
    policy, fleet = DefaultPolicy(PARAMS), ToyFleet()
    run(policy, fleet, [90.0] * 40)
    assert active(fleet) == 1
    fleet.advance(40.0)
    decision = policy.decide(fleet.observe(40.0, 2000.0))
    decision = policy.decide(fleet.observe(41.0, 2000.0))
    assert decision.panic
    assert decision.desired_active >= 2000.0 / 6 / (PERF * 0.9)  # the panic window sees it


def test_no_scale_down_while_panicking() -> None:
    policy, fleet = DefaultPolicy(PARAMS), ToyFleet()
    run(policy, fleet, [90.0] * 30 + [3000.0] * 8)
    peak = active(fleet)
    last_burst = 40
    for t in range(38, last_burst + int(PARAMS.panic_window_s)):
        fleet.advance(float(t))
        decision = policy.decide(fleet.observe(float(t), 0.0 if t > last_burst else 3000.0))
        assert decision.panic
        assert not any(a.kind is ActionKind.DRAIN for a in decision.actions)
        fleet.apply(decision, float(t))
    assert active(fleet) >= peak


def test_after_a_burst_it_scales_down_only_after_the_down_delay() -> None:
    policy, fleet = DefaultPolicy(PARAMS), ToyFleet()
    run(policy, fleet, [90.0] * 30 + [3000.0] * 8 + [90.0] * 20)
    last_burst = 37
    drained_at = None
    for t in range(58, 200):
        fleet.advance(float(t))
        decision = policy.decide(fleet.observe(float(t), 90.0))
        fleet.apply(decision, float(t))
        if drained_at is None and any(a.kind is ActionKind.DRAIN for a in decision.actions):
            drained_at = t
    assert drained_at is not None
    # Panic ends a panic window after the burst; then the drop must last the down delay.
    assert drained_at >= last_burst + PARAMS.panic_window_s + PARAMS.down_delay_s
    assert active(fleet) == 1


def test_scale_down_waits_for_a_sustained_drop_then_drains() -> None:
    policy, fleet = DefaultPolicy(PARAMS), ToyFleet()
    run(policy, fleet, [450.0] * 60)
    assert active(fleet) == 5
    run(policy, fleet, [90.0] * 200, start=60.0)
    assert active(fleet) == 1


def test_a_request_waiting_with_no_worker_scales_from_zero() -> None:
    policy, fleet = DefaultPolicy(PARAMS), ToyFleet()
    decision = policy.decide(fleet.observe(0.0, 0.0, waiting=1))
    assert [a.kind for a in decision.actions] == [ActionKind.START]
    assert "panic" in decision.reason


def test_to_zero_only_after_the_inactivity_timeout() -> None:
    policy, fleet = DefaultPolicy(PARAMS), ToyFleet()
    run(policy, fleet, [90.0] * 40 + [0.0] * 15)
    assert active(fleet) == 1  # idle for less than inactivity_timeout: keep one
    run(policy, fleet, [0.0] * 40, start=55.0)
    assert active(fleet) == 0


def zero_at(loads: list[float]) -> int:
    policy, fleet = DefaultPolicy(PARAMS), ToyFleet()
    for t, load in enumerate(loads):
        fleet.advance(float(t))
        fleet.apply(policy.decide(fleet.observe(float(t), load)), float(t))
        if t > 40 and active(fleet) == 0:
            return t
    raise AssertionError("never went to zero")


def test_one_stray_request_does_not_restart_the_to_zero_countdown() -> None:
    quiet = [90.0] * 40 + [0.0] * 60
    stray = [90.0] * 40 + [0.0] * 10 + [50.0] + [0.0] * 49
    busy = [90.0] * 40 + [0.0] * 10 + [50.0] * 6 + [0.0] * 44
    assert zero_at(stray) == zero_at(quiet)  # one tick of activity is within the tolerance
    assert zero_at(busy) > zero_at(quiet) + 10  # a longer spell starts the countdown again


def test_the_floor_holds_with_no_traffic() -> None:
    params = PARAMS.model_copy(update={"min_workers": 2, "min_load": 250.0})
    policy, fleet = DefaultPolicy(params), ToyFleet()
    run(policy, fleet, [0.0] * 100)
    assert active(fleet) == 3  # min_load 250 tokens/s at 90 tokens/s each


def first_drain(params: EndpointParams) -> tuple[int, bool]:
    """When the first drain comes after load falls from five workers' worth to one's, and
    whether it goes into the cold pool."""
    policy, fleet = DefaultPolicy(params), ToyFleet()
    run(policy, fleet, [450.0] * 60)
    for t in range(60, 300):
        fleet.advance(float(t))
        decision = policy.decide(fleet.observe(float(t), 90.0))
        fleet.apply(decision, float(t))
        drains = [a for a in decision.actions if a.kind is ActionKind.DRAIN]
        if drains:
            return t, drains[0].to_cold
    raise AssertionError("never drained")


def test_draining_into_the_cold_pool_waits_the_cold_down_delay() -> None:
    with_room = PARAMS.model_copy(update={"cold_workers": 5, "inactivity_timeout": 1000.0})
    quick, to_cold = first_drain(with_room.model_copy(update={"cold_down_delay_s": 2.0}))
    slow, _ = first_drain(with_room.model_copy(update={"cold_down_delay_s": 12.0}))
    assert to_cold
    assert slow - quick == 10
    unchanged, _ = first_drain(with_room.model_copy(update={"down_delay_s": 60.0}))
    assert unchanged == quick  # down_delay_s is for removals for good


def test_removing_for_good_waits_the_down_delay() -> None:
    quick, to_cold = first_drain(PARAMS.model_copy(update={"down_delay_s": 2.0}))
    slow, _ = first_drain(PARAMS.model_copy(update={"down_delay_s": 12.0}))
    assert not to_cold  # no cold pool asked for
    assert slow - quick == 10
    unchanged, _ = first_drain(PARAMS.model_copy(update={"cold_down_delay_s": 60.0}))
    assert unchanged == first_drain(PARAMS)[0]  # cold_down_delay_s is for the cold pool
