"""The narrow seam between the router's core (endpoints, registry, routing, tickets) and the
parts built on top of it: gateway mode and the Vast.ai compatibility routes.

Those parts see the core only through `Backplane`, stored in the app under `BACKPLANE`.
`CoreBackplane` is the implementation: a thin adapter over the core's `RouteService` (the
endpoint store, the worker registry, the routing and the ticket issuer), so a change in how
endpoints are stored or workers are chosen changes this adapter, not the gateway or the Vast
routes. A gateway ticket (`GatewayTicket`) carries its own `done()`, which hands its cost back
through the same accounting as a worker's report, the ticket's expiry or the worker's removal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from protocol import Ticket
from router.endpoints.models import Endpoint
from router.routing.service import Issued, RouteService

__all__ = [
    "BACKPLANE",
    "Backplane",
    "CoreBackplane",
    "EndpointView",
    "GatewayTicket",
    "WorkerView",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EndpointView:
    """What the gateway and the Vast routes may know of an endpoint."""

    name: str
    api_key: str
    created_at: float
    params: Mapping[str, Any] = field(default_factory=dict)
    """Vast's endpoint parameters (min_load, max_workers, ..., endpoint_state)."""
    allow_private_workers: bool = False
    """The gateway may connect to its workers on loopback, private and link-local addresses."""


@dataclass(frozen=True)
class WorkerView:
    id: str
    url: str
    state: str
    max_perf: float
    expected_load: float
    last_report_at: float


@dataclass(frozen=True, eq=False)
class GatewayTicket:
    """A ticket for one request the gateway sends itself, with its cost counted on the worker.

    Call `done()` once the request is over, whatever its outcome (answered, failed at the
    worker, or the client left): the cost stops counting at once. Only the first call counts,
    and only while the ticket still counts (not yet settled by the worker's report, expired,
    or dropped with the worker), so a cost is never returned twice."""

    signed: Ticket
    """The signed ticket, sent to the worker as `auth_data`."""
    done: Callable[[], bool]
    """True when this call returned the cost; False when it was back already."""

    @property
    def url(self) -> str:
        """The worker's URL, as it reported it (what `avoid` compares)."""
        return self.signed.url

    @property
    def request_idx(self) -> int | None:
        return self.signed.request_idx


class Backplane(Protocol):
    def endpoints(self) -> Sequence[EndpointView]: ...

    def endpoint(self, name: str) -> EndpointView | None: ...

    def authenticate(self, name: str, presented: str | None) -> EndpointView:
        """The endpoint, if `presented` is its API key; EndpointNotFound, else Unauthorized."""
        ...

    def is_admin_key(self, presented: str) -> bool:
        """True for a key that may see every endpoint and its API key."""
        ...

    async def ticket(
        self,
        endpoint: str,
        cost: float,
        *,
        avoid: frozenset[str],
        wait: bool,
        request_idx: int | None = None,
    ) -> GatewayTicket | None:
        """A signed ticket for a ready worker of `endpoint` whose URL is not in `avoid`, with
        `cost` counted in flight on it until `GatewayTicket.done()`; with `wait`, wait the
        router's route timeout for one. `request_idx`: a retry of that request (an earlier
        ticket's), not new demand. None when no such worker came; a RouterError when the
        endpoint routes nothing (gone, suspended) or too many requests wait already."""
        ...

    def workers(self, endpoint: str) -> Sequence[WorkerView]: ...

    def requests_ended(self, worker_id: str, request_idxs: Sequence[int]) -> int:
        """The worker `worker_id` says these requests (by `request_idx`) have ended: their
        tickets' costs stop counting on it now, each once. How many came back."""
        ...

    def worker_failed(self, endpoint: str, url: str, reason: str) -> None:
        """A request to this worker failed: before its first byte (connection, 5xx, 429) or
        mid-stream (reset, closed early, stalled). Not for a client that left."""
        ...


class CoreBackplane:
    """`Backplane` over the router's `RouteService`: every endpoint of its store, its routing
    (strict about `avoid`: a gateway retry never goes back to a worker that failed)."""

    def __init__(self, service: RouteService) -> None:
        self._service = service

    def endpoints(self) -> Sequence[EndpointView]:
        return [_endpoint_view(endpoint) for endpoint in self._service.store.endpoints.values()]

    def endpoint(self, name: str) -> EndpointView | None:
        endpoint = self._service.store.endpoints.get(name)
        return _endpoint_view(endpoint) if endpoint is not None else None

    def authenticate(self, name: str, presented: str | None) -> EndpointView:
        return _endpoint_view(self._service.authenticate(name, presented))

    def is_admin_key(self, presented: str) -> bool:
        return self._service.is_admin_key(presented)

    async def ticket(
        self,
        endpoint: str,
        cost: float,
        *,
        avoid: frozenset[str],
        wait: bool,
        request_idx: int | None = None,
    ) -> GatewayTicket | None:
        service = self._service
        issued = await service.proxy_ticket(
            endpoint, cost, request_idx=request_idx, avoid=avoid, wait=wait
        )
        if issued is None:
            return None
        return GatewayTicket(issued.ticket, _done(service, issued))

    def workers(self, endpoint: str) -> Sequence[WorkerView]:
        service = self._service
        now = service.clock()
        return [
            WorkerView(
                id=worker.id,
                url=worker.url,
                state=service.registry.state_of(worker, now),
                max_perf=worker.max_perf,
                expected_load=worker.expected_load,
                last_report_at=worker.last_report_at,
            )
            for worker in service.workers(endpoint)
        ]

    def requests_ended(self, worker_id: str, request_idxs: Sequence[int]) -> int:
        return self._service.requests_ended(worker_id, request_idxs)

    def worker_failed(self, endpoint: str, url: str, reason: str) -> None:
        log.warning("worker %s of endpoint %r failed a gateway request: %s", url, endpoint, reason)
        self._service.worker_failed(url)


def _done(service: RouteService, issued: Issued) -> Callable[[], bool]:
    def done() -> bool:
        return service.ticket_done(issued)

    return done


def _endpoint_view(endpoint: Endpoint) -> EndpointView:
    params = {**endpoint.params.model_dump(), "endpoint_state": endpoint.endpoint_state.value}
    return EndpointView(
        name=endpoint.name,
        api_key=endpoint.api_key.get_secret_value(),
        created_at=endpoint.created_at,
        params=params,
        allow_private_workers=endpoint.allow_private_workers,
    )


BACKPLANE: web.AppKey[Backplane] = web.AppKey("backplane")
