"""A toy fleet for policy tests: actions take effect on later ticks, deterministically. Each
ready worker holds an equal share of the last second's load, and reports the wait it implies
(in-flight tokens / max_perf), as the router estimates it."""

from __future__ import annotations

from dataclasses import dataclass, field

from router.autoscaler.decision import Action, ActionKind, Decision
from router.autoscaler.observation import Observation, WorkerPhase, WorkerView

PERF = 100.0


@dataclass
class ToyWorker:
    id: str
    phase: WorkerPhase
    due: float
    then_cold: bool = False


@dataclass
class ToyFleet:
    start_s: float = 6.0
    resume_s: float = 2.0
    workers: dict[str, ToyWorker] = field(default_factory=dict)
    made: int = 0

    def apply(self, decision: Decision, now: float) -> None:
        for action in decision.actions:
            self._apply(action, now)

    def _apply(self, action: Action, now: float) -> None:
        if action.kind in (ActionKind.START, ActionKind.START_COLD):
            self.made += 1
            cold = action.kind is ActionKind.START_COLD
            phase = WorkerPhase.WARMING if cold else WorkerPhase.LOADING
            self.workers[f"w{self.made}"] = ToyWorker(f"w{self.made}", phase, now + self.start_s)
            return
        worker = self.workers[action.worker_id or ""]
        if action.kind is ActionKind.RESUME:
            worker.phase, worker.due = WorkerPhase.RESUMING, now + self.resume_s
        elif action.kind is ActionKind.DRAIN:
            worker.phase, worker.due = WorkerPhase.DRAINING, now + 1
            worker.then_cold = action.to_cold
        elif action.kind is ActionKind.DESTROY:
            del self.workers[worker.id]

    def advance(self, now: float) -> None:
        for worker in list(self.workers.values()):
            if worker.due > now:
                continue
            if worker.phase in (WorkerPhase.LOADING, WorkerPhase.RESUMING):
                worker.phase = WorkerPhase.READY
            elif worker.phase is WorkerPhase.WARMING:
                worker.phase = WorkerPhase.COLD
            elif worker.phase is WorkerPhase.DRAINING:
                if worker.then_cold:
                    worker.phase = WorkerPhase.COLD
                else:
                    del self.workers[worker.id]

    def observe(self, now: float, tokens_per_s: float, waiting: int = 0) -> Observation:
        ready = [w for w in self.workers.values() if w.phase is WorkerPhase.READY]
        share = tokens_per_s / len(ready) if ready else 0.0
        views = tuple(
            WorkerView(
                id=w.id,
                phase=w.phase,
                max_perf=PERF if w.phase is WorkerPhase.READY else 0.0,
                in_flight_tokens=share if w.phase is WorkerPhase.READY else 0.0,
                in_flight_requests=int(share > 0),
                queue_time_s=share / PERF if w.phase is WorkerPhase.READY else 0.0,
                since=0.0,
                to_cold=w.phase is WorkerPhase.DRAINING and w.then_cold,
            )
            for w in self.workers.values()
        )
        return Observation(
            now=now,
            workers=views,
            arrived_tokens=tokens_per_s,
            arrived_requests=int(tokens_per_s // 50),
            waiting_tokens=50.0 * waiting,
            waiting_requests=waiting,
            interval_s=1.0,
        )
