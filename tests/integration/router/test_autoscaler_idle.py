"""One request, then silence, with a short inactivity timeout (`tgi-serverless up --workers 0
--max-workers 2 --set inactivity_timeout=10`): the loop (the router's registry, the simulated
provider) and the simulator both park the worker once and never resume it for the load the
windows remember: no flaps, and the same decisions."""

from __future__ import annotations

from collections import Counter

from common.trace import Trace
from protocol import WorkerStatusReport
from router.autoscaler.decision import ActionKind, Decision
from router.autoscaler.demand import DemandSignal
from router.autoscaler.flaps import count_flaps
from router.autoscaler.loop import AutoscalerLoop
from router.autoscaler.observation import Observation
from router.autoscaler.params import EndpointParams
from router.autoscaler.policies import make_policy
from router.autoscaler.policy import Policy
from router.providers.simulated import SimulatedProvider
from router.routing.registry import WorkerRegistry
from router.simulator.engine import SimConfig, simulate
from router.simulator.fleet import FleetSpec
from tests.clock import FakeClock

PARAMS = EndpointParams(max_workers=2, inactivity_timeout=10.0)
REQUEST_TOKENS = 50.0
START_S, RESUME_S = 10.0, 2.0
SILENCE_S = 60


def kinds(decisions: list[Decision]) -> Counter[ActionKind]:
    return Counter(action.kind for decision in decisions for action in decision.actions)


def steps(decisions: list[Decision]) -> list[tuple[str, ...]]:
    """The decisions that acted, as the kinds of their actions, in order."""
    return [tuple(a.kind.value for a in d.actions) for d in decisions if d.changes]


async def loop_decisions() -> list[Decision]:
    clock = FakeClock()
    registry = WorkerRegistry(stale_after_s=20.0, settle_s=0.0)
    demand = DemandSignal()

    def report(status: WorkerStatusReport) -> None:
        registry.apply_report(status, clock.now)

    provider = SimulatedProvider(clock=clock, report=report, start_s=START_S, resume_s=RESUME_S)
    loop = AutoscalerLoop(make_policy("default", PARAMS), provider, registry, demand, clock=clock)
    await loop.tick()  # as `up` starts: the cold pool is asked for before any request
    demand.arrived(REQUEST_TOKENS)
    demand.waiting_started(REQUEST_TOKENS)
    waiting, served_until = True, 0.0
    for _ in range(SILENCE_S):
        clock.now += 1.0
        provider.step()
        if waiting and registry.routable("default", clock.now):
            record = registry.routable("default", clock.now)[0]
            demand.waiting_ended(REQUEST_TOKENS)
            provider.workers[record.id].in_flight = REQUEST_TOKENS  # served for two seconds
            waiting, served_until = False, clock.now + 2.0
        if not waiting and clock.now >= served_until:
            for worker in provider.workers.values():
                worker.in_flight = 0.0
        await loop.tick()
    assert not waiting, "the request was never served"
    return list(loop.decisions)


class Recorded:
    """A policy whose decisions are kept, for the simulator's side."""

    def __init__(self, policy: Policy) -> None:
        self.policy, self.name, self.params = policy, policy.name, policy.params
        self.decisions: list[Decision] = []

    def decide(self, obs: Observation) -> Decision:
        decision = self.policy.decide(obs)
        self.decisions.append(decision)
        return decision

    def at_rest(self) -> tuple[int, int]:
        return self.policy.at_rest()


def simulator_decisions() -> tuple[list[Decision], int]:
    trace = Trace("one-request", [0.5], [100], [int(REQUEST_TOKENS)])  # after the first tick
    policy = Recorded(make_policy("default", PARAMS))
    config = SimConfig(fleet=FleetSpec(start_s=START_S, resume_s=RESUME_S), until_s=SILENCE_S)
    result = simulate(trace, policy, config)
    return policy.decisions, result.flaps


async def test_the_loop_parks_an_idle_worker_once_and_does_not_resume_it() -> None:
    decisions = await loop_decisions()
    assert count_flaps(decisions, PARAMS) == []
    acted = kinds(decisions)
    assert acted[ActionKind.START] == 1
    assert acted[ActionKind.DRAIN] == 1  # to zero, once
    assert acted[ActionKind.RESUME] == 0


async def test_the_loop_and_the_simulator_agree_on_the_idle_trace() -> None:
    loop = await loop_decisions()
    simulated, flaps = simulator_decisions()
    assert flaps == 0
    assert count_flaps(simulated, PARAMS) == []
    assert steps(loop) == steps(simulated)  # the same starts, parks and (no) resumes
    assert [d.desired_active for d in loop if d.changes][-1] == 0
    assert [d.desired_active for d in simulated if d.changes][-1] == 0
