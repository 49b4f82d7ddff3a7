"""The router as the simulator runs it: the real WorkerRegistry and least_expected_wait.

Workers report to a real `WorkerRegistry`; each request gets the worker that the router's own
`least_expected_wait` picks, and its cost is counted as a pending ticket as the router does.
To keep a 1,000-worker fleet fast, a heap ordered by expected wait hands the routing function
only the workers tied at the smallest wait (at most `tie_limit` of them), which is the set it
would choose from over the whole fleet; it is rebuilt whenever reports arrive.
"""

from __future__ import annotations

import heapq
import random

from protocol import WorkerState, WorkerStatusReport
from router.routing.policy import least_expected_wait
from router.routing.registry import PendingTicket, WorkerRecord, WorkerRegistry

__all__ = ["SimRouter"]

ENDPOINT = "sim"
TICKET_TTL_S = 60.0


class SimRouter:
    def __init__(self, rng: random.Random, *, tie_limit: int = 8) -> None:
        # Reports in the simulator include every ticket issued before them: settle at once.
        self.registry = WorkerRegistry(stale_after_s=1e12, settle_s=0.0)
        self._rng = rng
        self._tie_limit = tie_limit
        self._heap: list[tuple[float, str]] = []
        self._reports: dict[str, WorkerStatusReport] = {}

    def report(
        self,
        worker_id: str,
        state: WorkerState,
        now: float,
        *,
        max_perf: float = 0.0,
        in_flight: float = 0.0,
        requests: int = 0,
    ) -> None:
        report = self._reports.get(worker_id)
        if report is None:
            report = WorkerStatusReport(id=worker_id, url=f"sim://{worker_id}", endpoint=ENDPOINT)
            self._reports[worker_id] = report
        # A worker's report object is reused, its fields updated: constructing a pydantic model
        # per report would dominate the run time of a large simulation.
        report.state = state
        report.max_perf = max_perf
        report.in_flight_workload = report.cur_load = in_flight
        report.num_requests_working = requests
        self.registry.apply_report(report, now)
        if state is WorkerState.STOPPED:
            del self._reports[worker_id]

    def reindex(self, now: float) -> None:
        self._heap = [(w.expected_wait_s, w.id) for w in self.registry.routable(ENDPOINT, now)]
        heapq.heapify(self._heap)

    def route(self, cost: float, now: float) -> WorkerRecord | None:
        """The worker for a request of `cost` tokens, with the ticket counted; None if none."""
        if not self._heap:
            return None
        tied = [heapq.heappop(self._heap)]
        while self._heap and len(tied) < self._tie_limit and self._heap[0][0] <= tied[0][0]:
            tied.append(heapq.heappop(self._heap))
        records = [self._record(worker_id) for _, worker_id in tied]
        chosen = least_expected_wait(records, self._rng)
        assert chosen is not None
        self.registry.add_pending(
            chosen, PendingTicket(cost, now, now + TICKET_TTL_S, chosen.take_reqnum())
        )
        for record in records:
            heapq.heappush(self._heap, (record.expected_wait_s, record.id))
        return chosen

    def _record(self, worker_id: str) -> WorkerRecord:
        record = self.registry.get(worker_id)
        assert record is not None
        return record
