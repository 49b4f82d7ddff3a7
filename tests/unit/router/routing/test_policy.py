from __future__ import annotations

import random
from collections import Counter

from router.routing.policy import choose, least_expected_wait
from router.routing.registry import WorkerRecord, WorkerRegistry
from tests.unit.router.helpers import report


def workers(*specs: tuple[str, float, float]) -> list[WorkerRecord]:
    registry = WorkerRegistry(stale_after_s=20, settle_s=2)
    records = []
    for worker_id, perf, load in specs:
        record = registry.apply_report(
            report(worker_id, max_perf=perf, in_flight_workload=load), now=0
        )
        assert record is not None
        records.append(record)
    return records


def test_no_candidates_no_worker() -> None:
    assert least_expected_wait([], random.Random(0)) is None


def test_the_least_expected_wait_wins_not_the_least_load() -> None:
    # fast: 300 tokens at 300 tok/s = 1 s; slow: 100 tokens at 50 tok/s = 2 s
    chosen = least_expected_wait(workers(("slow", 50, 100), ("fast", 300, 300)), random.Random(0))
    assert chosen is not None
    assert chosen.id == "fast"


def test_ties_are_broken_at_random() -> None:
    candidates = workers(("a", 100, 0), ("b", 100, 0), ("c", 100, 0))
    rng = random.Random(1)
    picks = Counter(least_expected_wait(candidates, rng).id for _ in range(300))  # type: ignore[union-attr]
    assert set(picks) == {"a", "b", "c"}
    assert min(picks.values()) > 50


def test_avoided_workers_are_used_only_when_nothing_else_is_ready() -> None:
    [only] = workers(("only", 100, 0))
    assert choose([only], random.Random(0), avoid=[only.url]) is only
