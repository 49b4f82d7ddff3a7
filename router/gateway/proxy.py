"""Gateway mode: the router proxies an endpoint's requests itself, so unmodified clients
(huggingface_hub, openai, outlines, text-generation) need only a base URL and an API key.

    POST /endpoints/{name}/generate               TGI
    POST /endpoints/{name}/generate_stream        TGI, server-sent events
    POST /endpoints/{name}/  (and without the /)  TGI's compat route ({"stream": bool})
    POST /endpoints/{name}/v1/chat/completions    OpenAI
    POST /endpoints/{name}/v1/completions         OpenAI
    POST /endpoints/{name}/invocations            SageMaker's: a compat, chat or completions body
    POST /endpoints/{name}/tokenize               TGI's, and /chat_tokenize
    GET  /endpoints/{name}/info                   and /health, /v1/models: metadata

(`protocol.relay`'s `RELAYED_PATHS` and `METADATA_PATHS`) with `Authorization: Bearer <the
endpoint's API key>`, every one of them. For each POST the gateway counts its cost from the
payload (`protocol.workload`, as the worker counts it), takes a ticket for a ready worker
through the core (`Backplane.ticket`), and posts `{"auth_data": ticket, "payload": body}` to
the worker, exactly as a client would. A GET is routed the same way, at `METADATA_COST`, and
sent on with no ticket, which the worker does not ask for there. The worker's status, headers
and body come back; a stream comes back event by event, each event whole, as soon as it
arrives.

The ticket's cost counts on the worker while the request is under way and is handed back
(`GatewayTicket.done`) as soon as it is over: answered, failed at the worker, or left by its
client. The worker's next report is not awaited.

A worker that fails before the first byte reaches the client (cannot be reached, resets, times
out, answers 429/502/503/504 or a redirect, or sends a whole answer over
`gateway_max_answer_bytes`) is left out and another one is tried, up to `gateway_max_attempts`
in all; never the one that just failed. Once the first byte is out, a
failure ends the stream with a TGI error event, since the answer cannot be taken back. Either
way the worker is out of rotation until its next report (`Backplane.worker_failed`): a stream
that breaks mid-way (reset, closed before its end, silent past the idle timeout) is the
worker's failure as much as one before the first byte. A client that leaves is nobody's.

What the gateway reaches is bounded (`router.gateway.sessions`): the worker URL's origin alone
(`policy.upstream_url`), no redirect ever followed (a 3xx is the worker's failure, never
relayed), public addresses only unless the endpoint allows private workers, checked on the
address each connection is made to. A whole (non-streamed) answer must be complete within
`gateway_first_byte_timeout_s` of the request, in at most `gateway_max_answer_bytes`; a
stream's first event must come within `gateway_first_byte_timeout_s` of its head, and each
next one within `gateway_idle_timeout_s`.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from common.records import from_attributes
from protocol import Ticket
from protocol.relay import (
    METADATA_PATHS,
    RELAYED_PATHS,
    UPSTREAM_HEADERS,
    EventFramer,
    is_redirect,
    relayed_headers,
)
from router.credentials import bearer_token
from router.errors import (
    InvalidRequest,
    NoWorker,
    PayloadTooLarge,
    WorkerFailed,
)
from router.gateway.metrics import FailureKind, GatewayMetrics
from router.gateway.policy import (
    METADATA_COST,
    RETRYABLE_STATUSES,
    WorkloadError,
    request_cost,
    upstream_url,
)
from router.gateway.sessions import PrivateAddressRefused, client_session
from router.http.bodies import json_object, parse_json
from router.http.state import METRICS
from router.routing.backplane import BACKPLANE, EndpointView
from router.settings import RouterSettings

__all__ = ["GatewayConfig", "setup"]

log = logging.getLogger(__name__)

_RETRY_AFTER_S = 1
# Bodies are relayed as they come, never decoded: ask for them as they are (a worker that
# encodes one anyway says so in its Content-Encoding, which is relayed with it).


@dataclass(frozen=True)
class GatewayConfig:
    max_attempts: int
    connect_timeout_s: float
    first_byte_timeout_s: float
    idle_timeout_s: float
    default_max_new_tokens: int
    max_body_bytes: int
    max_answer_bytes: int

    @classmethod
    def from_settings(cls, settings: RouterSettings) -> GatewayConfig:
        """The router's `gateway_*` settings."""
        return from_attributes(cls, settings, prefix="gateway_")


CONFIG = web.AppKey("gateway_config", GatewayConfig)
SESSION = web.AppKey("gateway_session", aiohttp.ClientSession)
"""To workers on public addresses only."""
PRIVATE_SESSION = web.AppKey("gateway_private_session", aiohttp.ClientSession)
"""To workers anywhere: for the endpoints that allow private workers."""
GATEWAY_METRICS = web.AppKey("gateway_metrics", GatewayMetrics)


def setup(app: web.Application, settings: RouterSettings) -> None:
    app[CONFIG] = GatewayConfig.from_settings(settings)
    app[GATEWAY_METRICS] = GatewayMetrics()
    app.cleanup_ctx.append(_client_sessions)
    app.on_startup.append(_serve_metrics)
    app.router.add_post("/endpoints/{name}", _handler("/"))
    for path in RELAYED_PATHS:
        app.router.add_post(f"/endpoints/{{name}}{path}", _handler(path))
    for path in METADATA_PATHS:
        app.router.add_get(f"/endpoints/{{name}}{path}", _metadata_handler(path))


async def _client_sessions(app: web.Application) -> AsyncIterator[None]:
    connect_timeout_s = app[CONFIG].connect_timeout_s
    async with (
        client_session(connect_timeout_s=connect_timeout_s, public_only=True) as public,
        client_session(connect_timeout_s=connect_timeout_s, public_only=False) as private,
    ):
        app[SESSION], app[PRIVATE_SESSION] = public, private
        yield


async def _serve_metrics(app: web.Application) -> None:
    app[METRICS].include(app[GATEWAY_METRICS].registry)  # set by the startup steps, run first


def _handler(path: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await proxy(request, path)

    return handler


def _metadata_handler(path: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        endpoint = _authorized_endpoint(request)
        return await _forward(request, endpoint, path, METADATA_COST, None)

    return handler


async def proxy(request: web.Request, path: str) -> web.StreamResponse:
    config = request.app[CONFIG]
    endpoint = _authorized_endpoint(request)
    payload = _parse_payload(await _read_body(request, config.max_body_bytes))
    try:
        cost = request_cost(path, payload, config.default_max_new_tokens)
    except WorkloadError as exc:
        raise InvalidRequest(str(exc)) from None
    payload_json = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return await _forward(request, endpoint, path, cost, payload_json)


def _authorized_endpoint(request: web.Request) -> EndpointView:
    return request.app[BACKPLANE].authenticate(request.match_info["name"], bearer_token(request))


async def _read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"request body is over the {limit}-byte limit")
    body = bytearray()
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"request body is over the {limit}-byte limit")
    return bytes(body)


def _parse_payload(raw: bytes) -> dict[str, Any]:
    return json_object(parse_json(raw), " (a TGI or OpenAI request)")


@dataclass(frozen=True)
class _Failure:
    """A worker failed before the first byte went out: try another."""

    reason: str
    kind: FailureKind
    status: int | None = None
    body: bytes = b""
    headers: list[tuple[str, str]] | None = None


@dataclass(frozen=True)
class _Broken:
    """A worker failed after the first byte went out: the answer (ended with an error event)
    stands, and the worker is to blame."""

    response: web.StreamResponse
    reason: str
    kind: FailureKind


async def _forward(
    request: web.Request,
    endpoint: EndpointView,
    path: str,
    cost: float,
    payload_json: bytes | None,
) -> web.StreamResponse:
    """The request on a worker with a ticket for `cost`, retried on another one as the module
    says: POSTed in its envelope, or, with no `payload_json`, a GET with no ticket."""
    app = request.app
    config, backplane, metrics = app[CONFIG], app[BACKPLANE], app[GATEWAY_METRICS]
    session = app[PRIVATE_SESSION] if endpoint.allow_private_workers else app[SESSION]
    failed: list[str] = []
    last: _Failure | None = None
    request_idx: int | None = None  # the first ticket's: a retry is not new demand
    for attempt in range(config.max_attempts):
        ticket = await backplane.ticket(
            endpoint.name, cost, avoid=frozenset(failed), wait=attempt == 0, request_idx=request_idx
        )
        if ticket is None:
            break
        request_idx, url = ticket.request_idx, ticket.url
        body = None if payload_json is None else _envelope(ticket.signed, payload_json)
        try:
            outcome = await _try_worker(request, session, config, url, path, body)
        finally:  # over, whichever way (the client leaving cancels us): the cost is back now
            ticket.done()
        if isinstance(outcome, _Broken):
            backplane.worker_failed(endpoint.name, url, outcome.reason)
            metrics.worker_failed(endpoint.name, outcome.kind)
            return outcome.response
        if not isinstance(outcome, _Failure):
            return outcome
        backplane.worker_failed(endpoint.name, url, outcome.reason)
        metrics.worker_failed(endpoint.name, outcome.kind)
        failed.append(url)
        last = outcome
    return _give_up(endpoint.name, failed, last)


def _envelope(ticket: Ticket, payload_json: bytes) -> bytes:
    auth_data = json.dumps(ticket.auth_data()).encode()
    return b'{"auth_data":' + auth_data + b',"payload":' + payload_json + b"}"


def _give_up(name: str, failed: list[str], last: _Failure | None) -> web.Response:
    if last is None:
        raise NoWorker(
            f"no worker of endpoint {name!r} is ready; retry shortly",
            retry_after_s=_RETRY_AFTER_S,
        )
    if last.status is not None:  # the last worker's own "not now" (429, 503, ...), as it said it
        return web.Response(status=last.status, body=last.body, headers=last.headers)
    others = "no other worker was ready" if len(failed) == 1 else f"{len(failed)} workers tried"
    raise WorkerFailed(f"the worker failed before answering ({last.reason}); {others}")


async def _try_worker(
    request: web.Request,
    session: aiohttp.ClientSession,
    config: GatewayConfig,
    worker_url: str,
    path: str,
    body: bytes | None,
) -> web.StreamResponse | _Failure | _Broken:
    """POST `body` to the worker's `path` (GET with none) and relay its answer."""
    deadline_at = asyncio.get_running_loop().time() + config.first_byte_timeout_s
    try:
        url = upstream_url(worker_url, path)
        async with asyncio.timeout_at(deadline_at):
            if body is None:
                upstream = await session.get(url, headers=UPSTREAM_HEADERS, allow_redirects=False)
            else:  # a file-like body: large ones do not block the loop
                upstream = await session.post(
                    url, data=io.BytesIO(body), headers=UPSTREAM_HEADERS, allow_redirects=False
                )
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
        return _failure(exc)
    async with upstream:
        headers = relayed_headers(upstream.headers.items())
        if upstream.status in RETRYABLE_STATUSES:
            said = await _read_small(upstream)
            return _Failure(
                f"HTTP {upstream.status}", FailureKind.STATUS, upstream.status, said, headers
            )
        if is_redirect(upstream.status):
            reason = f"it answered a redirect (HTTP {upstream.status}), never followed"
            return _Failure(reason, FailureKind.REDIRECT)
        if upstream.content_type == "text/event-stream":
            return await _relay_stream(request, upstream, headers, config)
        answer = await _read_whole(upstream, config.max_answer_bytes, deadline_at)
        if isinstance(answer, _Failure):
            return answer
        return web.Response(status=upstream.status, body=answer, headers=headers)


async def _read_whole(
    upstream: aiohttp.ClientResponse, limit: int, deadline_at: float
) -> bytes | _Failure:
    """The answer's body, if it is whole by `deadline_at` (the loop's time) and at most `limit`
    bytes; else the worker's failure."""
    too_large = _Failure(f"its answer is over the {limit}-byte limit", FailureKind.TOO_LARGE)
    if upstream.content_length is not None and upstream.content_length > limit:
        return too_large
    answer = bytearray()
    try:
        async with asyncio.timeout_at(deadline_at):
            async for chunk in upstream.content.iter_any():
                answer += chunk
                if len(answer) > limit:
                    return too_large
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return _failure(exc)
    return bytes(answer)


async def _relay_stream(
    request: web.Request,
    upstream: aiohttp.ClientResponse,
    headers: list[tuple[str, str]],
    config: GatewayConfig,
) -> web.StreamResponse | _Failure | _Broken:
    """Relay whole events as they arrive. Before the first one, a failure is the worker's (try
    another); after it, the stream ends with a TGI error event, and the worker is still to
    blame (`_Broken`): a stream that breaks, falls silent, or ends inside an event, as the
    PyWorker's relay treats its backend's (`protocol.relay`). A client that goes away is
    nobody's failure: the worker's stream is closed and nothing is retried."""
    framer = EventFramer()
    response = web.StreamResponse(status=upstream.status, headers=headers)
    started = False
    broke: str | None = None
    kind = FailureKind.BROKEN
    timeout_s = config.first_byte_timeout_s
    try:
        while True:
            try:
                async with asyncio.timeout(timeout_s):
                    chunk = await upstream.content.readany()
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                if not started:
                    return _failure(exc)
                log.warning(
                    "gateway: stream from %s broke after its first event: %s", upstream.url, exc
                )
                broke = f"its stream broke after the first event ({_describe(exc)})"
                kind = (
                    FailureKind.IDLE_TIMEOUT
                    if isinstance(exc, TimeoutError)
                    else FailureKind.BROKEN
                )
                await response.write(framer.interrupted())
                break
            if not chunk:  # the worker ended its stream: at an event's end, or cut short
                if not started:  # no event at all (TGI always sends one): try another worker
                    return _Failure("its stream ended before its first event", FailureKind.NO_EVENT)
                if framer.mid_event:
                    broke, kind = "its stream ended inside an event", FailureKind.BROKEN
                    await response.write(framer.interrupted())
                break
            events = framer.feed(chunk)
            if not events:
                continue
            if not started:
                await response.prepare(request)
                started, timeout_s = True, config.idle_timeout_s
            await response.write(events)  # every whole event that has arrived
        await response.write_eof()
    except ConnectionResetError:  # writing to the client, which has gone: no worker's fault
        log.info("gateway: the client left a stream from %s", upstream.url)
    return response if broke is None else _Broken(response, broke, kind)


async def _read_small(upstream: aiohttp.ClientResponse, limit: int = 64 * 1024) -> bytes:
    try:
        async with asyncio.timeout(5):
            return await upstream.content.read(limit)
    except (aiohttp.ClientError, TimeoutError, OSError):
        return b""


def _failure(exc: BaseException) -> _Failure:
    """A worker's failure to answer, from what the connection raised."""
    if isinstance(exc, TimeoutError):
        kind = FailureKind.TIMEOUT
    elif isinstance(exc, ValueError) or (
        isinstance(exc, aiohttp.ClientConnectorError)
        and isinstance(exc.os_error, PrivateAddressRefused)
    ):
        kind = FailureKind.ADDRESS
    else:
        kind = FailureKind.CONNECTION
    return _Failure(_describe(exc), kind)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
