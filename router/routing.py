"""The routing policy: the worker with the least expected wait, ties broken at random.

Expected wait is a worker's expected load (tokens in flight) over its measured max_perf
(tokens/s), so faster workers get proportionally more of the traffic.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from router.registry import WorkerRecord

__all__ = ["least_expected_wait"]


def least_expected_wait(
    candidates: Sequence[WorkerRecord], rng: random.Random
) -> WorkerRecord | None:
    if not candidates:
        return None
    best = min(worker.expected_wait_s for worker in candidates)
    tied = [worker for worker in candidates if worker.expected_wait_s <= best]
    return tied[0] if len(tied) == 1 else rng.choice(tied)
