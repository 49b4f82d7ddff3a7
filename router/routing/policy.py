"""The routing policy: the worker with the least expected wait, ties broken at random.

Expected wait is a worker's expected load (tokens in flight) over its measured max_perf
(tokens/s), so faster workers get proportionally more of the traffic. `choose` adds the two
preferences a request may state: workers to avoid (a retry after one failed), skipped while
another is ready, and a session's previous worker, kept while it is not overloaded.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Collection, Sequence

from protocol import WorkerState
from router.routing.registry import WorkerRecord

__all__ = ["LoadIndex", "choose", "least_expected_wait", "overloaded"]


def least_expected_wait(
    candidates: Sequence[WorkerRecord], rng: random.Random
) -> WorkerRecord | None:
    if not candidates:
        return None
    best = min(worker.expected_wait_s for worker in candidates)
    tied = [worker for worker in candidates if worker.expected_wait_s <= best]
    return tied[0] if len(tied) == 1 else rng.choice(tied)


def overloaded(worker: WorkerRecord, max_wait_s: float) -> bool:
    """Too busy to keep a session: it says so, or its expected wait is over `max_wait_s`."""
    return worker.state is WorkerState.BUSY or worker.expected_wait_s > max_wait_s


def choose(
    candidates: Sequence[WorkerRecord],
    rng: random.Random,
    *,
    avoid: Collection[str] = (),
    strict: bool = False,
) -> WorkerRecord | None:
    """The worker for one ticket among routable `candidates`: the least expected wait among the
    workers not avoided, or among all when every one is avoided (a busy worker beats none),
    unless `strict` (never one avoided: a proxy retrying after a failure). Session affinity is
    `RouteService.pick`'s, before it asks."""
    if avoid:
        preferred = [worker for worker in candidates if worker.url not in avoid]
        return least_expected_wait(preferred if strict else preferred or candidates, rng)
    return least_expected_wait(candidates, rng)


Entry = tuple[float, float, int, int, WorkerRecord]
"""(expected wait, random tie-break, sequence, the worker's stamp then, worker)"""


class LoadIndex:
    """The routable workers of one endpoint in a heap ordered by expected wait, so the least
    expected wait costs O(log n) instead of a scan of every worker. Ties break at random.

    Entries are lazy: a worker whose load changed gets a new entry and its old one is skipped
    when it reaches the top (its stamp no longer matches). `rebuild` starts over (membership or
    health changed); the heap is compacted when skipped entries pile up.
    """

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._heap: list[Entry] = []
        self._sequence = 0
        self._members = 0

    def rebuild(self, workers: Sequence[WorkerRecord]) -> None:
        self._heap = [self._entry(worker) for worker in workers]
        heapq.heapify(self._heap)
        self._members = len(workers)

    def _entry(self, worker: WorkerRecord) -> Entry:
        self._sequence += 1
        return (worker.expected_wait_s, self._rng.random(), self._sequence, worker.stamp, worker)

    def update(self, worker: WorkerRecord) -> None:
        """The worker's load changed: index it at its new expected wait."""
        heapq.heappush(self._heap, self._entry(worker))
        if len(self._heap) > 4 * self._members + 64:
            live = {id(entry[4]): entry[4] for entry in self._heap if entry[3] == entry[4].stamp}
            self.rebuild(list(live.values()))

    def best(self, usable: Callable[[WorkerRecord], bool]) -> WorkerRecord | None:
        """The worker with the least expected wait that is `usable` now. An unusable one leaves
        the index (a rebuild brings it back once it serves again)."""
        heap = self._heap
        while heap:
            _, _, _, stamp, worker = heap[0]
            if stamp != worker.stamp:
                heapq.heappop(heap)  # superseded by a newer entry
            elif not usable(worker):
                heapq.heappop(heap)
                self._members = max(self._members - 1, 0)
            else:
                return worker
        return None
