"""The worker registry: what the router knows of each worker, from its reports and its tickets.

Pure state with an injected `now`: no I/O, no clock reads. A worker's expected load is what it
last reported in flight plus the cost of tickets issued since, which are not yet in its report.
A ticket stops counting at the first of: a report made `settle_s` after it was issued (by then
the worker counts it itself, or never will), its expiry, the worker's removal, the worker going
stale, or `release` once the request it carried is over: by the router's own proxy (gateway
mode), or when the worker says so (`release_request`: Vast's PyWorker names ended requests by
`request_idx`). Each of these takes the ticket out of its worker's deque, so its cost comes back
exactly once, whichever is first. A stale worker (no report for `stale_after_s`: killed,
stopped, cut off) counts no load at all, neither its tickets nor what it last reported in
flight: no dead worker's load stays counted, and if it was only silent, its next report says
what it runs.

Pending tickets sit in a deque per worker in the order they were issued, and their total is
kept as a running sum, so settling and expiring pop from the left and reading a worker's
expected wait costs O(1): routing stays cheap with hundreds of workers.

Out of rotation at once: a worker whose report is older than `stale_after_s`, one that reports
an error (state `error`, or a non-empty `error_msg`), one marked failed (`mark_failed`, e.g. a
connection to it failed), and one the autoscaler is draining (`exclude`). A failed worker is
back with its next healthy report made after the failure.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from protocol import WorkerState, WorkerStatusReport

__all__ = ["MIN_PERF", "PendingTicket", "WorkerRecord", "WorkerRegistry"]

MIN_PERF = 1.0
"""Tokens/s assumed for a worker that has not measured its max_perf yet."""

SWEEP_INTERVAL_S = 1.0


class PendingTicket(NamedTuple):
    """A ticket issued and not yet settled: one is made per route, so it is a plain tuple."""

    cost: float
    issued_at: float
    expires_at: float
    reqnum: int
    """The ticket's number: unique on its worker, so `release` finds this ticket and no other."""
    request_idx: int | None = None
    """The request it was issued for (what Vast's PyWorker names when the request has ended)."""


@dataclass(eq=False)
class WorkerRecord:
    id: str
    last_report_at: float
    last_reqnum: int
    # The worker's own word, set by `take_report` from its first report on:
    endpoint: str = ""
    url: str = ""
    state: WorkerState = WorkerState.STARTING
    max_perf: float = 0.0
    """Tokens/s: the figure it reports (measured while serving, once it has been)."""
    startup_perf: float = 0.0
    """Tokens/s its start-up benchmark measured (shown, not used)."""
    reported_workload: float = 0.0
    error_msg: str = ""
    epoch: str = ""
    """The worker's current start, from its reports: native tickets name it."""
    pending: deque[PendingTicket] = field(default_factory=deque)
    pending_workload: float = 0.0
    remote_workload: float = 0.0
    """The cost other routers count in flight on it (routers on shared state, `router.state`);
    as of their last flush, so at most a flush interval old."""
    failed_at: float | None = None
    stamp: int = 0
    """Bumped whenever the expected wait may have changed (for routing's index)."""

    @property
    def expected_load(self) -> float:
        return self.reported_workload + self.pending_workload + self.remote_workload

    @property
    def expected_wait_s(self) -> float:
        load = self.reported_workload + self.pending_workload + self.remote_workload
        return load / max(self.max_perf, MIN_PERF)

    @property
    def healthy(self) -> bool:
        """Serving and not failing: in a routable state, no error, not marked failed."""
        return self.state.routable and not self.error_msg and self.failed_at is None

    def take_report(self, report: WorkerStatusReport) -> None:
        """What the worker says of itself in `report` (its tickets are the registry's count)."""
        self.endpoint = report.endpoint
        self.url = report.url
        self.state = report.state
        self.max_perf = report.max_perf
        self.startup_perf = report.startup_perf
        self.reported_workload = report.in_flight_workload
        self.error_msg = report.error_msg
        self.epoch = report.epoch

    def take_reqnum(self) -> int:
        self.last_reqnum += 1
        return self.last_reqnum

    def add_pending(self, ticket: PendingTicket) -> None:
        self.pending.append(ticket)
        self.pending_workload += ticket.cost
        self.stamp += 1

    def settle(self, issued_before: float) -> None:
        """Stop counting tickets issued at or before `issued_before` (the worker has them)."""
        pending = self.pending
        while pending and pending[0].issued_at <= issued_before:
            self.pending_workload -= pending.popleft().cost
            self.stamp += 1
        self._clamp()

    def expire(self, now: float) -> None:
        """Stop counting tickets that have expired (the client never used them, or gave up).
        Tickets expire in the order they were issued: the router's ttl is one constant."""
        pending = self.pending
        while pending and pending[0].expires_at <= now:
            self.pending_workload -= pending.popleft().cost
            self.stamp += 1
        self._clamp()

    def release(self, reqnum: int) -> bool:
        """Stop counting the ticket numbered `reqnum`: the request it carried is over. False,
        changing nothing, when it no longer counts (a report settled it, it expired, the worker
        was removed, or it was released before): its cost is never returned twice."""
        for index, ticket in enumerate(self.pending):
            if ticket.reqnum == reqnum:
                del self.pending[index]
                self.pending_workload -= ticket.cost
                self.stamp += 1
                self._clamp()
                return True
        return False

    def forget_load(self) -> None:
        """Count nothing on this worker until it reports again (it is stale)."""
        if self.pending or self.reported_workload:
            self.pending.clear()
            self.pending_workload = 0.0
            self.reported_workload = 0.0
            self.stamp += 1

    def _clamp(self) -> None:
        if not self.pending:
            self.pending_workload = 0.0  # no float drift survives an empty deque


ReqnumFloor = Callable[[], int]


def _time_floor_factory(now: float) -> int:
    return int(now * 1000)


class WorkerRegistry:
    """Workers by id. `reqnum_floor()`, when given, is where a new worker's reqnums start: the
    router's persisted high-water mark, so numbers keep increasing across restarts.
    `on_remove(worker_id)`, when given, hears of every removal (the worker's identity goes)."""

    def __init__(
        self,
        *,
        stale_after_s: float,
        settle_s: float,
        reqnum_floor: ReqnumFloor | None = None,
        on_remove: Callable[[str], None] | None = None,
    ) -> None:
        self._workers: dict[str, WorkerRecord] = {}
        self._excluded: set[str] = set()
        self._stale_after_s = stale_after_s
        self._settle_s = settle_s
        self._reqnum_floor = reqnum_floor
        self._on_remove = on_remove
        self._by_endpoint: dict[str, list[WorkerRecord]] = {}
        self._next_sweep = float("-inf")
        self.touched: list[WorkerRecord] = []
        """Workers reported since routing last looked (it re-indexes them, then clears this)."""
        self.version = 0
        """Bumped whenever membership, state, or health change (not on load changes)."""

    def __iter__(self) -> Iterator[WorkerRecord]:
        return iter(list(self._workers.values()))

    def __len__(self) -> int:
        return len(self._workers)

    def get(self, worker_id: str) -> WorkerRecord | None:
        return self._workers.get(worker_id)

    def count(self, endpoint: str) -> int:
        """How many workers of `endpoint` the registry holds (in any state)."""
        return sum(1 for worker in self._workers.values() if worker.endpoint == endpoint)

    def apply_report(self, report: WorkerStatusReport, now: float) -> WorkerRecord | None:
        """Record a report; a `stopped` worker leaves the registry (and returns None)."""
        if report.state is WorkerState.STOPPED:
            self.remove(report.id)
            return None
        record = self._workers.get(report.id)
        if record is None:
            floor = self._reqnum_floor() if self._reqnum_floor else _time_floor_factory(now)
            record = self._workers[report.id] = WorkerRecord(report.id, now, floor)
            self._changed()
        elif (record.state, record.endpoint, record.url, bool(record.error_msg)) != (
            report.state,
            report.endpoint,
            report.url,
            bool(report.error_msg),
        ):
            self._changed()
        record.take_report(report)
        if record.failed_at is not None and now > record.failed_at:
            record.failed_at = None  # a report after the failure: it is back (if healthy)
            self._changed()
        stale_before = now - record.last_report_at > self._stale_after_s
        record.last_report_at = now
        if stale_before:
            self._changed()
        record.settle(now - self._settle_s)
        record.expire(now)
        record.stamp += 1
        self._touch(record)
        return record

    def _touch(self, record: WorkerRecord) -> None:
        """Its expected wait changed: routing re-indexes it the next time it picks."""
        self.touched.append(record)
        if len(self.touched) > 2 * len(self._workers) + 64:
            self.touched.clear()  # nobody is routing: the index is rebuilt when one does
            self.version += 1

    def add_pending(self, worker: WorkerRecord, ticket: PendingTicket) -> None:
        worker.add_pending(ticket)

    def set_remote_load(self, worker: WorkerRecord, load: float) -> None:
        """The cost other routers count in flight on `worker` now (routing re-indexes it)."""
        if worker.remote_workload != load:
            worker.remote_workload = load
            worker.stamp += 1
            self._touch(worker)

    def release(self, worker: WorkerRecord, reqnum: int) -> bool:
        """The request that ticket `reqnum` of `worker` carried is over: its cost stops counting
        now, unless a report, its expiry or the worker's removal took it back first (False)."""
        released = worker.release(reqnum)
        if released and self._workers.get(worker.id) is worker:
            self._touch(worker)
        return released

    def release_request(self, worker_id: str, request_idx: int) -> bool:
        """The worker `worker_id` says request `request_idx` has ended: its oldest ticket for
        that request stops counting now, through `release` (by that ticket's reqnum). False
        when no ticket of that request counts on it any more (or there is no such worker)."""
        worker = self._workers.get(worker_id)
        if worker is None:
            return False
        for ticket in worker.pending:
            if ticket.request_idx == request_idx:
                return self.release(worker, ticket.reqnum)
        return False

    def expire_pending(self, now: float) -> None:
        """Stop counting expired tickets, and any load of a stale worker."""
        expired = False
        for worker in self._workers.values():
            if not self.is_fresh(worker, now) and (worker.pending or worker.reported_workload):
                worker.forget_load()
                expired = True
            elif worker.pending and worker.pending[0].expires_at <= now:
                worker.expire(now)
                expired = True
        self._next_sweep = now + SWEEP_INTERVAL_S
        if expired:
            self.version += 1  # many waits changed: routing re-indexes

    def expire_due(self, now: float) -> None:
        """Expire every worker's due tickets and stale workers' load, at most once per
        SWEEP_INTERVAL_S (routing calls this each time; a worker out of rotation gets its
        expired cost back within a second)."""
        if now >= self._next_sweep:
            self.expire_pending(now)

    @property
    def stale_after_s(self) -> float:
        """A worker whose last report is older than this is out of rotation."""
        return self._stale_after_s

    def is_fresh(self, worker: WorkerRecord, now: float) -> bool:
        return now - worker.last_report_at <= self._stale_after_s

    def routable(self, endpoint: str, now: float) -> list[WorkerRecord]:
        """Workers of `endpoint` that may get a ticket now: healthy, fresh, not excluded."""
        stale_before = now - self._stale_after_s
        return [
            worker
            for worker in self._members(endpoint)
            if worker.healthy and worker.last_report_at >= stale_before
        ]

    def _members(self, endpoint: str) -> list[WorkerRecord]:
        """Workers of `endpoint` not excluded, cached until membership or health changes."""
        members = self._by_endpoint.get(endpoint)
        if members is None:
            members = [
                worker
                for worker in self._workers.values()
                if worker.endpoint == endpoint and worker.id not in self._excluded
            ]
            self._by_endpoint[endpoint] = members
        return members

    def _changed(self) -> None:
        self._by_endpoint.clear()
        self.version += 1

    def mark_failed(self, worker_id: str, now: float) -> None:
        """Out of rotation until the worker's next report made after `now`."""
        record = self._workers.get(worker_id)
        if record is not None:
            record.failed_at = now
            self._changed()

    def exclude(self, worker_id: str) -> None:
        """Route nothing more to this worker (it is draining), whatever it reports."""
        self._excluded.add(worker_id)
        self._changed()

    def include(self, worker_id: str) -> None:
        self._excluded.discard(worker_id)
        self._changed()

    def is_excluded(self, worker_id: str) -> bool:
        return worker_id in self._excluded

    def remove(self, worker_id: str) -> None:
        """Forget a worker that is gone (stopped or destroyed); its pending cost goes with it."""
        record = self._workers.pop(worker_id, None)
        if record is not None:
            record.pending.clear()
            record.pending_workload = 0.0
        self._excluded.discard(worker_id)
        self._changed()
        if self._on_remove is not None:
            self._on_remove(worker_id)

    def remove_endpoint(self, endpoint: str) -> None:
        """Forget every worker of a deleted endpoint."""
        for worker in list(self._workers.values()):
            if worker.endpoint == endpoint:
                self.remove(worker.id)

    def state_of(self, worker: WorkerRecord, now: float) -> str:
        """The worker's state as an operator sees it: `stale`, `failed`, or its reported one."""
        if not self.is_fresh(worker, now):
            return "stale"
        if worker.failed_at is not None:
            return "failed"
        if worker.error_msg and worker.state is not WorkerState.ERROR:
            return "error"
        if worker.id in self._excluded and worker.state.routable:
            return "draining"
        return worker.state.value

    def counts_by_state(self, endpoint: str, now: float) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for worker in self._workers.values():
            if worker.endpoint == endpoint:
                counts[self.state_of(worker, now)] += 1
        return dict(sorted(counts.items()))

    def pending_total(self, endpoint: str | None = None) -> float:
        """The cost of unsettled tickets (of one endpoint, or all): zero when nothing leaks."""
        return sum(
            worker.pending_workload
            for worker in self._workers.values()
            if endpoint is None or worker.endpoint == endpoint
        )
