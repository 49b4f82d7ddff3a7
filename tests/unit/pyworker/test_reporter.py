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
