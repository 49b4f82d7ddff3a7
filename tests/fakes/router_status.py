"""A router's `/status` body for fakes: endpoints whose workers are in the given states."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from protocol.router_status import EndpointStatus, RouterStatus, WorkerStatus

__all__ = ["status_with"]


def status_with(endpoints: Mapping[str, Sequence[str]]) -> RouterStatus:
    """Each endpoint named in `endpoints` with one idle worker per state listed for it."""
    return RouterStatus(
        endpoints=[
            EndpointStatus(
                name=name,
                endpoint_state="active",
                max_workers=16,
                waiting=0,
                workers=[_worker(f"{name}-{i}", state) for i, state in enumerate(states)],
            )
            for name, states in endpoints.items()
        ],
        waiting=0,
    )


def _worker(worker_id: str, state: str) -> WorkerStatus:
    return WorkerStatus(
        id=worker_id,
        url=f"http://127.0.0.1:9/{worker_id}",
        state=state,
        max_perf=100.0,
        expected_load=0.0,
        pending_cost=0.0,
        expected_wait_s=0.0,
        error_msg="",
        last_report_age_s=0.5,
    )
