"""Virtual workers on a virtual clock: phases, start/resume delays, failures, and a queue each.

A worker serves `slots` requests at once, each decoding at max_perf / slots tokens/s after a
prefill at `prefill_tokens_per_s`; a request waits (FIFO) for the first free slot. Billing
follows Vast's: every phase but cold (storage only) and failed counts as worker-seconds. The
fleet also records each compute spell (from the start or resume to the stop) and the seconds
of disk (every phase but failed), which `billing.BillingSpec` prices.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from router.autoscaler.decision import Action, ActionKind
from router.autoscaler.observation import WorkerPhase, WorkerView

__all__ = ["FleetSpec", "SimWorker", "VirtualFleet"]

BILLED = frozenset(
    {
        WorkerPhase.LOADING,
        WorkerPhase.WARMING,
        WorkerPhase.RESUMING,
        WorkerPhase.READY,
        WorkerPhase.DRAINING,
    }
)


@dataclass(frozen=True)
class FleetSpec:
    start_s: float = 60.0  # create -> ready (pull, load, benchmark)
    resume_s: float = 5.0  # cold -> ready
    max_perf: float = 400.0  # tokens/s at full concurrency
    slots: int = 8  # requests served at once
    prefill_tokens_per_s: float = 20_000.0
    failure_rate: float = 0.0  # share of starts that fail while loading
    drain_grace_s: float = 60.0

    @property
    def slot_rate(self) -> float:
        return self.max_perf / self.slots


@dataclass
class SimWorker:
    id: str
    phase: WorkerPhase
    since: float
    due_at: float  # when the current transition completes
    then_cold: bool = False  # after draining
    failing: bool = False  # this start will fail
    slots: list[float] = field(default_factory=list)  # free-at times (a heap)
    in_flight: list[tuple[float, float]] = field(default_factory=list)  # (finish, cost) heap
    in_flight_tokens: float = 0.0
    billed_s: float = 0.0
    billed_from: float = 0.0
    stored_s: float = 0.0  # disk-seconds: every phase but failed
    spell_from: float | None = None  # when the current compute spell began (start or resume)
    requested_at: float = 0.0  # when the scale-up that made it serve was decided

    def settle(self, now: float) -> None:
        """Forget requests finished by `now`."""
        while self.in_flight and self.in_flight[0][0] <= now:
            _, cost = heapq.heappop(self.in_flight)
            self.in_flight_tokens -= cost
        if not self.in_flight:
            self.in_flight_tokens = 0.0

    def queue_time(self, now: float) -> float:
        """How long a request arriving now would wait for a slot."""
        return max(0.0, self.slots[0] - now) if self.slots else 0.0


class VirtualFleet:
    def __init__(self, spec: FleetSpec, rng: random.Random) -> None:
        self.spec = spec
        self.rng = rng
        self.workers: dict[str, SimWorker] = {}
        self.cold_starts = 0
        self.resumes = 0
        self.failures = 0
        self.scale_up_lags: list[float] = []
        self.retired_billed_s = 0.0
        self.retired_stored_s = 0.0
        self.spells_s: list[float] = []  # the lengths of compute spells that have ended
        self._names = 0

    def apply(self, actions: tuple[Action, ...], now: float) -> None:
        for action in actions:
            self._apply(action, now)

    def _apply(self, action: Action, now: float) -> None:
        kind = action.kind
        if kind in (ActionKind.START, ActionKind.START_COLD):
            self._start(now, cold=kind is ActionKind.START_COLD)
            return
        worker = self.workers.get(action.worker_id or "")
        if worker is None:
            return
        if kind is ActionKind.RESUME and worker.phase is WorkerPhase.COLD:
            self._enter(worker, WorkerPhase.RESUMING, now, now + self.spec.resume_s)
            worker.requested_at = now
            worker.spell_from = now
            self.resumes += 1
        elif kind is ActionKind.DRAIN and worker.phase in (WorkerPhase.READY, WorkerPhase.RESUMING):
            worker.then_cold = action.to_cold
            self._enter(worker, WorkerPhase.DRAINING, now, now + self.spec.drain_grace_s)
        elif kind is ActionKind.STOP_COLD and worker.phase is WorkerPhase.READY:
            self._enter(worker, WorkerPhase.COLD, now, now)
        elif kind is ActionKind.DESTROY:
            self.remove(worker, now)

    def _start(self, now: float, *, cold: bool) -> None:
        self._names += 1
        phase = WorkerPhase.WARMING if cold else WorkerPhase.LOADING
        worker = SimWorker(f"sim-{self._names}", phase, now, now + self.spec.start_s)
        worker.billed_from = now
        worker.spell_from = now
        worker.failing = self.rng.random() < self.spec.failure_rate
        worker.requested_at = now
        self.workers[worker.id] = worker
        self.cold_starts += 1

    def _enter(self, worker: SimWorker, phase: WorkerPhase, now: float, due_at: float) -> None:
        self.bill(worker, now)
        if phase not in BILLED:
            self._end_spell(worker, now)
        worker.phase, worker.since, worker.due_at = phase, now, due_at

    def bill(self, worker: SimWorker, now: float) -> None:
        if worker.phase in BILLED:
            worker.billed_s += now - worker.billed_from
        if worker.phase is not WorkerPhase.ERROR:
            worker.stored_s += now - worker.billed_from
        worker.billed_from = now

    def _end_spell(self, worker: SimWorker, now: float) -> None:
        if worker.spell_from is not None:
            self.spells_s.append(now - worker.spell_from)
            worker.spell_from = None

    def remove(self, worker: SimWorker, now: float) -> None:
        self.bill(worker, now)
        self._end_spell(worker, now)
        self.retired_billed_s += worker.billed_s
        self.retired_stored_s += worker.stored_s
        del self.workers[worker.id]

    def advance(self, now: float) -> list[SimWorker]:
        """Complete due transitions; return the workers that became ready."""
        became_ready = []
        for worker in list(self.workers.values()):
            if worker.phase in (WorkerPhase.READY, WorkerPhase.COLD, WorkerPhase.ERROR):
                continue
            if self._transition(worker, now):
                became_ready.append(worker)
        return became_ready

    def _transition(self, worker: SimWorker, now: float) -> bool:
        phase = worker.phase
        if phase is WorkerPhase.DRAINING:
            worker.settle(now)
            if worker.in_flight and now < worker.due_at:
                return False
            if worker.then_cold:
                self._enter(worker, WorkerPhase.COLD, now, now)
            else:
                self.remove(worker, now)
            return False
        if now < worker.due_at:
            return False
        if worker.failing:
            self.failures += 1
            self._enter(worker, WorkerPhase.ERROR, now, now)
            return False
        if phase is WorkerPhase.WARMING:
            self._enter(worker, WorkerPhase.COLD, now, now)
            return False
        self._enter(worker, WorkerPhase.READY, now, now)
        worker.slots = [now] * self.spec.slots
        self.scale_up_lags.append(now - worker.requested_at)
        return True

    def serve(self, worker: SimWorker, arrival: float, input_tokens: int, cost: int) -> float:
        """Queue a request on `worker`; return its start time (first free slot, FIFO)."""
        start = max(arrival, heapq.heappop(worker.slots))
        finish = start + input_tokens / self.spec.prefill_tokens_per_s + cost / self.spec.slot_rate
        heapq.heappush(worker.slots, finish)
        heapq.heappush(worker.in_flight, (finish, float(cost)))
        worker.in_flight_tokens += cost
        return start

    def views(self, now: float) -> tuple[WorkerView, ...]:
        views = []
        for worker in self.workers.values():
            worker.settle(now)
            views.append(
                WorkerView(
                    id=worker.id,
                    phase=worker.phase,
                    max_perf=self.spec.max_perf if worker.phase is WorkerPhase.READY else 0.0,
                    in_flight_tokens=worker.in_flight_tokens,
                    in_flight_requests=len(worker.in_flight),
                    queue_time_s=worker.queue_time(now),
                    since=worker.since,
                    to_cold=worker.then_cold,
                )
            )
        return tuple(views)

    def billed_seconds(self, now: float) -> float:
        for worker in self.workers.values():
            self.bill(worker, now)
        return self.retired_billed_s + sum(w.billed_s for w in self.workers.values())

    def stored_seconds(self, now: float) -> float:
        for worker in self.workers.values():
            self.bill(worker, now)
        return self.retired_stored_s + sum(w.stored_s for w in self.workers.values())

    def spells(self, now: float) -> list[float]:
        """The lengths of every compute spell, those still running counted up to `now`."""
        running = [now - w.spell_from for w in self.workers.values() if w.spell_from is not None]
        return [*self.spells_s, *running]

    def count(self, *phases: WorkerPhase) -> int:
        return sum(1 for worker in self.workers.values() if worker.phase in phases)
