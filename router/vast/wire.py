"""Vast.ai's wire formats on the router side, as pure functions: the endpoint records its client
reads from `/api/v0/endptjobs/` and the worker records of `/get_endpoint_workers/`.

The status reports its PyWorker (`vastai` package) sends to `/worker_status/` are read by the
shared report model itself (`protocol.WorkerStatusReport`: integer id, no state); the token it
puts in their body (`mtoken`) by `router.credentials.master_token`.
"""

from __future__ import annotations

import hashlib
from typing import Any

from router.routing.backplane import EndpointView, WorkerView

__all__ = [
    "ENDPOINT_PARAMS",
    "endpoint_id",
    "endpoint_record",
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
    """A stable non-negative integer for any name: itself when it is ASCII digits, else 31 bits
    of its SHA-256 (Vast's client parses ids with `int()`). Other digits ("²", "١٢") are hashed
    like any text, and so is a lone surrogate (Python's json reads one from `"\\ud800"`)."""
    if name.isascii() and name.isdigit():
        return int(name)
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:4], "big") >> 1


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
