"""What a worker's status report says: built from its lifecycle and load, always valid."""

from __future__ import annotations

from protocol import WorkerState
from protocol.status import MAX_ERROR_MSG_CHARS
from pyworker.lifecycle import Lifecycle
from pyworker.load import LoadTracker
from pyworker.reporter import build_report


def test_a_long_backend_error_is_cut_to_what_a_report_may_carry() -> None:
    # A backend's traceback can run to pages; the router refuses a report whose error_msg is
    # longer than the limit, so the worker sends the first part, where the cause is named.
    lifecycle = Lifecycle(clock=lambda: 0.0)
    lifecycle.move_to(WorkerState.ERROR, "CUDA out of memory. " + "x" * 10_000)
    report = build_report(
        worker_id="w",
        url="http://10.0.0.1:3000",
        endpoint="e",
        lifecycle=lifecycle,
        load=LoadTracker(clock=lambda: 0.0),
    )
    assert report.state is WorkerState.ERROR
    assert len(report.error_msg) == MAX_ERROR_MSG_CHARS
    assert report.error_msg.startswith("CUDA out of memory.")


def test_a_report_carries_the_live_capacity_and_the_startup_one() -> None:
    """Vast's router reads `max_perf`: it is the figure measured while serving, once there is
    one; the start-up benchmark's figure goes beside it, and the queue time follows the live one."""
    now = [0.0]
    load = LoadTracker(clock=lambda: now[0])
    load.capacity.start_from(4912.0, saturation_requests=2)
    slots = [load.slot(10) for _ in range(2)]
    admitted = [slot.__enter__() for slot in slots]
    for slot in admitted:
        slot.start_serving()
    now[0] = 10.0  # two requests side by side for 10 s, 1000 tokens each: 200 tokens/s
    for slot in admitted:
        slot.tokens_served = 1000
        slot.__exit__(None, None, None)
    with load.slot(400):
        report = build_report(
            worker_id="w", url="http://10.0.0.1:3000", endpoint="e",
            lifecycle=Lifecycle(clock=lambda: 0.0), load=load,
        )  # fmt: skip
    assert (report.max_perf, report.startup_perf) == (200.0, 4912.0)
    assert report.queue_time == 2.0
