"""Load accounting under any interleaving of tickets, reports, expiries, failures and removals
(and the ends of requests: those the router proxies in gateway mode, and those a worker reports
ended, as Vast's PyWorker does with /delete_requests/): the pending cost always
equals what the deques hold, is never negative, each ticket's cost comes back exactly once, and
nothing is left once tickets are done."""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from protocol import SigningKey, WorkerState
from router.autoscaler.demand import DemandSignal
from router.endpoints.models import Endpoint
from router.endpoints.store import EndpointStore
from router.keys.tickets import TicketIssuer
from router.routing.backplane import CoreBackplane, GatewayTicket
from router.routing.policy import LoadIndex, choose
from router.routing.registry import PendingTicket, WorkerRecord, WorkerRegistry
from router.routing.service import RouteService
from router.settings import RouterSettings
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
                reqnum = worker.take_reqnum()
                registry.add_pending(worker, PendingTicket(value, now, now + TTL_S, reqnum))
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
        registry.add_pending(worker, PendingTicket(10, 0.0, 1e9, worker.take_reqnum()))
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
        registry.add_pending(chosen, PendingTicket(value, now, now + 1e6, chosen.take_reqnum()))
        load_index.update(chosen)


gateway_operation = st.one_of(
    st.tuples(st.just("route"), st.floats(0.5, 5000), st.sampled_from(WORKERS)),
    st.tuples(st.just("route"), st.floats(0.5, 5000), st.just("")),  # any: the load index
    st.tuples(st.just("done"), st.integers(0, 1000), st.just("")),
    st.tuples(st.just("ended"), st.integers(0, 1000), st.just("")),  # the worker says so
    # a request routed again (its request_idx): to a given worker, or ("") to its first one
    st.tuples(st.just("retry"), st.integers(0, 1000), st.sampled_from([*WORKERS, ""])),
    st.tuples(st.just("report"), st.floats(0, 5000), st.sampled_from(WORKERS)),
    st.tuples(st.just("stop"), st.just(0), st.sampled_from(WORKERS)),
    st.tuples(st.just("fail"), st.just(0), st.sampled_from(WORKERS)),
    st.tuples(st.just("tick"), st.floats(0, 40), st.just("")),
)


@dataclass
class Proxied:
    """A ticket the gateway holds, and the worker record its cost was counted on."""

    ticket: GatewayTicket
    record: WorkerRecord
    cost: float
    done: bool = False
    ended: bool = False
    """Its worker reported its request_idx ended (it may have released another ticket of the
    same request on that worker: the oldest one still counting)."""

    def counted(self) -> bool:
        return any(t.reqnum == self.ticket.signed.reqnum for t in self.record.pending)


def gateway_core(now: list[float], settle_s: float) -> tuple[RouteService, CoreBackplane]:
    settings = RouterSettings(
        state_dir=Path("/nonexistent"),
        ticket_ttl_s=TTL_S,
        ticket_settle_s=settle_s,
        worker_stale_s=1e9,
        route_timeout_s=0,
    )
    registry = WorkerRegistry(stale_after_s=1e9, settle_s=settle_s)
    store = EndpointStore(None)
    store.put_endpoint(Endpoint(name="default", api_key=SecretStr("key")))
    issuer = TicketIssuer(SigningKey.generate(), registry, ttl_s=TTL_S)
    service = RouteService(
        settings,
        store,
        registry,
        issuer,
        clock=lambda: now[0],
        rng=random.Random(0),
        demand=DemandSignal(),
    )
    return service, CoreBackplane(service)


@settings(max_examples=300, deadline=None)
@given(st.lists(gateway_operation, max_size=60), st.sampled_from([0.0, 2.0]))
def test_a_proxied_requests_cost_comes_back_exactly_once(
    ops: list[tuple[str, float, str]], settle_s: float
) -> None:
    """The gateway's `done()` returns a ticket's cost at once if the ticket still counts, and
    changes nothing if a report, its expiry, the worker's removal or the worker's own word that
    the request ended (`requests_ended`, by request_idx, also for a retried request with two
    tickets on one worker) returned it first, or if it was done before. Once every request is
    over, no load is left, without waiting for any expiry."""
    now = [0.0]
    service, backplane = gateway_core(now, settle_s)
    registry = service.registry
    proxied: list[Proxied] = []

    async def route(worker_id: str, cost: float, request_idx: int | None = None) -> None:
        """To `worker_id` (the others avoided), or to any worker (no avoid: routing's load
        index, which must see every worker whose load a `done()` changed)."""
        targets = [worker_id] if worker_id else WORKERS
        others = frozenset(f"http://127.0.0.1/{w}" for w in WORKERS if w not in targets)
        ticket = await backplane.ticket(
            "default", cost, avoid=others, wait=False, request_idx=request_idx
        )
        if ticket is None:
            assert not any(w.healthy for w in registry if w.id in targets)
            return
        record = registry.get(ticket.url.rsplit("/", 1)[1])
        assert record is not None
        assert record.id in targets
        if not worker_id:  # the index's pick had the least expected wait before this ticket
            least = min(w.expected_wait_s for w in registry if w.healthy)
            assert record.expected_wait_s - cost / record.max_perf <= least + 1e-6
        proxied.append(Proxied(ticket, record, cost))

    def done(entry: Proxied) -> None:
        counted, before = entry.counted(), entry.record.pending_workload
        assert not (entry.done and counted)  # a done request never counts again
        assert entry.ticket.done() is counted
        returned = before - entry.record.pending_workload
        assert math.isclose(returned, entry.cost if counted else 0.0, abs_tol=1e-6)
        entry.done = True

    def worker_says_ended(entry: Proxied) -> None:
        """The entry's worker (by id: possibly a new record of the same id) reports the entry's
        request ended: the oldest ticket of that request still counting on the record the
        registry holds for that id comes back, once; every other ticket is untouched."""
        idx, record = entry.ticket.request_idx, registry.get(entry.record.id)
        assert idx is not None
        same = [e for e in proxied if e.ticket.request_idx == idx and e.record is record]
        expected = next((e for e in same if e.counted()), None)  # `proxied` is in issue order
        counting = {id(e): e.counted() for e in proxied}
        total = registry.pending_total()
        released = backplane.requests_ended(entry.record.id, [idx])
        assert released == (expected is not None)
        returned = total - registry.pending_total()
        assert math.isclose(returned, expected.cost if expected else 0.0, abs_tol=1e-6)
        for other in proxied:
            assert other.counted() == (counting[id(other)] and other is not expected)
        if expected is not None:
            expected.ended = True

    async def scenario() -> None:
        for kind, value, worker_id in ops:
            if kind == "route":
                await route(worker_id, value)
            elif kind == "done" and proxied:
                done(proxied[int(value) % len(proxied)])
            elif kind == "ended" and proxied:
                worker_says_ended(proxied[int(value) % len(proxied)])
            elif kind == "retry" and proxied:
                first = proxied[int(value) % len(proxied)]
                target = worker_id or first.record.id
                await route(target, first.cost, first.ticket.request_idx)
            elif kind == "report":
                registry.apply_report(report(worker_id, in_flight_workload=value), now[0])
            elif kind == "stop":
                registry.apply_report(report(worker_id, state=WorkerState.STOPPED), now[0])
            elif kind == "fail":
                registry.mark_failed(worker_id, now[0])
            elif kind == "tick":
                now[0] += value
            for entry in proxied:
                assert entry.record.pending_workload >= 0
                assert entry.record.expected_load >= 0
                assert math.isclose(
                    entry.record.pending_workload,
                    sum(t.cost for t in entry.record.pending),
                    abs_tol=1e-6,
                )
                assert not ((entry.done or entry.ended) and entry.counted())
            outstanding = sum(entry.cost for entry in proxied if not entry.done)
            assert registry.pending_total() <= outstanding + 1e-6
        for entry in proxied:  # every request ends: no ticket is left counting
            done(entry)
        assert registry.pending_total() == 0
        assert all(not entry.record.pending for entry in proxied)
        assert not any(entry.ticket.done() for entry in proxied)  # and none comes back twice
        idxs = {entry.ticket.request_idx for entry in proxied}
        assert not service.requests_ended(WORKERS[0], [i for i in idxs if i is not None])

    asyncio.run(scenario())
