"""Routing as a service: authenticate a caller, pick a worker, sign its ticket, or wait for one.

`RouteService.issue_ticket(endpoint, cost, ...)` is what `POST /route/` does, callable from
anywhere in the router without an HTTP request. It raises a `RouterError` for anything the
caller must change, and returns either a signed `Ticket` or Vast's "no worker yet" answer
(`RouteWaiting`: endpoint, status, request_idx).

`proxy_ticket` is the same routing for a proxy inside the router (gateway mode), which sends the
request itself and so knows when it is over: it gets the ticket with its worker (`Issued`) and
hands the cost back with `ticket_done` at once, whatever the outcome.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import random
from collections.abc import Callable, Collection, Iterable
from typing import NamedTuple

from protocol import MAX_COST, RouteAnswer, RouteWaiting, Ticket
from router.autoscaler.demand import DemandSignal
from router.credentials import same_secret
from router.endpoints.models import Endpoint
from router.endpoints.store import EndpointStore
from router.errors import (
    EndpointNotFound,
    InvalidRequest,
    Overloaded,
    Unavailable,
)
from router.keys.reqnums import ReqnumsExhausted
from router.keys.tickets import TicketIssuer
from router.logs import event
from router.routing.affinity import SessionAffinity
from router.routing.policy import LoadIndex, choose, overloaded
from router.routing.registry import WorkerRecord, WorkerRegistry
from router.routing.waiting import WaitQueue
from router.settings import RouterSettings

__all__ = ["Issued", "RouteService"]

log = logging.getLogger(__name__)


class Issued(NamedTuple):
    """A ticket and the worker whose load counts its cost."""

    ticket: Ticket
    worker: WorkerRecord


class RouteService:
    def __init__(
        self,
        settings: RouterSettings,
        store: EndpointStore,
        registry: WorkerRegistry,
        issuer: TicketIssuer,
        *,
        clock: Callable[[], float],
        rng: random.Random,
        demand: DemandSignal,
    ) -> None:
        self.settings = settings
        self.store = store
        self.registry = registry
        self.issuer = issuer
        self.queue = WaitQueue(settings.max_waiting_routes)
        self.affinity = SessionAffinity(settings.max_sessions)
        self.clock = clock
        self.rng = rng
        self._demand: dict[str, DemandSignal] = {settings.endpoint: demand}
        self._request_ids = itertools.count(1)
        self._indexes: dict[str, LoadIndex] = {}
        self._indexed_version = -1

    # -- callers -----------------------------------------------------------------------------

    def endpoint(self, name: str) -> Endpoint:
        endpoint = self.store.endpoints.get(name)
        if endpoint is None:
            raise EndpointNotFound(f"no endpoint named {name!r}")
        return endpoint

    def authenticate(self, name: str, presented: str | None) -> Endpoint:
        """The endpoint, if `presented` is its API key: 404 for no such endpoint, else 401."""
        return self.store.authenticate(name, presented)

    def is_admin_key(self, presented: str) -> bool:
        """True for the admin key (it may see every endpoint and its API key)."""
        return same_secret(presented, self.settings.admin_key.get_secret_value())

    def workers(self, endpoint: str) -> list[WorkerRecord]:
        return [worker for worker in self.registry if worker.endpoint == endpoint]

    def demand_for(self, endpoint: str) -> DemandSignal:
        signal = self._demand.get(endpoint)
        if signal is None:
            signal = self._demand[endpoint] = DemandSignal()
        return signal

    # -- routing -----------------------------------------------------------------------------

    async def issue_ticket(
        self,
        endpoint: str,
        cost: float,
        *,
        request_idx: int | None = None,
        avoid: Collection[str] = (),
        session: str | None = None,
        strict_avoid: bool = False,
        wait: bool = True,
        timeout_s: float | None = None,
    ) -> RouteAnswer:
        """A signed ticket for the best worker of `endpoint` (an authenticated caller's), waiting
        up to `timeout_s` (default `route_timeout_s`) for one, unless not `wait`; else the "no
        worker yet" answer (`RouteWaiting`), or 503/429. `strict_avoid`: never a worker in
        `avoid` (gateway retries)."""
        request_idx, issued = self._route_now(
            endpoint, cost, request_idx, avoid, session, strict_avoid
        )
        if issued is None and wait:
            issued = await self._wait_and_issue(
                endpoint, cost, request_idx, avoid, session, strict_avoid, timeout_s
            )
        if issued is None:
            return self._no_worker(endpoint, request_idx)
        return issued.ticket

    async def proxy_ticket(
        self,
        endpoint: str,
        cost: float,
        *,
        request_idx: int | None = None,
        avoid: Collection[str] = (),
        wait: bool = True,
    ) -> Issued | None:
        """`issue_ticket` for a proxy that sends the request itself (gateway mode), strict
        about `avoid`: the ticket with its worker, for `ticket_done` once the request is over;
        None when no worker came. `no_worker_reply` does not apply: it chooses what `/route/`
        tells a client that can poll, and the proxy's own client cannot (the proxy answers it)."""
        request_idx, issued = self._route_now(endpoint, cost, request_idx, avoid, None, True)
        if issued is None and wait:
            issued = await self._wait_and_issue(endpoint, cost, request_idx, avoid, None, True)
        return issued

    def ticket_done(self, issued: Issued) -> bool:
        """The request `issued` carried is over (answered, failed, or its client left): its cost
        stops counting on the worker now. False when it had stopped already (the worker's
        report counts it, it expired, the worker is gone, or it was done before): a cost is
        returned once, never twice."""
        return self.registry.release(issued.worker, issued.ticket.reqnum)

    def requests_ended(self, worker_id: str, request_idxs: Iterable[int]) -> int:
        """The worker `worker_id` says these requests have ended (Vast's `/delete_requests/`):
        each one's ticket stops counting on it now, unless it had already (the same exactly-once
        accounting as `ticket_done`). How many costs came back."""
        release = self.registry.release_request
        return sum(release(worker_id, request_idx) for request_idx in request_idxs)

    def _route_now(
        self,
        endpoint: str,
        cost: float,
        request_idx: int | None,
        avoid: Collection[str],
        session: str | None,
        strict: bool,
    ) -> tuple[int, Issued | None]:
        """The request's index (a new one is counted as demand) and its ticket, if a worker is
        ready now. Not a coroutine: routing a request that finds a worker awaits nothing."""
        if not (isinstance(cost, int | float) and 0 < cost <= MAX_COST and math.isfinite(cost)):
            raise InvalidRequest(f"cost must be a finite number > 0 and <= {MAX_COST:g}")
        resource = self.endpoint(endpoint)
        if not resource.routes:
            raise Unavailable(
                f"endpoint {endpoint!r} is {resource.endpoint_state.value}: it routes nothing "
                "until it is active again",
                retry_after_s=max(self.settings.route_timeout_s, 1.0),
            )
        if not request_idx:  # None, or 0 as Vast's client sends on a new request
            request_idx = next(self._request_ids)
            self.demand_for(endpoint).arrived(cost)  # a poll for the same request is not new
        return request_idx, self.try_issue(
            endpoint, cost, request_idx, avoid, session, strict=strict
        )

    def try_issue(
        self,
        endpoint: str,
        cost: float,
        request_idx: int,
        avoid: Collection[str] = (),
        session: str | None = None,
        *,
        strict: bool = False,
    ) -> Issued | None:
        """A ticket now, or None when no worker of `endpoint` is ready."""
        now = self.clock()
        worker = self.pick(endpoint, now, avoid, session, strict=strict)
        if worker is None:
            return None
        if session is not None:
            self.affinity.remember(endpoint, session, worker.id)
        try:
            ticket = self.issuer.issue(
                worker, endpoint=endpoint, cost=cost, request_idx=request_idx, now=now
            )
        except ReqnumsExhausted:
            return None  # routers on shared state: its next reqnums are on their way

        index = self._indexes.get(endpoint)
        if index is not None:
            index.update(worker)
        return Issued(ticket, worker)

    def pick(
        self,
        endpoint: str,
        now: float,
        avoid: Collection[str] = (),
        session: str | None = None,
        *,
        strict: bool = False,
    ) -> WorkerRecord | None:
        """The worker for one ticket: the session's if it still suits (routable, not avoided, not
        overloaded), else the least expected wait (from the load index; a linear scan when the
        request avoids some workers)."""
        self.registry.expire_due(now)
        sticky = None
        if session is not None:
            sticky_id = self.affinity.worker_for(endpoint, session)
            sticky = self.registry.get(sticky_id) if sticky_id is not None else None
            if sticky is not None and not self._usable(sticky, endpoint, now):
                sticky = None
        if sticky is not None and sticky.url not in avoid:
            if sticky.pending and sticky.pending[0].expires_at <= now:
                sticky.expire(now)
            if not overloaded(sticky, self.settings.affinity_max_wait_s):
                return sticky
        if avoid:
            candidates = self.registry.routable(endpoint, now)
            for worker in candidates:
                if worker.pending and worker.pending[0].expires_at <= now:
                    worker.expire(now)
            return choose(candidates, self.rng, avoid=avoid, strict=strict)
        index = self._index(endpoint, now)
        stale_before = now - self.registry.stale_after_s  # as `registry.routable` counts it
        while True:
            best = index.best(lambda w: w.healthy and w.last_report_at >= stale_before)
            if best is None or not (best.pending and best.pending[0].expires_at <= now):
                return best
            best.expire(now)  # it had expired tickets: index it at its real wait, look again
            index.update(best)

    def _usable(self, worker: WorkerRecord, endpoint: str, now: float) -> bool:
        return (
            worker.endpoint == endpoint
            and worker.healthy
            and self.registry.is_fresh(worker, now)
            and not self.registry.is_excluded(worker.id)
        )

    def _index(self, endpoint: str, now: float) -> LoadIndex:
        """The endpoint's load index, rebuilt when the registry's membership or health changed,
        and told of every worker that reported since."""
        registry = self.registry
        if registry.version != self._indexed_version:
            self._indexes.clear()
            registry.touched.clear()
            self._indexed_version = registry.version
        elif registry.touched:
            for worker in registry.touched:
                touched_index = self._indexes.get(worker.endpoint)
                if touched_index is not None:
                    touched_index.update(worker)
            registry.touched.clear()
        index = self._indexes.get(endpoint)
        if index is None:
            index = self._indexes[endpoint] = LoadIndex(self.rng)
            index.rebuild(registry.routable(endpoint, now))
        return index

    async def _wait_and_issue(
        self,
        endpoint: str,
        cost: float,
        request_idx: int,
        avoid: Collection[str],
        session: str | None,
        strict: bool = False,
        timeout_s: float | None = None,
    ) -> Issued | None:
        """Wait (bounded, FIFO) for a worker; None after the timeout. While it waits the
        autoscaler's demand signal counts it (and wakes the autoscaler: scale from zero)."""
        timeout = self.settings.route_timeout_s if timeout_s is None else timeout_s
        if timeout == 0:
            return None
        if self.queue.full():
            event(log, "route_refused", logging.WARNING, endpoint=endpoint, reason="queue_full")
            raise Overloaded(
                "too many requests are already waiting for a worker; retry later",
                retry_after_s=timeout,
            )
        demand = self.demand_for(endpoint)
        self.queue.enter()
        demand.waiting_started(cost)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self.queue.wait(endpoint)
                    issued = self.try_issue(
                        endpoint, cost, request_idx, avoid, session, strict=strict
                    )
                    if issued is not None:
                        return issued
        except TimeoutError:
            return None
        finally:
            self.queue.leave()
            demand.waiting_ended(cost)

    def _no_worker(self, endpoint: str, request_idx: int) -> RouteWaiting:
        status = self.registry.counts_by_state(endpoint, self.clock())
        if self.settings.no_worker_reply == "retry":
            raise Unavailable(
                f"no worker of endpoint {endpoint!r} is ready yet ({status or 'none started'}); "
                f"retry with request_idx {request_idx}",
                retry_after_s=max(self.settings.route_timeout_s, 1.0),
            )
        return RouteWaiting(endpoint=endpoint, status=status, request_idx=request_idx)

    # -- what workers and proxies tell us ----------------------------------------------------

    def capacity_changed(self, endpoint: str) -> None:
        """A worker of `endpoint` may have become ready: wake its waiters, oldest first."""
        if self.queue.waiting_for(endpoint):
            self.queue.wake(endpoint)

    def worker_failed(self, url: str) -> None:
        """A request to the worker at `url` failed (e.g. it refused the connection): out of
        rotation until its next report."""
        now = self.clock()
        for worker in self.registry:
            if worker.url == url:
                self.registry.mark_failed(worker.id, now)
                event(log, "worker_failed", logging.WARNING, worker=worker.id, url=url)
