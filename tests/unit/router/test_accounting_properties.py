"""Load accounting under any interleaving of tickets, reports, expiries, failures and removals:
the pending cost always equals what the deques hold, and nothing is left once tickets are done."""

from __future__ import annotations

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import WorkerState
from router.registry import PendingTicket, WorkerRegistry
from router.routing import LoadIndex, choose
from tests.unit.router.helpers import report

WORKERS = ["w1", "w2", "w3"]
TTL_S = 30.0

operation = st.one_of(
    st.tuples(st.just("ticket"), st.floats(0.5, 5000), st.sampled_from(WORKERS)),
    st.tuples(st.just("report"), st.floats(0, 5000), st.sampled_from(WORKERS)),
    st.tuples(st.just("stop"), st.just(0.0), st.sampled_from(WORKERS)),
    st.tuples(st.just("fail"), st.just(0.0), st.sampled_from(WORKERS)),
    st.tuples(st.just("tick"), st.floats(0, 40), st.just("")),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(operation, max_size=60), st.randoms(use_true_random=False))
def test_pending_cost_never_leaks(ops: list[tuple[str, float, str]], rng: random.Random) -> None:
    registry = WorkerRegistry(stale_after_s=1e9, settle_s=2.0)
    now = 0.0
    issued = 0.0
    for kind, value, worker_id in ops:
        if kind == "ticket":
            registry.expire_due(now)
            candidates = registry.routable("default", now)
            worker = choose(candidates, rng, avoid=[f"http://127.0.0.1/{worker_id}"])
            if worker is not None:
                worker.take_reqnum()
                registry.add_pending(worker, PendingTicket(value, now, now + TTL_S))
                issued += value
        elif kind == "report":
            registry.apply_report(report(worker_id, in_flight_workload=value), now)
        elif kind == "stop":
            registry.apply_report(report(worker_id, state=WorkerState.STOPPED), now)
        elif kind == "fail":
            registry.mark_failed(worker_id, now)
        else:
            now += value
        for worker in registry:
            assert worker.pending_workload >= -1e-6
            assert math.isclose(
                worker.pending_workload, sum(t.cost for t in worker.pending), abs_tol=1e-6
            )
        assert registry.pending_total() <= issued + 1e-6
    registry.expire_pending(now + TTL_S)
    assert registry.pending_total() == 0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(WORKERS), max_size=40))
def test_reqnums_strictly_increase_per_worker(picks: list[str]) -> None:
    floor = [10]
    registry = WorkerRegistry(stale_after_s=1e9, settle_s=0, reqnum_floor=lambda: floor[0])
    last: dict[str, int] = {}
    for worker_id in picks:
        record = registry.apply_report(report(worker_id), 0.0)
        assert record is not None
        reqnum = record.take_reqnum()
        floor[0] += 1
        assert reqnum > last.get(worker_id, -1)
        last[worker_id] = reqnum
        if reqnum % 3 == 0:  # it leaves and comes back: its numbers still go up
            registry.remove(worker_id)


def test_mixed_gpus_are_used_in_proportion_to_their_perf() -> None:
    registry = WorkerRegistry(stale_after_s=1e9, settle_s=1e9)
    perfs = {"fast": 300.0, "mid": 200.0, "slow": 100.0}
    for worker_id, perf in perfs.items():
        registry.apply_report(report(worker_id, max_perf=perf), 0.0)
    rng = random.Random(1)
    counts = dict.fromkeys(perfs, 0)
    for _ in range(600):
        worker = choose(registry.routable("default", 0.0), rng)
        assert worker is not None
        registry.add_pending(worker, PendingTicket(10, 0.0, 1e9))
        counts[worker.id] += 1
    assert counts == {"fast": 300, "mid": 200, "slow": 100}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(1, 1000), min_size=1, max_size=12),
    st.lists(st.tuples(st.sampled_from(["ticket", "report"]), st.floats(0.5, 500)), max_size=80),
    st.randoms(use_true_random=False),
)
def test_the_load_index_always_picks_the_least_expected_wait(
    perfs: list[float], ops: list[tuple[str, float]], rng: random.Random
) -> None:
    registry = WorkerRegistry(stale_after_s=1e9, settle_s=0.5)
    for index, perf in enumerate(perfs):
        registry.apply_report(report(f"w{index}", max_perf=perf), 0.0)
    load_index = LoadIndex(rng)
    load_index.rebuild(registry.routable("default", 0.0))
    registry.touched.clear()
    now = 0.0
    for kind, value in ops:
        now += 0.1
        if kind == "report":
            worker_id = f"w{rng.randrange(len(perfs))}"
            record = registry.apply_report(
                report(worker_id, in_flight_workload=value, max_perf=perfs[int(worker_id[1:])]), now
            )
            assert record is not None
            load_index.update(record)
            continue
        chosen = load_index.best(lambda worker: True)
        assert chosen is not None
        best = min(worker.expected_wait_s for worker in registry.routable("default", now))
        assert chosen.expected_wait_s == best
        registry.add_pending(chosen, PendingTicket(value, now, now + 1e6))
        load_index.update(chosen)
