"""The PyWorker's connections: a bounded number, and a deadline for each one's request headers.

aiohttp bounds neither: a connection may take as long as it likes to send its first request's
headers (its idle timer, `keepalive_timeout`, is the only limit), and there is no cap on how
many are open. `ConnectionGuard` is the protocol factory in front of aiohttp's server:

- a connection that has not sent the headers of its first request within `header_timeout_s` is
  closed (a request's handler starts as soon as its headers are in: that cancels the timer);
- at most `max_connections` are open at once; a new one beyond that first closes the oldest
  connection still waiting for its headers (a stalled client, not a served one), and when
  there is none it is closed at once.

Between requests on a kept-alive connection aiohttp's own idle timer applies
(`KEEPALIVE_TIMEOUT_S`, which counts headers still arriving as idle); the body's deadline is the
route's (`pyworker.routes`), as only the handler knows when it reads a body; after an answer
given before the body was read to its end, `LINGERING_TIME_S` bounds what is left.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

__all__ = ["KEEPALIVE_TIMEOUT_S", "LINGERING_TIME_S", "ConnectionGuard"]

KEEPALIVE_TIMEOUT_S = 75.0
"""An idle kept-alive connection is closed after this long (aiohttp's `run_app` default)."""

LINGERING_TIME_S = 2.0
"""After an answer given before its request's body was read to the end (a 408, a 413, a 401),
the rest is read and dropped for at most this long, so the client reads the answer rather than a
reset; then the connection is closed (aiohttp's default is 10 s)."""


class ConnectionGuard:
    """The protocol factory for `loop.create_server`, around aiohttp's `web.Server`."""

    def __init__(
        self, server: web.Server, *, max_connections: int, header_timeout_s: float
    ) -> None:
        self._server = server
        self._max_connections = max_connections
        self._header_timeout_s = header_timeout_s
        self._open = 0
        # Connections whose first request's headers are not in yet, oldest first.
        self._awaiting_headers: dict[RequestHandler, asyncio.TimerHandle] = {}
        server.request_handler = self._headers_received(server.request_handler)

    @property
    def open_connections(self) -> int:
        return self._open

    @property
    def awaiting_headers(self) -> int:
        return len(self._awaiting_headers)

    def __call__(self) -> asyncio.BaseProtocol:
        if self._open >= self._max_connections and not self._evict_oldest_stalled():
            return _Refused()
        return _Tracked(self, self._server())

    def _opened(self, handler: RequestHandler) -> None:
        self._open += 1
        loop = asyncio.get_running_loop()
        timer = loop.call_later(self._header_timeout_s, handler.force_close)
        self._awaiting_headers[handler] = timer

    def _closed(self, handler: RequestHandler) -> None:
        self._open -= 1
        self._stop_timer(handler)

    def _stop_timer(self, handler: RequestHandler) -> None:
        timer = self._awaiting_headers.pop(handler, None)
        if timer is not None:
            timer.cancel()

    def _evict_oldest_stalled(self) -> bool:
        """Close the oldest connection still without headers; False when there is none."""
        for handler in self._awaiting_headers:
            self._stop_timer(handler)
            handler.force_close()
            return True
        return False

    def _headers_received(
        self, handle: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
    ) -> Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]:
        async def handle_request(request: web.BaseRequest) -> web.StreamResponse:
            self._stop_timer(request.protocol)
            return await handle(request)

        return handle_request


class _Tracked(asyncio.Protocol):
    """aiohttp's protocol for one connection, with the guard told when it opens and closes."""

    def __init__(self, guard: ConnectionGuard, handler: RequestHandler) -> None:
        self._guard = guard
        self._handler = handler

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._guard._opened(self._handler)
        self._handler.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._guard._closed(self._handler)
        self._handler.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._handler.data_received(data)

    def eof_received(self) -> None:
        self._handler.eof_received()  # aiohttp's keeps nothing open: the transport closes

    def pause_writing(self) -> None:
        self._handler.pause_writing()

    def resume_writing(self) -> None:
        self._handler.resume_writing()


class _Refused(asyncio.Protocol):
    """A connection over the limit: closed as soon as it is made."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if isinstance(transport, asyncio.Transport):
            transport.abort()
        else:
            transport.close()
