"""Worker status reports (`POST /worker_status/`): Vast's fields plus ours (architecture §4.4)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["MAX_ERROR_MSG_CHARS", "WorkerState", "WorkerStatusReport"]

MAX_ERROR_MSG_CHARS = 4096
"""The longest `error_msg` a report may carry; a worker sends the first this many characters."""


class WorkerState(StrEnum):
    """Where a worker is in its life. Only `ready` and `busy` workers get routes."""

    STARTING = "starting"  # process up, backend not yet reachable
    LOADING = "loading"  # backend is loading the model
    BENCHMARKING = "benchmarking"  # measuring max_perf before taking traffic
    READY = "ready"  # serving, with room for more
    BUSY = "busy"  # serving, at or above its measured capacity
    PARKED = "parked"  # holding its loaded model, taking no requests: resumes at once
    DRAINING = "draining"  # finishing in-flight work, taking no new tickets
    STOPPED = "stopped"  # no longer serving
    ERROR = "error"  # the backend failed; `error_msg` says why

    @property
    def routable(self) -> bool:
        return self in (WorkerState.READY, WorkerState.BUSY)


class WorkerStatusReport(BaseModel):
    """One report. Field names (typo included) follow Vast's PyWorker so its router reads ours.

    A report comes from a worker host we do not control, so every value is bounded: numbers are
    finite (an infinite `max_perf` would make every expected wait zero and win every route),
    texts and lists have a length limit."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    id: str = Field(min_length=1, max_length=128)
    url: str = Field(min_length=1, max_length=2048)
    endpoint: str = Field(default="default", max_length=128)
    loadtime: float = Field(default=0.0, ge=0.0)
    cur_load: float = Field(default=0.0, ge=0.0, description="workload of in-flight requests")
    max_perf: float = Field(
        default=0.0,
        ge=0.0,
        description="tokens/s at saturation: measured while serving, the start-up benchmark's "
        "until then (the figure routing and scaling use)",
    )
    cur_perf: float = Field(default=0.0, ge=0.0, description="tokens/s served recently")
    startup_perf: float = Field(
        default=0.0, ge=0.0, description="tokens/s the start-up benchmark measured"
    )
    error_msg: str = Field(default="", max_length=MAX_ERROR_MSG_CHARS)
    num_requests_working: int = Field(default=0, ge=0)
    num_requests_recieved: int = Field(default=0, ge=0)
    state: WorkerState = WorkerState.STARTING
    queue_time: float = Field(default=0.0, ge=0.0, description="expected wait for a new request, s")
    in_flight_workload: float = Field(default=0.0, ge=0.0)
    version: str = Field(default="", max_length=64)
    unsecured: bool = Field(default=False, description="the worker checks no tickets")
    warnings: list[Annotated[str, Field(max_length=1024)]] = Field(
        default_factory=list, max_length=16, description="what an operator must know"
    )
    epoch: str = Field(
        default="", max_length=64, description="this start of the worker; its tickets name it"
    )

    @model_validator(mode="before")
    @classmethod
    def _vast_report(cls, data: Any) -> Any:
        """Vast's PyWorker sends `id` as a number and no `state` (nor `in_flight_workload`):
        take the id as text, and the state from what it does send:

            error_msg non-empty             -> error
            loadtime > 0 or max_perf > 0    -> ready   (it reports both once its model loaded)
            otherwise                       -> loading
            cur_load                        -> in_flight_workload
        """
        if not isinstance(data, dict):
            return data
        if isinstance(data.get("id"), int) and not isinstance(data.get("id"), bool):
            data = {**data, "id": str(data["id"])}
        if "state" not in data:
            data = {**data, "state": _vast_state(data)}
            if "in_flight_workload" not in data and _is_number(data.get("cur_load")):
                data["in_flight_workload"] = data["cur_load"]
        return data


def _vast_state(report: dict[str, Any]) -> WorkerState:
    if isinstance(report.get("error_msg"), str) and report["error_msg"]:
        return WorkerState.ERROR
    loaded = any(_is_number(report.get(k)) and report[k] > 0 for k in ("loadtime", "max_perf"))
    return WorkerState.READY if loaded else WorkerState.LOADING


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
