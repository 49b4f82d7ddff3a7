from __future__ import annotations

from typing import Any

from protocol import WorkerState
from router.routing.registry import MIN_PERF, PendingTicket, WorkerRecord, WorkerRegistry
from tests.unit.router.helpers import report


def registry() -> WorkerRegistry:
    return WorkerRegistry(stale_after_s=20, settle_s=2)


def one_worker(*tickets: PendingTicket, **fields: Any) -> tuple[WorkerRegistry, WorkerRecord]:
    """A registry whose one worker, `w1`, reported `fields` at 0 and holds `tickets`."""
    workers = registry()
    record = workers.apply_report(report(**fields), now=0)
    assert record is not None
    for ticket in tickets:
        workers.add_pending(record, ticket)
    return workers, record


def pending(
    cost: float,
    reqnum: int,
    issued_at: float = 0,
    expires_at: float = 60,
    request_idx: int | None = None,
) -> PendingTicket:
    """A ticket of `cost`, issued at 0 and valid for 60 s unless told otherwise."""
    return PendingTicket(cost, issued_at, expires_at, reqnum, request_idx)


def test_a_report_registers_a_worker() -> None:
    workers = registry()
    record = workers.apply_report(report(), now=10)
    assert record is not None
    assert (record.state, record.max_perf, record.url) == (WorkerState.READY, 100, report().url)
    assert [w.id for w in workers.routable("default", now=10)] == ["w1"]


def test_only_serving_fresh_workers_of_the_endpoint_are_routable() -> None:
    workers = registry()
    workers.apply_report(report("loading", state=WorkerState.LOADING), now=0)
    workers.apply_report(report("error", state=WorkerState.ERROR), now=0)
    workers.apply_report(report("busy", state=WorkerState.BUSY), now=0)
    workers.apply_report(report("other", endpoint="other"), now=0)
    workers.apply_report(report("stale"), now=-30)
    assert [w.id for w in workers.routable("default", now=0)] == ["busy"]
    assert workers.counts_by_state("default", now=0) == {
        "busy": 1,
        "error": 1,
        "loading": 1,
        "stale": 1,
    }


def test_a_stopped_report_removes_the_worker() -> None:
    workers = registry()
    workers.apply_report(report(), now=0)
    assert workers.apply_report(report(state=WorkerState.STOPPED), now=1) is None
    assert len(workers) == 0


def test_expected_load_counts_unsettled_tickets() -> None:
    _, record = one_worker(pending(150, reqnum=1), in_flight_workload=50)
    assert record.expected_load == 200
    assert record.expected_wait_s == 2.0


def test_a_report_settles_tickets_issued_long_enough_before_it() -> None:
    workers, record = one_worker(pending(10, reqnum=1), pending(20, reqnum=2, issued_at=2.5))
    workers.apply_report(report(in_flight_workload=10), now=3)
    assert [t.cost for t in record.pending] == [20]
    assert record.expected_load == 30


def test_expired_tickets_stop_counting() -> None:
    workers, record = one_worker(pending(10, reqnum=1, expires_at=5))
    workers.expire_pending(now=6)
    assert record.expected_load == 0


def test_a_silent_worker_s_load_stops_counting_once_it_is_stale() -> None:
    """A worker killed under load reports no more: neither what it last reported in flight nor
    its unexpired tickets count once it is stale (its next report, if any, says what it runs)."""
    workers, record = one_worker(pending(30, reqnum=1, expires_at=60), in_flight_workload=50)
    workers.expire_pending(now=20)
    assert record.expected_load == 80  # not stale yet: all of it counts
    workers.expire_pending(now=21)
    assert (record.expected_load, workers.pending_total()) == (0, 0)
    assert not workers.release(record, 1)  # its cost came back once, with the staleness
    workers.apply_report(report(in_flight_workload=40), now=25)
    assert record.expected_load == 40


def test_unmeasured_workers_use_a_minimum_perf() -> None:
    _, record = one_worker(max_perf=0, in_flight_workload=3)
    assert record.expected_wait_s == 3 / MIN_PERF


def test_reqnums_increase_and_start_above_a_restarted_routers() -> None:
    first = registry().apply_report(report(), now=1000.0)
    assert first is not None
    issued = [first.take_reqnum() for _ in range(3)]
    assert issued == sorted(set(issued))
    restarted = registry().apply_report(report(), now=1001.0)
    assert restarted is not None
    assert restarted.take_reqnum() > issued[-1]


def test_a_released_ticket_stops_counting_once() -> None:
    workers, record = one_worker(pending(10, reqnum=1), pending(20, reqnum=2))
    assert workers.release(record, 2) is True  # out of order: the gateway's requests end so
    assert (record.expected_load, [t.reqnum for t in record.pending]) == (10, [1])
    assert workers.release(record, 2) is False
    assert record.expected_load == 10


def test_a_ticket_settled_expired_or_removed_is_not_released_again() -> None:
    workers, record = one_worker(
        pending(10, reqnum=1),
        pending(20, reqnum=2, issued_at=1, expires_at=5),
        pending(40, reqnum=3, issued_at=9),
    )
    workers.apply_report(report(in_flight_workload=10), now=10)  # settles 1, expires 2
    assert workers.release(record, 1) is False
    assert workers.release(record, 2) is False
    assert record.expected_load == 10 + 40  # the report's figure, and ticket 3
    workers.remove("w1")
    assert workers.release(record, 3) is False
    assert record.pending_workload == 0


def test_a_request_its_worker_reports_ended_stops_counting_once() -> None:
    """Vast's PyWorker names the requests that ended by `request_idx` (`/delete_requests/`):
    that worker's oldest ticket for the request is released, through `release` by its reqnum."""
    workers, record = one_worker(
        pending(10, reqnum=1, request_idx=7),
        pending(20, reqnum=2, request_idx=8),
        pending(40, reqnum=3, request_idx=7),
    )
    assert workers.release_request("w1", 7) is True  # the older of request 7's two tickets
    assert [t.reqnum for t in record.pending] == [2, 3]
    assert workers.release(record, 1) is False  # gone: not returned a second time
    assert workers.release_request("w1", 7) is True
    assert workers.release_request("w1", 7) is False
    assert workers.release_request("w1", 99) is False  # no such request on it
    assert workers.release_request("other", 8) is False  # not that worker's
    assert record.expected_load == 20
    assert workers.release(record, 2) is True  # and the gateway's own end still works
    assert record.expected_load == 0
