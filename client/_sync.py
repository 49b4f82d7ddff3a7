"""`Client`: the synchronous twin of `AsyncClient`, running it on a private background loop."""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from typing import Any, Self, Unpack

from client._async import DEFAULT_ENDPOINT, DEFAULT_ROUTER_URL, AsyncClient, ClientOptions
from client._loop_thread import LoopThread
from client.chat import ChatCompletion
from client.generation import DEFAULT_MAX_NEW_TOKENS, GenerateOptions
from client.routing import Ticket
from protocol.tgi import GenerateResponse, StreamResponse

__all__ = ["Client"]


class Client:
    """The same methods as `AsyncClient`, blocking. Use it as `with Client(...) as client:` (or
    call `close()`). One client may be shared by several threads: every call runs on the
    client's own event loop thread. It must not be called from inside a running event loop."""

    def __init__(
        self,
        router_url: str | Sequence[str] = DEFAULT_ROUTER_URL,
        endpoint: str = DEFAULT_ENDPOINT,
        api_key: str | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        """See `AsyncClient` (all but its `session`: this client runs its own)."""
        self._async = AsyncClient(router_url, endpoint, api_key, **options)
        self._loop = LoopThread(name="tgi-serverless-client")

    @property
    def router_url(self) -> str:
        return self._async.router_url

    @property
    def router_urls(self) -> tuple[str, ...]:
        return self._async.router_urls

    @property
    def endpoint(self) -> str:
        return self._async.endpoint

    def __repr__(self) -> str:
        return "Client" + repr(self._async).removeprefix("AsyncClient")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP session and stop the background loop. Safe to call twice."""
        if self._loop.running:
            self._loop.run(self._async.aclose())
        self._loop.stop()

    def generate(
        self,
        prompt: str,
        *,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        **options: Unpack[GenerateOptions],
    ) -> GenerateResponse:
        """See `AsyncClient.generate`."""
        coro = self._async.generate(prompt, max_new_tokens=max_new_tokens, **options)
        return self._loop.run(coro)

    def generate_stream(
        self,
        prompt: str,
        *,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        **options: Unpack[GenerateOptions],
    ) -> Generator[StreamResponse, None, None]:
        """See `AsyncClient.generate_stream`."""
        agen = self._async.generate_stream(prompt, max_new_tokens=max_new_tokens, **options)
        return self._loop.iterate(agen)

    def chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        max_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        **options: Any,
    ) -> ChatCompletion:
        """See `AsyncClient.chat`."""
        return self._loop.run(self._async.chat(messages, max_tokens=max_tokens, **options))

    def request(self, path: str, payload: Mapping[str, Any], cost: int) -> bytes:
        """See `AsyncClient.request`."""
        return self._loop.run(self._async.request(path, payload, cost))

    def request_stream(
        self, path: str, payload: Mapping[str, Any], cost: int
    ) -> Generator[bytes, None, None]:
        """See `AsyncClient.request_stream`."""
        return self._loop.iterate(self._async.request_stream(path, payload, cost))

    def route(self, cost: int, avoid: Sequence[str] = ()) -> Ticket:
        """See `AsyncClient.route`."""
        return self._loop.run(self._async.route(cost, avoid))
