"""`AsyncClient`: route a request, then post it with its ticket straight to the chosen worker."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Self, TypedDict, Unpack

import aiohttp

from client._http import Exchange, Peer, iter_chunks, post_json, post_streaming
from client.chat import CHAT_PATH, ChatCompletion, build_chat_call, parse_chat_completion
from client.errors import NoCapacityError, ProtocolError, TGISError, ValidationError
from client.generation import (
    DEFAULT_MAX_NEW_TOKENS,
    GenerateOptions,
    StreamDecoder,
    build_generate_call,
    parse_generate_response,
)
from client.retrying import RetryPolicy
from client.routers import RouterRing, router_failed
from client.routing import (
    PollPolicy,
    PollSchedule,
    Ticket,
    Waiting,
    interpret_route_answer,
    route_body,
)
from client.timeouts import Timeouts
from protocol.tgi import GenerateResponse, StreamResponse
from protocol.version import VERSION

__all__ = [
    "DEFAULT_ENDPOINT",
    "DEFAULT_ROUTER_URL",
    "DEFAULT_TIMEOUT",
    "AsyncClient",
    "ClientOptions",
]

DEFAULT_ROUTER_URL = "http://127.0.0.1:8080"
DEFAULT_ENDPOINT = "default"
DEFAULT_TIMEOUT = Timeouts()
"""Per-phase limits (route, connect, first byte, idle stream); see `client.Timeouts`."""

logger = logging.getLogger(__name__)


class ClientOptions(TypedDict, total=False):
    """The keyword options `AsyncClient` and `Client` share; `AsyncClient` gives their defaults."""

    timeout: Timeouts | float | None
    polling: PollPolicy | None
    retries: RetryPolicy | None
    api_key_in_body: bool
    ssl_context: ssl.SSLContext | None


class AsyncClient:
    """A client of one endpoint behind one router or several, with one pooled HTTP session.

    Use it as `async with AsyncClient(...) as client:` (or call `aclose()`). The API key goes
    to the router only; workers get the signed ticket. `timeout` is a `Timeouts` (or one number
    for every phase); `polling` says how long to wait for a worker while the endpoint scales
    from zero; `retries` which failures before the first byte are tried again with a new ticket.
    `ssl_context` is what HTTPS connections trust (default: the system's CAs), e.g.
    `ssl.create_default_context(cafile="router-ca.pem")` for a router with a private CA.
    `api_key_in_body=True` sends the key as `"api_key"` in the route request, as Vast.ai's own
    router expects. An injected `session` is used but not closed.

    `router_url` is one URL, a comma-separated list, or a sequence of URLs: a route request that
    a router leaves unanswered (refused, broken, timed out) or answers 5xx goes at once to the
    next router (`client.routers`), before any retry of `retries`; nothing that reached a worker
    is ever sent twice by this.
    """

    def __init__(
        self,
        router_url: str | Sequence[str] = DEFAULT_ROUTER_URL,
        endpoint: str = DEFAULT_ENDPOINT,
        api_key: str | None = None,
        *,
        timeout: Timeouts | float | None = DEFAULT_TIMEOUT,
        polling: PollPolicy | None = None,
        retries: RetryPolicy | None = None,
        api_key_in_body: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._routers = RouterRing(router_url)
        self._endpoint = endpoint
        self._key_in_body = api_key if api_key_in_body else None
        timeouts = timeout if isinstance(timeout, Timeouts) else Timeouts.uniform(timeout)
        self._to_router = Exchange(
            "router", timeouts.router_timeout(), headers=_router_headers(api_key, api_key_in_body)
        )
        self._to_worker = Exchange(
            "worker", timeouts.worker_timeout(), first_byte=timeouts.first_byte, idle=timeouts.idle
        )
        self._polling = polling or PollPolicy()
        self._retries = retries or RetryPolicy()
        self._session = session
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._owns_session = session is None
        self._rng = random.Random()
        self._closed = False

    @property
    def router_url(self) -> str:
        """The router asked first: the one that answered last."""
        return self._routers.preferred

    @property
    def router_urls(self) -> tuple[str, ...]:
        """Every router this client asks, in the order given."""
        return self._routers.urls

    @property
    def endpoint(self) -> str:
        return self._endpoint

    def __repr__(self) -> str:
        urls = self._routers.urls
        shown = urls[0] if len(urls) == 1 else list(urls)
        return f"AsyncClient(router_url={shown!r}, endpoint={self._endpoint!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP session (unless it was injected). The client is unusable afterwards."""
        self._closed = True
        if self._owns_session and self._session is not None:
            await self._session.close()

    async def generate(
        self,
        prompt: str,
        *,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        **options: Unpack[GenerateOptions],
    ) -> GenerateResponse:
        """Generate up to `max_new_tokens` tokens for `prompt` (TGI's `/generate`)."""
        call = build_generate_call(prompt, max_new_tokens, options)
        return parse_generate_response(await self.request("/generate", call.payload, call.cost))

    async def generate_stream(
        self,
        prompt: str,
        *,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        **options: Unpack[GenerateOptions],
    ) -> AsyncGenerator[StreamResponse, None]:
        """Yield the tokens of `prompt`'s generation as they arrive (TGI's `/generate_stream`);
        the last event carries `generated_text`. Nothing is sent until iteration starts."""
        call = build_generate_call(prompt, max_new_tokens, options)
        decoder = StreamDecoder()
        chunks = self.request_stream("/generate_stream", call.payload, call.cost)
        async with aclosing(chunks):
            async for chunk in chunks:
                for response in decoder.feed(chunk):
                    yield response
                if decoder.finished:
                    return
        decoder.finish()

    async def chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        max_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        **options: Any,
    ) -> ChatCompletion:
        """An OpenAI-style chat completion (the worker's `/v1/chat/completions`); `options` are
        the OpenAI fields (`temperature`, `tools`, ...) sent as given."""
        call = build_chat_call(messages, max_tokens, options)
        return parse_chat_completion(await self.request(CHAT_PATH, call.payload, call.cost))

    async def request(self, path: str, payload: Mapping[str, Any], cost: int) -> bytes:
        """POST `payload` to the worker route `path` with a ticket for `cost` tokens, and return
        the raw body of the 200 answer (with the same retries as every other call)."""
        _check_path(path)
        attempt = 0
        failed: list[str] = []
        while True:
            attempt += 1
            ticket = await self.route(cost, avoid=failed)
            try:
                return await self._post_to_worker(ticket, path, payload)
            except TGISError as error:
                await self._before_retry(error, attempt, ticket)
                _remember(failed, ticket.url)

    async def request_stream(
        self, path: str, payload: Mapping[str, Any], cost: int
    ) -> AsyncGenerator[bytes, None]:
        """The raw bytes of a streaming answer of the worker route `path`, as they arrive.
        Failures before the first byte are retried; later ones are raised."""
        _check_path(path)
        async with self._open_stream(path, payload, cost) as response:
            async for chunk in iter_chunks(response, self._to_worker.idle):
                yield chunk

    async def route(self, cost: int, avoid: Sequence[str] = ()) -> Ticket:
        """A ticket for `cost` tokens on this endpoint, polling while no worker is ready.
        The router skips the workers in `avoid` (ones that just failed) if another is ready."""
        schedule = PollSchedule(self._polling, rng=self._rng)
        waiting: _WaitingAt | None = None
        attempt = 0
        while True:
            try:
                router, answer = await self._ask_routers(cost, waiting, avoid)
            except TGISError as error:
                attempt += 1
                await self._before_retry(error, attempt, None)
                continue
            if isinstance(answer, Ticket):
                logger.debug("routed to %s by %s (cost %d)", answer.url, router, cost)
                return answer
            if answer.request_idx is not None:
                waiting = _WaitingAt(router, answer.request_idx)
            await self._wait_for_capacity(schedule, answer)

    async def _wait_for_capacity(self, schedule: PollSchedule, answer: Waiting) -> None:
        delay = schedule.next_delay()
        if delay is None:
            raise NoCapacityError(
                f"no worker of endpoint {self._endpoint!r} became ready within "
                f"{self._polling.timeout:g} s (workers: {answer.status})",
                origin="router",
            )
        logger.debug("no worker ready yet (%s); asking again in %.2f s", answer.status, delay)
        await asyncio.sleep(delay)

    async def _before_retry(self, error: TGISError, attempt: int, ticket: Ticket | None) -> None:
        """Re-raise `error` unless the policy allows another attempt; then back off."""
        if not self._retries.should_retry(error, attempt):
            raise error
        delay = self._retries.delay(error, attempt, self._rng)
        where = ticket.url if ticket else "the router"
        logger.info("%s (%s); trying again with a new ticket in %.2f s", where, error, delay)
        await asyncio.sleep(delay)

    @asynccontextmanager
    async def _open_stream(
        self, path: str, payload: Mapping[str, Any], cost: int
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        attempt = 0
        failed: list[str] = []
        while True:
            attempt += 1
            ticket = await self.route(cost, avoid=failed)
            url, body = ticket.worker_url(path), ticket.worker_body(payload)
            opening = post_streaming(self._http(), url, body, self._to_worker)
            try:
                response = await opening.__aenter__()
            except TGISError as error:
                await self._before_retry(error, attempt, ticket)
                _remember(failed, ticket.url)
                continue
            break
        try:
            yield response
        except BaseException as exc:
            if not await opening.__aexit__(type(exc), exc, exc.__traceback__):
                raise
        else:
            await opening.__aexit__(None, None, None)

    async def _ask_routers(
        self, cost: int, waiting: _WaitingAt | None, avoid: Sequence[str]
    ) -> tuple[str, Ticket | Waiting]:
        """Ask each router in turn, the preferred first, until one answers other than with
        a failure that `router_failed` lets go on; the router that answered, and its answer.
        A `request_idx` goes only to the router that gave it. The last router's failure is
        raised."""
        *others, last = self._routers.order()
        for router in others:
            request_idx = waiting.request_idx if waiting and waiting.router == router else None
            try:
                answer = await self._ask_router(router, cost, request_idx, avoid)
            except TGISError as error:
                if not router_failed(error.status):
                    raise
                logger.info("router %s failed (%s); asking the next router", router, error)
                continue
            self._routers.answered(router)
            return router, answer
        request_idx = waiting.request_idx if waiting and waiting.router == last else None
        answer = await self._ask_router(last, cost, request_idx, avoid)
        self._routers.answered(last)
        return last, answer

    async def _ask_router(
        self, router: str, cost: int, request_idx: int | None, avoid: Sequence[str]
    ) -> Ticket | Waiting:
        body = route_body(self._endpoint, cost, request_idx, avoid)
        if self._key_in_body:
            body["api_key"] = self._key_in_body
        answer = await post_json(self._http(), f"{router}/route/", body, self._to_router)
        return interpret_route_answer(_json_body(answer, "router"))

    async def _post_to_worker(self, ticket: Ticket, path: str, payload: Mapping[str, Any]) -> bytes:
        url, body = ticket.worker_url(path), ticket.worker_body(payload)
        return await post_json(self._http(), url, body, self._to_worker)

    def _http(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("this client is closed")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": f"tgi-serverless-client/{VERSION}"},
                connector=aiohttp.TCPConnector(limit=0, ssl=self._ssl),
            )
        return self._session


@dataclass(frozen=True, slots=True)
class _WaitingAt:
    """A wait-and-poll answer's `request_idx`, and the router that gave it (the only one that
    knows it)."""

    router: str
    request_idx: int


def _router_headers(api_key: str | None, in_body: bool) -> dict[str, str]:
    """The API key as a bearer token, unless it travels in the route body (or there is none)."""
    if not api_key or in_body:
        return {}
    return {"Authorization": f"Bearer {api_key}"}


def _remember(failed: list[str], url: str) -> None:
    """Add a worker that failed this request to the list the router is asked to avoid."""
    if url not in failed:
        failed.append(url)


def _check_path(path: str) -> None:
    if not path.startswith("/") or "://" in path:
        raise ValidationError(f"a worker path must start with '/', got {path!r}", origin="client")


def _json_body(body: bytes, peer: Peer) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested too deep to parse
        raise ProtocolError("the answer is not JSON", origin=peer, status=200) from None
