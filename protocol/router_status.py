"""The router's `GET /status` body: each endpoint with its workers, as the router sees them.

The router writes it (`model_dump()`, then JSON); its HTML status page and the bench's workers
timeline read it by attribute. What a worker says of itself is another document
(`protocol.status.WorkerStatusReport`). Fields are declared in the order the router writes them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["EndpointStatus", "RouterStatus", "WorkerStatus"]


class WorkerStatus(BaseModel):
    """One worker as the router counts it."""

    model_config = ConfigDict(frozen=True)

    id: str
    url: str
    state: str
    """Its `WorkerState`, or `stale` when its reports stopped coming."""
    max_perf: float
    """Tokens/s at saturation, the figure routing and scaling use: measured while serving, or
    its start-up benchmark's until serving has measured it."""
    startup_perf: float = 0.0
    """Tokens/s its start-up benchmark measured."""
    expected_load: float
    """Workload in flight: what it last reported plus the tickets issued since."""
    pending_cost: float
    """Workload of the tickets issued since its last report."""
    expected_wait_s: float
    """How long a new request would wait for it, at its `max_perf`."""
    error_msg: str
    last_report_age_s: float


class EndpointStatus(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    endpoint_state: str
    """`active`, `suspended` or `stopped` (Vast's names)."""
    max_workers: int
    waiting: int
    """Route requests of this endpoint waiting for a worker now."""
    workers: list[WorkerStatus]


class RouterStatus(BaseModel):
    model_config = ConfigDict(frozen=True)

    endpoints: list[EndpointStatus]
    waiting: int
    """Route requests waiting for a worker now, all endpoints together."""

    def endpoint(self, name: str) -> EndpointStatus | None:
        """The endpoint named `name`; None when the router has none of that name."""
        return next((endpoint for endpoint in self.endpoints if endpoint.name == name), None)
