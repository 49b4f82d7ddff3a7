"""The simulation: a trace replayed on a virtual clock through the router and the policy.

Arrivals are routed at once when a worker is routable (through `SimRouter`: the real registry
and routing function), else they wait at the router, as `/route/` holds them, and go out in
order when a worker becomes ready. A worker that would make a request wait longer than
max_queue_time turns it away (the PyWorker's 429); the client polls again, so the request
waits at the router, first in line, and is retried at every report.

Every `report_s` the workers report (load, state); every `tick_s` the policy decides on an
Observation and the fleet applies the actions. Transitions (ready, cold, drained) happen at
report times, so they are exact to `report_s`. Every decision goes through a `FlapCounter`
(a park undone by a resume, or a resume by a park, too soon), and the fleet's compute spells
and disk-seconds are billed by `config.billing`.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

from common.trace import Trace
from protocol import WorkerState
from router.autoscaler.decision import Action, ActionKind
from router.autoscaler.flaps import FlapCounter
from router.autoscaler.observation import Observation, WorkerPhase
from router.autoscaler.policy import Policy
from router.simulator.billing import BillingSpec
from router.simulator.fleet import FleetSpec, VirtualFleet
from router.simulator.results import SimResult, TimelinePoint, summarise
from router.simulator.routing import SimRouter

__all__ = ["SimConfig", "simulate"]

REPORT_STATE = {
    WorkerPhase.READY: WorkerState.READY,
    WorkerPhase.DRAINING: WorkerState.DRAINING,
}


@dataclass(frozen=True)
class SimConfig:
    fleet: FleetSpec = field(default_factory=FleetSpec)
    billing: BillingSpec = field(default_factory=BillingSpec)
    report_s: float = 1.0
    seed: int = 0
    tail_s: float = 600.0  # after the last arrival, wait at most this long for the queue
    until_s: float = 0.0  # go on at least this long (silence after the trace), in s
    initial_workers: int = 0  # ready at t=0
    initial_cold: int = 0  # cold at t=0


@dataclass
class _Queues:
    waiting: deque[int] = field(default_factory=deque)
    waiting_tokens: float = 0.0
    arrived_tokens: float = 0.0
    arrived_requests: int = 0


class _Run:
    def __init__(self, trace: Trace, policy: Policy, config: SimConfig) -> None:
        rng = random.Random(config.seed)
        self.trace, self.policy, self.config = trace, policy, config
        self.fleet = VirtualFleet(config.fleet, rng)
        self.router = SimRouter(rng)
        self.queues = _Queues()
        n = len(trace)
        self.queue_s: list[float] = [-1.0] * n
        self.ttft_s: list[float] = [-1.0] * n
        self.timeline: list[TimelinePoint] = []
        self.decisions = 0
        self.flaps = FlapCounter.for_params(policy.params)
        self.last_decision_at = 0.0

    def seed_fleet(self) -> None:
        starts = [Action(ActionKind.START)] * self.config.initial_workers
        colds = [Action(ActionKind.START_COLD)] * self.config.initial_cold
        self.fleet.apply((*starts, *colds), 0.0)
        for worker in self.fleet.workers.values():
            worker.due_at = 0.0
            worker.failing = False
        self.fleet.cold_starts = 0
        self.fleet.advance(0.0)
        self.fleet.scale_up_lags.clear()
        self.fleet.spells_s.clear()  # the fleet at rest is there from the start: no start billed

    def run(self) -> SimResult:
        trace, report_s = self.trace, self.config.report_s
        tick_s = self.policy.params.tick_s
        next_report, next_tick = 0.0, 0.0
        arrivals, inputs, outputs = trace.arrival_s, trace.input_tokens, trace.output_tokens
        route, serve, queues = self.router.route, self.fleet.serve, self.queues
        workers, admit_s = self.fleet.workers, self.policy.params.max_queue_time
        for index, arrival in enumerate(arrivals):
            while next_report <= arrival:
                if next_tick <= next_report:
                    self.tick(next_report)
                    next_tick += tick_s
                self.report(next_report)
                next_report += report_s
            cost = outputs[index]
            queues.arrived_tokens += cost
            queues.arrived_requests += 1
            if queues.waiting:
                self._hold(index)
                continue
            record = route(cost, arrival)
            if record is None or workers[record.id].queue_time(arrival) > admit_s:
                self._hold(index)  # no worker, or the PyWorker's 429: the client polls again
                continue
            self._record(index, serve(workers[record.id], arrival, inputs[index], cost), arrival)
        end = self._finish(next_report, next_tick, tick_s)
        return summarise(self, end)

    def _hold(self, index: int) -> None:
        self.queues.waiting.append(index)
        self.queues.waiting_tokens += self.trace.output_tokens[index]

    def _record(self, index: int, start: float, arrival: float) -> None:
        spec = self.fleet.spec
        queue = start - arrival
        self.queue_s[index] = queue
        prefill = self.trace.input_tokens[index] / spec.prefill_tokens_per_s
        self.ttft_s[index] = queue + prefill + 1.0 / spec.slot_rate

    def _finish(self, next_report: float, next_tick: float, tick_s: float) -> float:
        limit = self.trace.duration_s + self.config.tail_s
        while (self.queues.waiting and next_report <= limit) or next_report <= self.config.until_s:
            if next_tick <= next_report:
                self.tick(next_report)
                next_tick += tick_s
            self.report(next_report)
            next_report += self.config.report_s
        return max(self.trace.duration_s, next_report - self.config.report_s)

    def report(self, now: float) -> None:
        self.fleet.advance(now)
        report = self.router.report
        for worker in self.fleet.workers.values():
            state = REPORT_STATE.get(worker.phase)
            if state is None:
                if self.router.registry.get(worker.id) is not None:
                    report(worker.id, WorkerState.STOPPED, now)
                continue
            worker.settle(now)
            report(
                worker.id,
                state,
                now,
                max_perf=self.fleet.spec.max_perf,
                in_flight=worker.in_flight_tokens,
                requests=len(worker.in_flight),
            )
        self._forget_removed(now)
        self.router.reindex(now)
        self._release_waiting(now)

    def _forget_removed(self, now: float) -> None:
        registry = self.router.registry
        for record in list(registry):
            if record.id not in self.fleet.workers:
                self.router.report(record.id, WorkerState.STOPPED, now)

    def _release_waiting(self, now: float) -> None:
        queues, trace, workers = self.queues, self.trace, self.fleet.workers
        admit_s = self.policy.params.max_queue_time
        while queues.waiting:
            index = queues.waiting[0]
            cost = trace.output_tokens[index]
            record = self.router.route(cost, now)
            if record is None or workers[record.id].queue_time(now) > admit_s:
                return
            queues.waiting.popleft()
            queues.waiting_tokens -= cost
            start = self.fleet.serve(workers[record.id], now, trace.input_tokens[index], cost)
            self._record(index, start, trace.arrival_s[index])

    def tick(self, now: float) -> None:
        queues = self.queues
        obs = Observation(
            now=now,
            workers=self.fleet.views(now),
            arrived_tokens=queues.arrived_tokens,
            arrived_requests=queues.arrived_requests,
            waiting_tokens=queues.waiting_tokens,
            waiting_requests=len(queues.waiting),
            interval_s=self.policy.params.tick_s,
        )
        decision = self.policy.decide(obs)
        self.fleet.apply(decision.actions, now)
        self.flaps.record(decision)
        self.decisions += 1
        self.timeline.append(
            TimelinePoint(
                t=now,
                load_tokens_per_s=queues.arrived_tokens / self.policy.params.tick_s,
                ready=obs.ready,
                active=obs.active,
                cold=obs.count(WorkerPhase.COLD),
                desired=decision.desired_active,
                waiting=len(queues.waiting),
            )
        )
        queues.arrived_tokens, queues.arrived_requests = 0.0, 0


def simulate(trace: Trace, policy: Policy, config: SimConfig | None = None) -> SimResult:
    if config is None:
        active, cold = policy.at_rest()
        config = SimConfig(initial_workers=active, initial_cold=cold)
    run = _Run(trace, policy, config)
    run.seed_fleet()
    return run.run()
