"""Where the load goes, hop by hop, with one workload:

    router   route at the router (timed, polling while it scales), then stream from the worker;
             with several routers, a route request that one leaves unanswered or answers 5xx
             goes on to the next (`client.routers`)
    worker   straight to the workers: tickets are fetched from the router ahead of time, outside
             the timed window, so only the worker's hop (PyWorker + backend) is measured
    backend  straight to a TGI backend's /generate_stream (no ticket)
    openai   an OpenAI-compatible server's /v1/completions with stream: true

Each target fills a RequestRecord and raises `Failed` with the outcome when a request fails.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import aiohttp

from client.bench.errors import TargetDown
from client.bench.events import Dialect, EventHook, StreamFailure, TokenTally
from client.bench.records import Outcome, RequestRecord
from client.bench.workload import RequestSpec
from client.errors import ProtocolError
from client.routers import RouterRing, router_failed
from client.routing import Ticket, interpret_route_answer

__all__ = [
    "Failed",
    "Target",
    "TargetKind",
    "TargetSettings",
    "make_target",
    "stream_into",
    "tgi_payload",
]

TargetKind = Literal["router", "worker", "backend", "openai"]
Clock = Callable[[], float]
_ROUTE_POLL_S = 0.25
_TICKET_MARGIN_S = 5.0
_ROUTER_HINTS = {
    401: "check --api-key or $TGIS_API_KEY",
    403: "check --api-key or $TGIS_API_KEY",
    404: "check --endpoint",
}


class Failed(Exception):
    """A failed request; `fatal` when every later request would fail the same way."""

    def __init__(
        self, outcome: Outcome, message: str, status: int | None = None, *, fatal: bool = False
    ) -> None:
        super().__init__(message)
        self.outcome: Outcome = outcome
        self.status = status
        self.fatal = fatal


@dataclass(frozen=True)
class TargetSettings:
    kind: TargetKind
    url: str
    endpoint: str = "default"
    api_key: str | None = None
    model: str = "tgi"
    idle_timeout: float = 60.0
    route_wait: float = 120.0
    api_key_in_body: bool = False
    """Send the key as `"api_key"` in the route body, as Vast.ai's own client does."""
    admin_key: str | None = field(default=None, repr=False)
    """The router's admin key, which its `/status` wants (the workers' timeline)."""
    more_routers: tuple[str, ...] = ()
    """Routers to fail over to after `url` (router and worker targets)."""

    @property
    def router_urls(self) -> tuple[str, ...]:
        return (self.url, *self.more_routers)


class Target(Protocol):
    settings: TargetSettings

    async def probe(self, session: aiohttp.ClientSession) -> None: ...

    async def send(
        self, session: aiohttp.ClientSession, spec: RequestSpec, record: RequestRecord, clock: Clock
    ) -> None: ...

    async def close(self) -> None: ...


def make_target(settings: TargetSettings) -> Target:
    if settings.kind == "router":
        return RouterTarget(settings)
    if settings.kind == "worker":
        return WorkerTarget(settings)
    return DirectTarget(settings)


def tgi_payload(spec: RequestSpec) -> dict[str, Any]:
    return {
        "inputs": spec.prompt,
        "parameters": {"max_new_tokens": spec.max_new_tokens, "details": True},
    }


def openai_payload(spec: RequestSpec, model: str) -> dict[str, Any]:
    return {
        "model": model,
        "prompt": spec.prompt,
        "max_tokens": spec.max_new_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def probe_url(session: aiohttp.ClientSession, url: str, what: str) -> None:
    """Raise TargetDown unless `url` answers at all (any HTTP status) within 5 s."""
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as response:
            await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        reason = str(exc) or type(exc).__name__
        raise TargetDown(f"the {what} at {url} does not answer: {reason}") from None


async def stream_into(
    session: aiohttp.ClientSession,
    url: str,
    body: Mapping[str, Any],
    record: RequestRecord,
    clock: Clock,
    dialect: Dialect,
    idle: float,
    on_event: EventHook | None = None,
) -> None:
    """POST `body`, then read its token stream into `record` (status, tokens, end, count)."""
    tally = TokenTally(dialect, record.tokens.append, on_event)
    try:
        async with session.post(url, json=body) as response:
            record.headers = clock()
            record.status = response.status
            if response.status != 200:
                raise _http_failure(response.status, await response.read())
            while chunk := await _read(response, idle):
                tally.feed(chunk, clock())
    except aiohttp.ClientError as exc:
        raise Failed("incomplete" if record.tokens else "error", _describe(exc)) from None
    except StreamFailure as exc:
        raise Failed("error", str(exc), record.status) from None
    record.end = clock()
    record.first_token = record.tokens[0] if record.tokens else None
    record.output_tokens = tally.server_tokens
    if not tally.finished:
        raise Failed("incomplete", "the stream ended before its final event", record.status)


async def _read(response: aiohttp.ClientResponse, idle: float) -> bytes:
    try:
        async with asyncio.timeout(idle):
            return await response.content.readany()
    except TimeoutError:
        raise Failed("timeout", f"no byte for {idle:g} s", response.status) from None


def _http_failure(status: int, body: bytes) -> Failed:
    message = body.decode("utf-8", errors="replace")[:200]
    try:
        parsed = json.loads(body)
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
            message = parsed["error"]
    except ValueError:
        pass
    outcome: Outcome = "overloaded" if status in (429, 503) else "error"
    return Failed(outcome, f"HTTP {status}: {message}", status)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class DirectTarget:
    """A TGI backend or an OpenAI-compatible server, with no router and no ticket."""

    def __init__(self, settings: TargetSettings) -> None:
        self.settings = settings
        self._base = settings.url.rstrip("/")

    async def probe(self, session: aiohttp.ClientSession) -> None:
        path = "/health" if self.settings.kind == "backend" else "/v1/models"
        await probe_url(session, self._base + path, f"{self.settings.kind} target")

    async def send(
        self, session: aiohttp.ClientSession, spec: RequestSpec, record: RequestRecord, clock: Clock
    ) -> None:
        record.sent = clock()
        idle = self.settings.idle_timeout
        if self.settings.kind == "openai":
            body = openai_payload(spec, self.settings.model)
            url = self._base + "/v1/completions"
            await stream_into(session, url, body, record, clock, "openai", idle)
        else:
            url = self._base + "/generate_stream"
            await stream_into(session, url, tgi_payload(spec), record, clock, "tgi", idle)

    async def close(self) -> None:
        return None


class RouterTarget:
    """Route (timed, part of the latency), then stream from the worker the ticket names."""

    def __init__(self, settings: TargetSettings) -> None:
        self.settings = settings
        self.routers = RouterRing(settings.router_urls)

    async def probe(self, session: aiohttp.ClientSession) -> None:
        """Raise TargetDown unless at least one of the routers answers."""
        down: list[TargetDown] = []
        for url in self.routers.urls:
            try:
                await probe_url(session, url + "/health", "router")
            except TargetDown as exc:
                down.append(exc)
        if len(down) == len(self.routers.urls):
            raise TargetDown("; ".join(str(exc) for exc in down))

    async def send(
        self, session: aiohttp.ClientSession, spec: RequestSpec, record: RequestRecord, clock: Clock
    ) -> None:
        record.sent = clock()
        ticket = await route(session, self.settings, spec.max_new_tokens, self.routers)
        record.routed = clock()
        await _stream_from_worker(session, ticket, spec, record, clock, self.settings)

    async def close(self) -> None:
        return None


async def _stream_from_worker(
    session: aiohttp.ClientSession,
    ticket: Ticket,
    spec: RequestSpec,
    record: RequestRecord,
    clock: Clock,
    settings: TargetSettings,
) -> None:
    record.worker = ticket.url
    url, body = ticket.worker_url("/generate_stream"), ticket.worker_body(tgi_payload(spec))
    await stream_into(session, url, body, record, clock, "tgi", settings.idle_timeout)


async def route(
    session: aiohttp.ClientSession, settings: TargetSettings, cost: int, routers: RouterRing
) -> Ticket:
    """A ticket from the routers, polling with the same request_idx (at the router that gave
    it) while no worker is ready."""
    body: dict[str, Any] = {"endpoint": settings.endpoint, "cost": cost}
    headers: dict[str, str] = {}
    if settings.api_key and settings.api_key_in_body:
        body["api_key"] = settings.api_key
    elif settings.api_key:
        headers["Authorization"] = f"Bearer {settings.api_key}"
    deadline = time.monotonic() + settings.route_wait
    waiting_at: str | None = None
    while True:
        router, answer = await _ask_routers(session, routers, body, headers, waiting_at)
        try:
            parsed = interpret_route_answer(answer)
        except ProtocolError as exc:
            raise Failed("error", str(exc)) from None
        if isinstance(parsed, Ticket):
            return parsed
        if time.monotonic() >= deadline:
            raise Failed("timeout", f"no worker ready within {settings.route_wait:g} s")
        if parsed.request_idx is not None:  # Vast.ai's wait may carry none
            body["request_idx"], waiting_at = parsed.request_idx, router
        await asyncio.sleep(_ROUTE_POLL_S)


async def _ask_routers(
    session: aiohttp.ClientSession,
    routers: RouterRing,
    body: dict[str, Any],
    headers: dict[str, str],
    waiting_at: str | None,
) -> tuple[str, dict[str, Any]]:
    """The first answer of the routers, the preferred first, past those that `router_failed`
    lets go on from; the `request_idx` only to the router that gave it."""
    failure: Failed | None = None
    for router in routers.order():
        sent = (
            body if router == waiting_at else {k: v for k, v in body.items() if k != "request_idx"}
        )
        try:
            answer = await _ask_router(session, router + "/route/", sent, headers)
        except Failed as exc:
            if not router_failed(exc.status):
                raise
            failure = exc
            continue
        routers.answered(router)
        return router, answer
    assert failure is not None  # a ring holds at least one router
    raise failure


async def _ask_router(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any], headers: dict[str, str]
) -> dict[str, Any]:
    try:
        async with session.post(url, json=body, headers=headers) as response:
            content = await response.read()
            if response.status != 200:
                failure = _http_failure(response.status, content)
                hint = _ROUTER_HINTS.get(response.status)
                message = f"router: {failure}" + (f" ({hint})" if hint else "")
                raise Failed(failure.outcome, message, response.status, fatal=bool(hint))
    except aiohttp.ClientError as exc:
        raise Failed("error", f"router: {_describe(exc)}") from None
    except TimeoutError:
        raise Failed("timeout", "router: no answer in time") from None
    try:
        answer = json.loads(content)
    except ValueError:
        raise Failed("error", "router: the answer is not JSON") from None
    if not isinstance(answer, dict):
        raise Failed("error", "router: the answer is not a JSON object")
    return answer


class WorkerTarget:
    """Straight to the workers, with tickets fetched ahead of time by a background task. A
    ticket that is about to expire, or pays less than the request needs, is replaced by a fresh
    one before the request's send time (the wait shows in its latency, never in its route time).
    """

    def __init__(self, settings: TargetSettings, prefetch: int = 4) -> None:
        self.settings = settings
        self._tickets: asyncio.Queue[Ticket] = asyncio.Queue(maxsize=prefetch)
        self._filler: asyncio.Task[None] | None = None
        self._router = RouterTarget(settings)
        self._cost = 1

    async def probe(self, session: aiohttp.ClientSession) -> None:
        await self._router.probe(session)

    async def send(
        self, session: aiohttp.ClientSession, spec: RequestSpec, record: RequestRecord, clock: Clock
    ) -> None:
        self._cost = max(self._cost, spec.max_new_tokens)
        if self._filler is None:
            self._filler = asyncio.create_task(self._fill(session))
        ticket = await self._ticket(session, spec.max_new_tokens)
        record.sent = clock()
        await _stream_from_worker(session, ticket, spec, record, clock, self.settings)

    async def _ticket(self, session: aiohttp.ClientSession, cost: int) -> Ticket:
        ticket = await self._tickets.get()
        expires = math.inf if ticket.exp is None else ticket.exp
        if expires - time.time() > _TICKET_MARGIN_S and ticket.cost >= cost:
            return ticket
        return await route(session, self.settings, cost, self._router.routers)

    async def _fill(self, session: aiohttp.ClientSession) -> None:
        while True:
            try:
                ticket = await route(session, self.settings, self._cost, self._router.routers)
                await self._tickets.put(ticket)
            except Failed:
                await asyncio.sleep(_ROUTE_POLL_S)

    async def close(self) -> None:
        if self._filler is not None:
            self._filler.cancel()
            await asyncio.gather(self._filler, return_exceptions=True)
