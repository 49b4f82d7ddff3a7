"""The router's `/status` body (`protocol.RouterStatus`): every endpoint of the store, with its
state, its limit, its waiting requests and its workers as the registry counts them. Pure: it
reads the service and changes nothing (the caller expires due tickets first)."""

from __future__ import annotations

from protocol.router_status import EndpointStatus, RouterStatus, WorkerStatus
from router.endpoints.models import Endpoint
from router.routing.registry import WorkerRecord, WorkerRegistry
from router.routing.service import RouteService

__all__ = ["router_status"]


def router_status(service: RouteService, now: float) -> RouterStatus:
    endpoints = [
        _endpoint_status(service, endpoint, now) for endpoint in service.store.endpoints.values()
    ]
    return RouterStatus(endpoints=endpoints, waiting=service.queue.waiting)


def _endpoint_status(service: RouteService, endpoint: Endpoint, now: float) -> EndpointStatus:
    registry = service.registry
    return EndpointStatus(
        name=endpoint.name,
        endpoint_state=endpoint.endpoint_state.value,
        max_workers=endpoint.params.max_workers,
        waiting=service.queue.waiting_for(endpoint.name),
        workers=[
            _worker_status(registry, worker, now)
            for worker in registry
            if worker.endpoint == endpoint.name
        ],
    )


def _worker_status(registry: WorkerRegistry, worker: WorkerRecord, now: float) -> WorkerStatus:
    return WorkerStatus(
        id=worker.id,
        url=worker.url,
        state=registry.state_of(worker, now),
        max_perf=worker.max_perf,
        startup_perf=worker.startup_perf,
        expected_load=worker.expected_load,
        pending_cost=worker.pending_workload,
        expected_wait_s=worker.expected_wait_s,
        error_msg=worker.error_msg,
        last_report_age_s=round(now - worker.last_report_at, 3),
    )
