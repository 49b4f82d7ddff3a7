"""The autoscaler loop against the simulated provider and the router's real registry."""

from __future__ import annotations

import pytest

from protocol import WorkerStatusReport
from router.autoscaler.demand import DemandSignal
from router.autoscaler.loop import AutoscalerLoop
from router.autoscaler.params import EndpointParams
from router.autoscaler.policies import make_policy
from router.providers.base import ProviderError, ProviderState, ProviderWorker
from router.providers.simulated import SimulatedProvider
from router.routing.registry import WorkerRegistry
from tests.clock import FakeClock


class Harness:
    def __init__(self, params: EndpointParams, *, failure_rate: float = 0.0) -> None:
        self.clock = FakeClock()
        self.registry = WorkerRegistry(stale_after_s=20.0, settle_s=0.0)
        self.demand = DemandSignal()
        self.silent: set[str] = set()
        """Workers whose reports never reach the router (killed, stopped, cut off)."""
        self.provider = SimulatedProvider(
            clock=self.clock,
            report=self.report,
            start_s=10.0,
            resume_s=2.0,
            failure_rate=failure_rate,
        )
        policy = make_policy("default", params)
        self.loop = AutoscalerLoop(
            policy, self.provider, self.registry, self.demand, clock=self.clock, call_timeout_s=0.2
        )

    def report(self, report: WorkerStatusReport) -> None:
        if report.id not in self.silent:
            self.registry.apply_report(report, self.clock.now)

    async def run(self, seconds: int) -> None:
        for _ in range(seconds):
            self.clock.now += 1.0
            self.provider.step()
            await self.loop.tick()

    def states(self) -> dict[str, ProviderState]:
        return {w.id: w.state for w in self.provider.workers.values()}

    def routable(self) -> list[str]:
        return sorted(w.id for w in self.registry.routable("default", self.clock.now))


PARAMS = EndpointParams(
    cold_workers=0, cold_mult=0.0, max_workers=4, inactivity_timeout=5.0, assumed_max_perf=400.0
)


async def test_a_waiting_request_scales_from_zero() -> None:
    h = Harness(PARAMS)
    await h.run(3)
    assert h.states() == {}
    h.demand.arrived(100.0)
    h.demand.waiting_started(100.0)
    await h.run(1)
    assert h.loop.decisions[-1].panic
    assert h.loop.decisions[-1].inputs["waiting_requests"] == 1.0
    await h.run(12)
    assert h.routable() == ["sim-1"]
    await h.run(30)  # quiet ticks: the status still shows the last decisions that acted
    decisions = h.loop.status()["decisions"]
    assert isinstance(decisions, list)
    [latest] = decisions
    assert "start" in latest["summary"]
    assert "panic" in latest["summary"]
    metrics = h.loop.metrics.exposition().decode()
    assert 'tgis_autoscaler_workers{phase="ready"} 1.0' in metrics
    assert 'reason="panic: burst or backlog above capacity"' in metrics
    assert h.loop.status()["workers"] == {
        "loading": 0,
        "warming": 0,
        "resuming": 0,
        "ready": 1,
        "draining": 0,
        "cold": 0,
        "error": 0,
    }


async def test_the_floor_is_kept_and_a_dead_worker_is_replaced() -> None:
    h = Harness(PARAMS.model_copy(update={"min_workers": 2}))
    await h.run(12)
    assert h.routable() == ["sim-1", "sim-2"]
    h.provider.kill("sim-1")
    await h.run(14)
    assert set(h.states()) == {"sim-2", "sim-3"}
    assert h.routable() == ["sim-2", "sim-3"]


async def test_a_silent_worker_s_load_is_no_demand_once_it_is_stale() -> None:
    """A worker whose reports stop under load (its PyWorker killed): once it is stale, the loop
    counts none of its last reported load as in flight (before, it stayed until removal)."""
    h = Harness(PARAMS.model_copy(update={"min_workers": 1}))
    await h.run(12)
    assert h.routable() == ["sim-1"]
    h.provider.workers["sim-1"].in_flight = 300.0
    await h.run(1)
    assert h.loop.last_observation is not None
    assert h.loop.last_observation.in_flight_tokens() == 300.0
    h.silent.add("sim-1")
    await h.run(21)
    assert h.routable() == []
    assert h.loop.last_observation.in_flight_tokens() == 0.0


async def test_a_worker_that_never_serves_is_destroyed_after_the_ready_timeout() -> None:
    h = Harness(PARAMS.model_copy(update={"min_workers": 1, "ready_timeout_s": 30.0}))
    h.provider.start_s = 1e9  # never ready
    await h.run(29)
    assert list(h.states()) == ["sim-1"]
    await h.run(3)
    assert "sim-1" not in h.states()
    assert "sim-2" in h.states()


async def scaling_down_sim_2() -> Harness:
    """Two workers (at least one, a cold pool of two, a 30 s drain grace) brought up by demand,
    then demand for one: the less loaded, sim-2, is chosen to drain."""
    params = PARAMS.model_copy(update={"cold_workers": 2, "min_workers": 1, "drain_grace_s": 30.0})
    h = Harness(params)
    for _ in range(15):
        h.demand.arrived(600.0)  # two workers' worth
        await h.run(1)
    assert h.routable() == ["sim-1", "sim-2"]
    h.provider.workers["sim-1"].in_flight = 80.0
    h.provider.workers["sim-2"].in_flight = 50.0  # the least loaded goes first
    for _ in range(60):
        h.demand.arrived(100.0)
        await h.run(1)
        if h.registry.is_excluded("sim-2"):
            break
    return h


async def test_scale_down_drains_no_new_routes_then_stops_to_cold() -> None:
    h = await scaling_down_sim_2()
    assert h.routable() == ["sim-1"]  # no new routes while sim-2 finishes its work
    assert h.states()["sim-2"] is ProviderState.RUNNING
    h.provider.workers["sim-2"].in_flight = 0.0
    h.demand.arrived(100.0)
    await h.run(2)
    assert h.states()["sim-2"] is ProviderState.STOPPED  # into the cold pool
    calls = len(h.provider.calls)
    for _ in range(5):
        h.demand.arrived(3000.0)
        await h.run(1)
    assert "resume" in h.provider.calls[calls:]
    assert "sim-2" in h.routable()  # resumed, not recreated


async def test_a_failing_provider_is_retried_a_bounded_number_of_times() -> None:
    h = Harness(PARAMS.model_copy(update={"min_workers": 1}))
    h.provider.fail_calls = 10**6
    for _ in range(10):
        h.clock.now += 1.0
        with pytest.raises(ProviderError):
            await h.loop.tick()
    assert len(h.provider.calls) == 20  # list() twice per tick, nothing created
    assert h.states() == {}


async def test_starts_back_off_after_repeated_failures() -> None:
    h = Harness(PARAMS.model_copy(update={"min_workers": 3}))
    attempts = []

    async def failing_start() -> ProviderWorker:
        attempts.append(h.clock.now)
        raise ProviderError("no offers")

    h.provider.start = failing_start  # type: ignore[method-assign]
    await h.run(40)
    assert "no offers" in h.loop.error
    assert h.loop.failures >= 3
    assert h.loop.status()["error"] == h.loop.error
    metrics = h.loop.metrics.exposition().decode()
    assert f"tgis_autoscaler_provider_failures {float(h.loop.failures)}" in metrics
    assert len(attempts) <= 2 * 2 * 3  # two rounds of 3 starts, each tried twice, not 40
    assert h.states() == {}


async def test_a_hanging_provider_times_out() -> None:
    h = Harness(PARAMS)
    h.provider.hang = True
    with pytest.raises(ProviderError, match="failed twice"):
        await h.loop.tick()


async def test_failed_starts_never_push_past_max_workers() -> None:
    h = Harness(PARAMS.model_copy(update={"min_workers": 4}), failure_rate=0.5)
    for _ in range(80):
        h.demand.arrived(5000.0)
        await h.run(1)
        assert len(h.states()) <= PARAMS.max_workers
    assert len(h.routable()) == 4


async def test_a_suspended_endpoint_leaves_a_draining_worker_as_it_is() -> None:
    h = await scaling_down_sim_2()
    assert h.registry.is_excluded("sim-2")  # draining
    h.loop.suspended = True
    h.provider.workers["sim-2"].in_flight = 0.0  # drained: an active endpoint would stop it
    calls = len(h.provider.calls)
    await h.run(40)  # past the drain grace too
    assert h.states() == {"sim-1": ProviderState.RUNNING, "sim-2": ProviderState.RUNNING}
    assert set(h.provider.calls[calls:]) <= {"list"}
    h.loop.suspended = False
    await h.run(1)
    assert h.states()["sim-2"] is ProviderState.STOPPED  # the drain finishes once active
