"""The routing policy: the worker with the least expected wait, ties broken at random.

Expected wait is a worker's expected load (tokens in flight) over its measured max_perf
(tokens/s), so faster workers get proportionally more of the traffic. `choose` adds the two
preferences a request may state: workers to avoid (a retry after one failed), skipped while
another is ready, and a session's previous worker, kept while it is not overloaded.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence

from protocol import WorkerState
from router.registry import WorkerRecord

__all__ = ["choose", "least_expected_wait", "overloaded"]


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
    sticky: WorkerRecord | None = None,
    sticky_max_wait_s: float = 0.0,
) -> WorkerRecord | None:
    """The worker for one ticket among routable `candidates`.

    `sticky` (the session's previous worker) wins if it is still a candidate, not avoided and
    not overloaded; otherwise the least expected wait among the workers not avoided, or among
    all when every one is avoided (a busy worker beats none).
    """
    if (
        sticky is not None
        and sticky.url not in avoid
        and not overloaded(sticky, sticky_max_wait_s)
        and any(worker is sticky for worker in candidates)
    ):
        return sticky
    if avoid:
        preferred = [worker for worker in candidates if worker.url not in avoid]
        return least_expected_wait(preferred or candidates, rng)
    return least_expected_wait(candidates, rng)
