"""One router's side of the shared state: it serves from memory, and every `state_flush_s`
pushes what it learnt and takes in what the other routers did.

Each flush (`StateSync.tick`):

  - pushes the worker reports this router took in since the last flush (each worker's latest),
    and the cost of the tickets it counts in flight per worker (replacing its last figure);
  - applies the other routers' newer reports to its registry (a worker that became ready wakes
    this router's waiting requests), and sets each worker's `remote_workload` to the cost the
    other routers count on it;
  - reserves the reqnum blocks its workers need (`router.state.reqnums`);
  - reloads the key ring, the endpoints and the worker groups when another router changed them.

While the store is away, the router serves from memory: its reports and endpoint changes wait
for the next flush that gets through, its reqnum blocks are used to the end whatever their age
(no other router can take numbers meanwhile), and a worker with none left is not ready on
this router (requests wait for another worker, or for the store to return). When the store
comes back empty (restarted without its data), the router writes its ring and endpoints
back, only where no other router did first; reqnum counters start again at the time in
microseconds, above every number issued before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import orjson

from protocol import WorkerStatusReport
from router.endpoints.models import (
    Endpoint,
    WorkerGroup,
    endpoint_from_body,
    worker_group_from_body,
)
from router.endpoints.store import EndpointStore
from router.errors import Unavailable
from router.keys.reqnums import ReqnumsExhausted
from router.keys.ring import KeyRing
from router.keys.store import ring_from_bytes, ring_to_bytes
from router.keys.tickets import key_alg
from router.logs import event
from router.routing.registry import WorkerRecord, WorkerRegistry
from router.routing.service import RouteService
from router.settings import RouterSettings
from router.state.reqnums import ReqnumBlocks
from router.state.sealing import SealError
from router.state.shared import SeenReport, SharedState, StateUnavailable

__all__ = ["StateSync", "load_shared_endpoints", "open_shared_ring"]

log = logging.getLogger(__name__)

LOAD_TTL_FLUSHES = 3
"""A router's in-flight figures outlive it by this many flushes (then they stop counting)."""


class StateSync:
    def __init__(
        self,
        state: SharedState,
        *,
        router_id: str,
        settings: RouterSettings,
        registry: WorkerRegistry,
        store: EndpointStore,
        ring: KeyRing,
        clock: Callable[[], float],
    ) -> None:
        self.state = state
        self.router_id = router_id
        self._settings = settings
        self._registry = registry
        self._store = store
        self._ring = ring
        self._clock = clock
        self._flush_s = settings.state_flush_s
        self.blocks = ReqnumBlocks(settings.state_reqnum_block, max_age_s=3 * self._flush_s)
        self.service: RouteService | None = None
        """Set once the route service exists: remote reports wake its waiting requests."""
        self._outbox: dict[str, SeenReport] = {}
        self._ring_version = -1
        self._resources_version = -1
        self.available = True
        """Whether the last exchange with the store got through."""
        self._refilling: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- what the router calls ---------------------------------------------------------------

    def take_reqnum(self, worker: WorkerRecord, now: float) -> int:
        """The next reqnum for a ticket to `worker` (the issuer's `ReqnumSource`), never a
        number another router may use. ReqnumsExhausted when none is reserved for it: the route
        waits for the block on its way, whose landing wakes it."""
        try:
            number = self.blocks.take(worker.id, now if self.available else float("-inf"))
        except ReqnumsExhausted:
            self._refill(worker, now)
            raise
        if self.blocks.wanted([worker.id], now):
            self._refill(worker, now)
        return number

    def _refill(self, worker: WorkerRecord, now: float) -> None:
        """Reserve the worker's next block in the background (one at a time per worker), so
        busy workers do not wait for the next flush; once it lands, waiting requests of the
        worker's endpoint try again."""
        if worker.id in self._refilling or not self.available:
            return
        self._refilling.add(worker.id)
        task = asyncio.create_task(self._reserve([worker.id], now))
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._refilled(worker, done))

    def _refilled(self, worker: WorkerRecord, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._refilling.discard(worker.id)
        if task.cancelled():
            return
        error = task.exception()
        if isinstance(error, StateUnavailable):
            self._set_available(False, str(error))
        elif error is None and self.service is not None:
            self.service.capacity_changed(worker.endpoint)

    async def close(self) -> None:
        """Stop the reservations under way."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def report_taken(self, report: WorkerStatusReport, now: float) -> None:
        """A worker reported to this router: the others hear of it at the next flush. A worker
        new to this router gets its first reqnum block now (if the store answers)."""
        body = report.model_dump_json().encode()
        self._outbox[report.id] = SeenReport(self.router_id, now, body)
        if not self.blocks.has(report.id, now) and self._registry.get(report.id) is not None:
            # if the store is away, the next flush tries again; meanwhile no ticket for it
            with contextlib.suppress(StateUnavailable):
                await self._reserve([report.id], now)

    async def run(self) -> None:
        """Flush every `state_flush_s` until cancelled."""
        while True:
            await asyncio.sleep(self._flush_s)
            try:
                await self.tick()
            except Exception:
                log.exception("state flush failed")

    # -- the flush ---------------------------------------------------------------------------

    async def tick(self) -> None:
        now = self._clock()
        outbox, self._outbox = self._outbox, {}
        loads = {w.id: w.pending_workload for w in self._registry if w.pending_workload > 0}
        try:
            exchange = await self.state.exchange(
                self.router_id,
                outbox,
                loads,
                report_ttl_s=self._settings.worker_stale_s,
                load_ttl_s=LOAD_TTL_FLUSHES * self._flush_s,
            )
        except StateUnavailable as exc:
            for worker_id, seen in outbox.items():
                self._outbox.setdefault(worker_id, seen)  # a newer one taken meanwhile wins
            self._set_available(False, str(exc))
            return
        self._set_available(True)
        try:
            ready = self._apply_reports(exchange.reports)
            self._apply_loads(exchange.loads)
            await self._reserve_wanted(now)
            if self.service is not None:
                for endpoint in ready:  # once they have reqnums: the waiters take tickets now
                    self.service.capacity_changed(endpoint)
            if exchange.ring_version != self._ring_version:
                await self._reload_ring()
            if exchange.resources_version != self._resources_version or self._store.unshared:
                await self._reload_resources()
        except StateUnavailable as exc:
            self._set_available(False, str(exc))

    def _set_available(self, available: bool, reason: str = "") -> None:
        if available != self.available:
            if available:
                event(log, "state_reconnected", router=self.router_id)
            else:
                event(log, "state_away", logging.WARNING, router=self.router_id, error=reason)
        self.available = available

    def _apply_reports(self, reports: dict[str, SeenReport]) -> set[str]:
        """Apply the other routers' newer reports; the endpoints of the workers ready now."""
        registry = self._registry
        ready = set()
        for worker_id, seen in reports.items():
            if seen.router == self.router_id:
                continue
            record = registry.get(worker_id)
            if record is not None and record.last_report_at >= seen.at:
                continue
            report = WorkerStatusReport.model_validate_json(seen.report)
            if report.endpoint not in self._store.endpoints:
                continue
            record = registry.apply_report(report, seen.at)
            if record is None:
                self.blocks.forget(worker_id)
            elif record.healthy:
                ready.add(report.endpoint)
        return ready

    def _apply_loads(self, loads: dict[str, float]) -> None:
        for worker in self._registry:
            self._registry.set_remote_load(worker, loads.get(worker.id, 0.0))

    async def _reserve_wanted(self, now: float) -> None:
        present = [worker.id for worker in self._registry]
        for worker_id in set(self.blocks.known()) - set(present):
            self.blocks.forget(worker_id)
        wanted = self.blocks.wanted(present, now)
        if wanted:
            await self._reserve(wanted, now)

    async def _reserve(self, worker_ids: list[str], now: float) -> None:
        size = self.blocks.size
        floor = int(now * 1_000_000)
        lasts = await self.state.reserve_reqnums(dict.fromkeys(worker_ids, size), floor)
        taken_at = self._clock()
        for worker_id, last in lasts.items():
            self.blocks.add(worker_id, last, min(now, taken_at))

    async def _reload_ring(self) -> None:
        stored = await self.state.get_ring()
        if stored is None:  # the store lost it: put ours back, unless another router did
            await self.state.put_ring(ring_to_bytes(self._ring), only_if_absent=True)
            return
        self._ring_version, body = stored
        settings = self._settings
        alg = key_alg(settings.ticket_scheme)
        try:
            self._ring.adopt(ring_from_bytes(body, alg, ttl_s=settings.ticket_ttl_s))
        except (ValueError, SealError) as exc:
            log.error("ignoring the shared key ring: %s", exc)

    async def _reload_resources(self) -> None:
        store = self._store
        stored = await self.state.get_resources()
        if stored.version == 0:  # the store lost them: put ours back, where nobody did
            await self.state.put_resources(
                _encode_endpoints(dict(store.endpoints)),
                _encode_groups(dict(store.groups)),
                only_if_absent=True,
            )
        if store.unshared:
            await store.save()
        stored = await self.state.get_resources()
        self._resources_version = stored.version
        store.replace(_decode_endpoints(stored.endpoints), _decode_groups(stored.groups))


async def load_shared_endpoints(state: SharedState, store: EndpointStore) -> None:
    """At start-up: the shared endpoints and groups into `store` (which then writes its changes
    there); when none are shared yet, this router's (from its state directory) become them."""
    stored = await state.get_resources()
    if stored.version == 0:  # nothing was ever shared (or the store lost it)
        await state.put_resources(
            _encode_endpoints(dict(store.endpoints)),
            _encode_groups(dict(store.groups)),
            only_if_absent=True,
        )
        stored = await state.get_resources()
    store.replace(_decode_endpoints(stored.endpoints), _decode_groups(stored.groups))

    async def share(
        endpoints: dict[str, Endpoint | None], groups: dict[str, WorkerGroup | None]
    ) -> None:
        try:
            await state.put_resources(_encode_endpoints(endpoints), _encode_groups(groups))
        except StateUnavailable:
            raise Unavailable(
                "the change is made on this router, but the shared state is away: the other "
                "routers get it once it is back",
                retry_after_s=1.0,
            ) from None

    store.share(share)


async def open_shared_ring(state: SharedState, local: KeyRing, settings: RouterSettings) -> KeyRing:
    """At start-up: the shared key ring; when none is shared yet, `local` (this router's, from
    its state directory) becomes it, unless another router's got there first."""
    await state.put_ring(ring_to_bytes(local), only_if_absent=True)
    stored = await state.get_ring()
    if stored is None:
        raise StateUnavailable("the key ring vanished from the shared state at start-up")
    alg = key_alg(settings.ticket_scheme)
    return ring_from_bytes(stored[1], alg, ttl_s=settings.ticket_ttl_s)


def _encode_endpoints(endpoints: dict[str, Endpoint | None]) -> dict[str, bytes | None]:
    return {
        name: None if endpoint is None else _json(endpoint.stored())
        for name, endpoint in endpoints.items()
    }


def _encode_groups(groups: dict[str, WorkerGroup | None]) -> dict[str, bytes | None]:
    return {name: None if group is None else _json(group.view()) for name, group in groups.items()}


def _decode_endpoints(stored: dict[str, bytes]) -> dict[str, Endpoint]:
    return {
        name: endpoint_from_body(orjson.loads(body), stored=True) for name, body in stored.items()
    }


def _decode_groups(stored: dict[str, bytes]) -> dict[str, WorkerGroup]:
    return {name: worker_group_from_body(orjson.loads(body)) for name, body in stored.items()}


def _json(value: object) -> bytes:
    return orjson.dumps(value)
