"""The narrow seam between the router's core (endpoints, registry, routing, tickets) and the
parts built on top of it: gateway mode and the Vast.ai compatibility routes.

Those parts see the core only through `Backplane`, stored in the app under `BACKPLANE`. The
core provides the implementation (`router.app`), so a change in how endpoints are stored or
workers are chosen changes one class, not the gateway or the Vast routes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

__all__ = ["BACKPLANE", "Backplane", "EndpointView", "WorkerView"]


@dataclass(frozen=True)
class EndpointView:
    """What the gateway and the Vast routes may know of an endpoint."""

    name: str
    api_key: str
    created_at: float
    params: Mapping[str, Any] = field(default_factory=dict)
    """Vast's endpoint parameters (min_load, max_workers, ...) where the core keeps them."""


@dataclass(frozen=True)
class WorkerView:
    id: str
    url: str
    state: str
    max_perf: float
    expected_load: float
    last_report_at: float


class Backplane(Protocol):
    def endpoints(self) -> Sequence[EndpointView]: ...

    def endpoint(self, name: str) -> EndpointView | None: ...

    def is_admin_key(self, presented: str) -> bool:
        """True for a key that may see every endpoint and its API key."""
        ...

    async def ticket(
        self, endpoint: str, cost: float, *, avoid: frozenset[str], wait: bool
    ) -> dict[str, Any] | None:
        """A signed ticket for a ready worker of `endpoint` whose URL is not in `avoid`, with
        `cost` counted in flight on it; with `wait`, wait the router's route timeout for one
        (and count the request as new demand). None when no such worker came."""
        ...

    def workers(self, endpoint: str) -> Sequence[WorkerView]: ...

    def worker_failed(self, endpoint: str, url: str, reason: str) -> None:
        """A request to this worker failed before its first byte (connection, 5xx, 429)."""
        ...


BACKPLANE: web.AppKey[Backplane] = web.AppKey("backplane")
