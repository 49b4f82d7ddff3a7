"""What the autoscaler sees at one tick: the fleet by phase, and the demand since the last tick.

Built by the loop (from the provider and the router's registry) or by the simulator; the policy
only reads it. Loads are in tokens (a request's cost, its max_new_tokens).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["Observation", "WorkerPhase", "WorkerView"]


class WorkerPhase(StrEnum):
    """A worker's phase as the autoscaler plans with it."""

    LOADING = "loading"  # created, not yet serving (billed)
    WARMING = "warming"  # loading, then straight to the cold pool (billed)
    RESUMING = "resuming"  # leaving the cold pool (billed)
    READY = "ready"  # serving (billed)
    DRAINING = "draining"  # finishing in-flight work before it stops (billed)
    COLD = "cold"  # stopped with the model loaded (storage only)
    ERROR = "error"  # failed; to be destroyed

    @property
    def active(self) -> bool:
        """Serving, or on its way to serving."""
        return self in (WorkerPhase.LOADING, WorkerPhase.RESUMING, WorkerPhase.READY)

    @property
    def cold_pool(self) -> bool:
        """In the cold pool, or on its way there."""
        return self in (WorkerPhase.COLD, WorkerPhase.WARMING)


@dataclass(frozen=True)
class WorkerView:
    id: str
    phase: WorkerPhase
    max_perf: float = 0.0
    in_flight_tokens: float = 0.0
    in_flight_requests: int = 0
    queue_time_s: float = 0.0  # how long a new request would wait for a slot
    since: float = 0.0  # when it entered this phase
    to_cold: bool = False  # draining into the cold pool (rather than for good)

    @property
    def joining_cold_pool(self) -> bool:
        """In the cold pool, or on its way there (warming, or draining into it)."""
        return self.phase.cold_pool or (self.phase is WorkerPhase.DRAINING and self.to_cold)


@dataclass(frozen=True)
class Observation:
    """The fleet and the demand at `now` (the demand counts since the previous observation)."""

    now: float
    workers: tuple[WorkerView, ...]
    arrived_tokens: float = 0.0
    arrived_requests: int = 0
    waiting_tokens: float = 0.0  # at the router, with no worker to route to
    waiting_requests: int = 0
    interval_s: float = 1.0
    counts: dict[WorkerPhase, int] = field(init=False, compare=False, repr=False)
    cold_pool: int = field(init=False, compare=False, repr=False)
    """Workers in the cold pool or on their way there (warming, or draining into it)."""

    def __post_init__(self) -> None:
        counts = dict.fromkeys(WorkerPhase, 0)
        for worker in self.workers:
            counts[worker.phase] += 1
        object.__setattr__(self, "counts", counts)
        cold_pool = sum(worker.joining_cold_pool for worker in self.workers)
        object.__setattr__(self, "cold_pool", cold_pool)

    def in_phase(self, *phases: WorkerPhase) -> list[WorkerView]:
        return [worker for worker in self.workers if worker.phase in phases]

    def count(self, *phases: WorkerPhase) -> int:
        return sum(self.counts[phase] for phase in phases)

    @property
    def active(self) -> int:
        return sum(n for phase, n in self.counts.items() if phase.active)

    @property
    def ready(self) -> int:
        return self.counts[WorkerPhase.READY]

    @property
    def total(self) -> int:
        """Workers that count against max_workers (all but those failed)."""
        return len(self.workers) - self.counts[WorkerPhase.ERROR]

    def mean_perf(self, default: float) -> float:
        perfs = [w.max_perf for w in self.in_phase(WorkerPhase.READY) if w.max_perf > 0]
        return sum(perfs) / len(perfs) if perfs else default

    def in_flight_tokens(self) -> float:
        return _sum(w.in_flight_tokens for w in self.workers) + self.waiting_tokens

    def in_flight_requests(self) -> int:
        return sum(w.in_flight_requests for w in self.workers) + self.waiting_requests

    def backlog_tokens(self, horizon_s: float) -> float:
        """Work that ready workers cannot start within `horizon_s`, in tokens, plus the tokens
        waiting at the router: the larger of in-flight tokens beyond what a worker finishes in
        that time, and its queue time beyond it (which also sees work that costs more than its
        tokens say, such as long prompts)."""
        over = 0.0
        for worker in self.in_phase(WorkerPhase.READY):
            by_tokens = worker.in_flight_tokens - worker.max_perf * horizon_s
            by_queue = (worker.queue_time_s - horizon_s) * worker.max_perf
            over += max(0.0, by_tokens, by_queue)
        return over + self.waiting_tokens

    def max_queue_time(self) -> float:
        return max((w.queue_time_s for w in self.in_phase(WorkerPhase.READY)), default=0.0)


def _sum(values: Iterable[float]) -> float:
    return float(sum(values))
