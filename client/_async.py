"""`AsyncClient`: route a request, then post it with its ticket straight to the chosen worker."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from types import TracebackType
from typing import Any, Self, Unpack

import aiohttp

from client._http import Peer, post_json, post_streaming
from client.errors import NoCapacityError, ProtocolError
from client.generation import (
    DEFAULT_MAX_NEW_TOKENS,
    GenerateOptions,
    StreamDecoder,
    build_generate_call,
    parse_generate_response,
)
from client.routing import PollPolicy, PollSchedule, Ticket, interpret_route_answer, route_body
from protocol.route import RouteWaiting
from protocol.tgi import GenerateResponse, StreamResponse
from protocol.version import VERSION

__all__ = ["DEFAULT_ENDPOINT", "DEFAULT_ROUTER_URL", "DEFAULT_TIMEOUT", "AsyncClient"]

DEFAULT_ROUTER_URL = "http://127.0.0.1:8080"
DEFAULT_ENDPOINT = "default"
DEFAULT_TIMEOUT = 600.0
"""Seconds one HTTP exchange (a route call, or a whole generation) may take."""

logger = logging.getLogger(__name__)


class AsyncClient:
    """A client of one endpoint behind one router, with one pooled HTTP session.

    Use it as `async with AsyncClient(...) as client:` (or call `aclose()`). The API key goes
    to the router only; workers get the signed ticket. `polling` says how long to wait for a
    worker while the endpoint scales from zero. An injected `session` is used but not closed.
    """

    def __init__(
        self,
        router_url: str = DEFAULT_ROUTER_URL,
        endpoint: str = DEFAULT_ENDPOINT,
        api_key: str | None = None,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        polling: PollPolicy | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        if not router_url.startswith(("http://", "https://")):
            raise ValueError(f"router_url must be an http(s) URL, got {router_url!r}")
        self._router_url = router_url.rstrip("/")
        self._endpoint = endpoint
        self._api_key = api_key
        self._timeouts = aiohttp.ClientTimeout(total=timeout)
        self._polling = polling or PollPolicy()
        self._session = session
        self._owns_session = session is None
        self._rng = random.Random()
        self._closed = False

    @property
    def router_url(self) -> str:
        return self._router_url

    @property
    def endpoint(self) -> str:
        return self._endpoint

    def __repr__(self) -> str:
        return f"AsyncClient(router_url={self._router_url!r}, endpoint={self._endpoint!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
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
        ticket = await self.route(call.cost)
        body = await self._post_to_worker(ticket, "/generate", call.payload)
        return parse_generate_response(body)

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
        ticket = await self.route(call.cost)
        decoder = StreamDecoder()
        chunks = self._stream_from_worker(ticket, "/generate_stream", call.payload)
        async with aclosing(chunks):
            async for chunk in chunks:
                for response in decoder.feed(chunk):
                    yield response
                if decoder.finished:
                    return
        decoder.finish()

    async def route(self, cost: int) -> Ticket:
        """A ticket for `cost` tokens on this endpoint, polling while no worker is ready."""
        schedule = PollSchedule(self._polling, rng=self._rng)
        request_idx: int | None = None
        while True:
            answer = await self._ask_router(cost, request_idx)
            if isinstance(answer, Ticket):
                logger.debug("routed to %s (cost %d)", answer.url, cost)
                return answer
            request_idx = answer.request_idx
            delay = schedule.next_delay()
            if delay is None:
                raise NoCapacityError(
                    f"no worker of endpoint {self._endpoint!r} became ready within "
                    f"{self._polling.timeout:g} s (workers: {answer.status})",
                    origin="router",
                )
            logger.debug("no worker ready yet (%s); asking again in %.2f s", answer.status, delay)
            await asyncio.sleep(delay)

    async def _ask_router(self, cost: int, request_idx: int | None) -> Ticket | RouteWaiting:
        body = await post_json(
            self._http(),
            f"{self._router_url}/route/",
            route_body(self._endpoint, cost, request_idx),
            peer="router",
            headers=self._router_headers(),
            timeouts=self._timeouts,
        )
        return interpret_route_answer(_json_body(body, "router"))

    async def _post_to_worker(self, ticket: Ticket, path: str, payload: Mapping[str, Any]) -> bytes:
        return await post_json(
            self._http(),
            ticket.worker_url(path),
            ticket.worker_body(payload),
            peer="worker",
            timeouts=self._timeouts,
        )

    async def _stream_from_worker(
        self, ticket: Ticket, path: str, payload: Mapping[str, Any]
    ) -> AsyncGenerator[bytes, None]:
        async with post_streaming(
            self._http(),
            ticket.worker_url(path),
            ticket.worker_body(payload),
            peer="worker",
            timeouts=self._timeouts,
        ) as response:
            async for chunk in response.content.iter_any():
                yield chunk

    def _router_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def _http(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("this client is closed")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": f"tgi-serverless-client/{VERSION}"}
            )
        return self._session


def _json_body(body: bytes, peer: Peer) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise ProtocolError("the answer is not JSON", origin=peer, status=200) from None
