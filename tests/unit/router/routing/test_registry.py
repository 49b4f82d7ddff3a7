from __future__ import annotations

from protocol import WorkerState
from router.routing.registry import MIN_PERF, PendingTicket, WorkerRegistry
from tests.unit.router.helpers import report


def registry() -> WorkerRegistry:
    return WorkerRegistry(stale_after_s=20, settle_s=2)


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
    workers = registry()
    record = workers.apply_report(report(in_flight_workload=50), now=0)
    assert record is not None
    workers.add_pending(record, PendingTicket(cost=150, issued_at=0, expires_at=60, reqnum=1))
    assert record.expected_load == 200
    assert record.expected_wait_s == 2.0


def test_a_report_settles_tickets_issued_long_enough_before_it() -> None:
    workers = registry()
    record = workers.apply_report(report(), now=0)
    assert record is not None
    workers.add_pending(record, PendingTicket(cost=10, issued_at=0, expires_at=60, reqnum=1))
    workers.add_pending(record, PendingTicket(cost=20, issued_at=2.5, expires_at=60, reqnum=2))
    workers.apply_report(report(in_flight_workload=10), now=3)
    assert [t.cost for t in record.pending] == [20]
    assert record.expected_load == 30


def test_expired_tickets_stop_counting() -> None:
    workers = registry()
    record = workers.apply_report(report(), now=0)
    assert record is not None
    workers.add_pending(record, PendingTicket(cost=10, issued_at=0, expires_at=5, reqnum=1))
    workers.expire_pending(now=6)
    assert record.expected_load == 0


def test_unmeasured_workers_use_a_minimum_perf() -> None:
    record = registry().apply_report(report(max_perf=0, in_flight_workload=3), now=0)
    assert record is not None
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
    workers = registry()
    record = workers.apply_report(report(), now=0)
    assert record is not None
    workers.add_pending(record, PendingTicket(cost=10, issued_at=0, expires_at=60, reqnum=1))
    workers.add_pending(record, PendingTicket(cost=20, issued_at=0, expires_at=60, reqnum=2))
    assert workers.release(record, 2) is True  # out of order: the gateway's requests end so
    assert (record.expected_load, [t.reqnum for t in record.pending]) == (10, [1])
    assert workers.release(record, 2) is False
    assert record.expected_load == 10


def test_a_ticket_settled_expired_or_removed_is_not_released_again() -> None:
    workers = registry()
    record = workers.apply_report(report(), now=0)
    assert record is not None
    workers.add_pending(record, PendingTicket(cost=10, issued_at=0, expires_at=60, reqnum=1))
    workers.add_pending(record, PendingTicket(cost=20, issued_at=1, expires_at=5, reqnum=2))
    workers.add_pending(record, PendingTicket(cost=40, issued_at=9, expires_at=60, reqnum=3))
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
    workers = registry()
    record = workers.apply_report(report(), now=0)
    assert record is not None
    for reqnum, (cost, request_idx) in enumerate([(10, 7), (20, 8), (40, 7)], start=1):
        ticket = PendingTicket(cost, 0, 60, reqnum, request_idx=request_idx)
        workers.add_pending(record, ticket)
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
