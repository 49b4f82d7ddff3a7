"""Vast.ai's wire formats on the router side, as pure functions: the endpoint records its client
reads from `/api/v0/endptjobs/`, the worker records of `/get_endpoint_workers/`, and the status
reports its PyWorker (`vastai` package) sends to `/worker_status/`.

Vast's PyWorker reports no `state`, no `endpoint` and no `in_flight_workload`, and its `id` is an
integer (`CONTAINER_ID`); `normalize_report` fills ours in from its fields:

    error_msg non-empty             → state "error"
    loadtime > 0 or max_perf > 0    → state "ready"    (it reports both once its model loaded)
    otherwise                       → state "loading"
    cur_load (in-flight workload)   → in_flight_workload
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from router.backplane import EndpointView, WorkerView

__all__ = [
    "ENDPOINT_PARAMS",
    "endpoint_id",
    "endpoint_record",
    "master_token",
    "normalize_report",
    "numeric_id",
    "worker_record",
]

ENDPOINT_PARAMS = (
    "cold_workers",
    "max_workers",
    "min_load",
    "min_cold_load",
    "target_util",
    "cold_mult",
    "max_queue_time",
    "target_queue_time",
    "inactivity_timeout",
    "endpoint_state",
)

_VAST_STATUS = {
    "starting": "LOADING",
    "loading": "MODEL_LOADING",
    "benchmarking": "MODEL_LOADING",
    "ready": "IDLE",
    "busy": "BUSY",
    "draining": "STOPPING",
    "stopped": "STOPPED",
    "error": "ERROR",
}


def numeric_id(name: str) -> int:
    """A stable positive integer for a name: itself when it is one, else 31 bits of its SHA-256
    (Vast's client parses ids with `int()`)."""
    if name.isdigit():
        return int(name)
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:4], "big") >> 1


def endpoint_id(name: str) -> int:
    return numeric_id(f"endpoint:{name}")


def endpoint_record(endpoint: EndpointView) -> dict[str, Any]:
    """One entry of `results` in Vast's `GET /api/v0/endptjobs/` answer."""
    record: dict[str, Any] = {
        "id": endpoint_id(endpoint.name),
        "endpoint_name": endpoint.name,
        "api_key": endpoint.api_key,
        "user_id": 0,
        "created_at": endpoint.created_at,
        "endpoint_state": "active",
        "auto_delete_in_seconds": None,
        "auto_delete_due_24h": False,
    }
    record.update({k: endpoint.params[k] for k in ENDPOINT_PARAMS if k in endpoint.params})
    return record


def worker_record(worker: WorkerView) -> dict[str, Any]:
    """One entry of Vast's `POST /get_endpoint_workers/` answer (plus our `name` and `url`)."""
    return {
        "id": numeric_id(worker.id),
        "name": worker.id,
        "url": worker.url,
        "status": _VAST_STATUS.get(worker.state, worker.state.upper()),
        "cur_load": worker.expected_load,
        "perf": worker.max_perf,
        "measured_perf": worker.max_perf,
        "reqs_working": 0,
        "loaded_at": worker.last_report_at,
    }


def master_token(body: Any) -> str:
    """The `mtoken` Vast's PyWorker puts in its reports (its MASTER_TOKEN), or ""."""
    token = body.get("mtoken") if isinstance(body, Mapping) else None
    return token if isinstance(token, str) else ""


def normalize_report(body: Any, default_endpoint: str) -> Any:
    """A status report with our fields filled in from Vast's where it lacks them; anything
    that is not a JSON object comes back unchanged (for the validator to refuse)."""
    if not isinstance(body, Mapping):
        return body
    report = dict(body)
    if isinstance(report.get("id"), int) and not isinstance(report.get("id"), bool):
        report["id"] = str(report["id"])
    report.setdefault("endpoint", default_endpoint)
    if "state" not in report:
        report["state"] = _vast_state(report)
        if "in_flight_workload" not in report and _is_number(report.get("cur_load")):
            report["in_flight_workload"] = report["cur_load"]
    return report


def _vast_state(report: Mapping[str, Any]) -> str:
    if isinstance(report.get("error_msg"), str) and report["error_msg"]:
        return "error"
    loaded = any(_is_number(report.get(k)) and report[k] > 0 for k in ("loadtime", "max_perf"))
    return "ready" if loaded else "loading"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
