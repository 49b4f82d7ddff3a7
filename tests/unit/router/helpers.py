from __future__ import annotations

from typing import Any

from protocol import WorkerState, WorkerStatusReport


def report(worker_id: str = "w1", **overrides: Any) -> WorkerStatusReport:
    fields: dict[str, Any] = {
        "id": worker_id,
        "url": f"http://127.0.0.1/{worker_id}",
        "state": WorkerState.READY,
        "max_perf": 100.0,
        "in_flight_workload": 0.0,
    }
    return WorkerStatusReport.model_validate({**fields, **overrides})
