"""The worker registry: what the router knows of each worker, from its reports and its tickets.

Pure state with an injected `now`: no I/O, no clock reads. A worker's expected load is what it
last reported in flight plus the cost of tickets issued since, which are not yet in its report.
A ticket stops counting once a report made `settle_s` after it was issued has arrived (by then
the worker has it or never will), or when it expires, or when the worker goes away.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from protocol import WorkerState, WorkerStatusReport

__all__ = ["MIN_PERF", "PendingTicket", "WorkerRecord", "WorkerRegistry"]

MIN_PERF = 1.0
"""Tokens/s assumed for a worker that has not measured its max_perf yet."""


@dataclass(frozen=True)
class PendingTicket:
    cost: float
    issued_at: float
    expires_at: float


@dataclass
class WorkerRecord:
    id: str
    endpoint: str
    url: str
    state: WorkerState
    max_perf: float
    reported_workload: float
    error_msg: str
    last_report_at: float
    last_reqnum: int
    pending: list[PendingTicket] = field(default_factory=list)

    @property
    def pending_workload(self) -> float:
        return sum(ticket.cost for ticket in self.pending)

    @property
    def expected_load(self) -> float:
        return self.reported_workload + self.pending_workload

    @property
    def expected_wait_s(self) -> float:
        return self.expected_load / max(self.max_perf, MIN_PERF)

    def take_reqnum(self) -> int:
        self.last_reqnum += 1
        return self.last_reqnum


class WorkerRegistry:
    def __init__(self, *, stale_after_s: float, settle_s: float) -> None:
        self._workers: dict[str, WorkerRecord] = {}
        self._excluded: set[str] = set()
        self._stale_after_s = stale_after_s
        self._settle_s = settle_s

    def __iter__(self) -> Iterator[WorkerRecord]:
        return iter(list(self._workers.values()))

    def __len__(self) -> int:
        return len(self._workers)

    def get(self, worker_id: str) -> WorkerRecord | None:
        return self._workers.get(worker_id)

    def apply_report(self, report: WorkerStatusReport, now: float) -> WorkerRecord | None:
        """Record a report; a `stopped` worker leaves the registry (and returns None)."""
        if report.state is WorkerState.STOPPED:
            self._workers.pop(report.id, None)
            return None
        record = self._workers.get(report.id)
        if record is None:
            record = self._new_record(report, now)
            self._workers[report.id] = record
        record.endpoint = report.endpoint
        record.url = report.url
        record.state = report.state
        record.max_perf = report.max_perf
        record.reported_workload = report.in_flight_workload
        record.error_msg = report.error_msg
        record.last_report_at = now
        record.pending = [t for t in record.pending if t.issued_at > now - self._settle_s]
        return record

    def _new_record(self, report: WorkerStatusReport, now: float) -> WorkerRecord:
        # Start reqnums at the current time in ms, so that a restarted router keeps issuing
        # numbers above those its predecessor issued (unless it averaged >1000 tickets/s).
        return WorkerRecord(
            id=report.id,
            endpoint=report.endpoint,
            url=report.url,
            state=report.state,
            max_perf=report.max_perf,
            reported_workload=report.in_flight_workload,
            error_msg=report.error_msg,
            last_report_at=now,
            last_reqnum=int(now * 1000),
        )

    def add_pending(self, worker: WorkerRecord, ticket: PendingTicket) -> None:
        worker.pending.append(ticket)

    def expire_pending(self, now: float) -> None:
        for worker in self._workers.values():
            worker.pending = [t for t in worker.pending if t.expires_at > now]

    def is_fresh(self, worker: WorkerRecord, now: float) -> bool:
        return now - worker.last_report_at <= self._stale_after_s

    def routable(self, endpoint: str, now: float) -> list[WorkerRecord]:
        """Workers of `endpoint` that may get a ticket now: serving and recently heard from."""
        return [
            worker
            for worker in self._workers.values()
            if worker.endpoint == endpoint
            and worker.state.routable
            and self.is_fresh(worker, now)
            and worker.id not in self._excluded
        ]

    def exclude(self, worker_id: str) -> None:
        """Route nothing more to this worker (it is draining), whatever it reports."""
        self._excluded.add(worker_id)

    def include(self, worker_id: str) -> None:
        self._excluded.discard(worker_id)

    def is_excluded(self, worker_id: str) -> bool:
        return worker_id in self._excluded

    def remove(self, worker_id: str) -> None:
        """Forget a worker that is gone (stopped or destroyed) without its last report."""
        self._workers.pop(worker_id, None)
        self._excluded.discard(worker_id)

    def counts_by_state(self, endpoint: str, now: float) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for worker in self._workers.values():
            if worker.endpoint == endpoint:
                counts["stale" if not self.is_fresh(worker, now) else worker.state.value] += 1
        return dict(sorted(counts.items()))
