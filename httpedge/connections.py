"""A server's connections, bounded: how many, how long each may take, what a bad request gets.

aiohttp bounds none of this on its own: a connection may take as long as it likes to send its
first request's headers (its idle timer, `keepalive_timeout`, is the only limit) or its body,
a client that never reads holds its answer's writer forever, there is no cap on how many
connections are open, and a request it cannot parse gets a plain-text 400. `ConnectionGuard`
is the protocol factory in front of aiohttp's server, and enforces `ConnectionLimits`:

- **headers**: a connection that has not sent the headers of its first request within
  `header_timeout_s` is closed (a request's handler starts as soon as its headers are in: that
  cancels the timer). A request line, header name or header value over `max_header_bytes`, or
  more than `max_headers` headers, is answered 431 `headers_too_large`, any other request
  aiohttp cannot parse 400 `bad_request`; JSON, then the connection closes;
- **body**: a request's body must be in within `body_timeout_s` of its headers, else the
  handler's read raises `BodyTimeout` (408 `request_timeout` through the app's error
  middleware), and the connection closes after the answer;
- **a reader that stalls**: once the kernel's send buffer is full and anything is left to
  send, the client must take some of it within each `send_timeout_s`, else its connection is
  aborted (its handler sees the client gone); aiohttp holds at most 64 KiB above the kernel's
  buffer before it waits;
- **how many**: at most `max_connections` are open at once; a new one beyond that first closes
  the oldest connection still waiting for its headers (a stalled client, not a served one), and
  when there is none it is closed at once;
- **between requests**: a kept-alive connection idle for `keepalive_timeout_s` is closed
  (aiohttp's own timer, which counts headers still arriving as idle); after an answer given
  before the body was read to its end, `LINGERING_TIME_S` bounds what is left.

`connection_runner` and `GuardedSite` put a guard in front of an app: the runner, then the site.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler
from pydantic import Field

from protocol.errors import INTERNAL_MESSAGE, ErrorType, ServiceError, error_answer

__all__ = [
    "LINGERING_TIME_S",
    "BodyTimeout",
    "ConnectionGuard",
    "ConnectionLimits",
    "GuardedSite",
    "connection_runner",
]

log = logging.getLogger(__name__)

LINGERING_TIME_S = 2.0
"""After an answer given before its request's body was read to the end (a 413, a 401), the rest
is read and dropped for at most this long, so the client reads the answer rather than a reset;
then the connection is closed (aiohttp's default is 10 s)."""


@dataclass(frozen=True)
class ConnectionLimits:
    """What one client's connections may take of a server; each service's settings hold its own
    (`connection_limits`)."""

    header_timeout_s: float
    body_timeout_s: float
    send_timeout_s: float
    keepalive_timeout_s: float
    max_connections: int
    max_header_bytes: int
    max_headers: int = 128

    @classmethod
    def of(cls, settings: LimitFields) -> ConnectionLimits:
        """The limits a service's settings name, by the same field names."""
        return cls(
            header_timeout_s=settings.header_timeout_s,
            body_timeout_s=settings.body_timeout_s,
            send_timeout_s=settings.send_timeout_s,
            keepalive_timeout_s=settings.keepalive_timeout_s,
            max_connections=settings.max_connections,
            max_header_bytes=settings.max_header_bytes,
        )


_LIMIT_FIELDS: dict[str, dict[str, Any]] = {
    "header_timeout_s": {
        "default": 10.0,
        "gt": 0.0,
        "description": "a connection's first request line and headers must arrive within this, "
        "else it is closed (also the TLS handshake's limit)",
    },
    "body_timeout_s": {
        "default": 30.0,
        "gt": 0.0,
        "description": "a request's whole body must arrive within this after its headers "
        "(else 408)",
    },
    "send_timeout_s": {
        "default": 60.0,
        "gt": 0.0,
        "description": "a client that leaves its socket's write buffer full this long (it reads "
        "nothing) is cut off",
    },
    "keepalive_timeout_s": {
        "default": 75.0,
        "gt": 0.0,
        "description": "a kept-alive connection idle this long between requests is closed",
    },
    "max_connections": {
        "default": 4096,
        "ge": 1,
        "description": "connections open at once; beyond it the oldest still without headers goes",
    },
    "max_header_bytes": {
        "default": 8190,
        "ge": 1024,
        "description": "the longest request line, or header name or value, in bytes (else 414 or "
        "431)",
    },
}


def limit_field(prefix: str, name: str) -> Any:
    """The settings field for the connection limit `name` (one of `LimitFields`), read from the
    variable `prefix` + `NAME`: one default, bound and description for every service, which
    differ only by their prefix (`TGIS_ROUTER_`, `TGIS_WORKER_`, `TGIS_BACKEND_`)."""
    return Field(validation_alias=f"{prefix}{name.upper()}", **_LIMIT_FIELDS[name])


class LimitFields(Protocol):
    """The fields of a service's settings that `ConnectionLimits.of` reads."""

    @property
    def header_timeout_s(self) -> float: ...
    @property
    def body_timeout_s(self) -> float: ...
    @property
    def send_timeout_s(self) -> float: ...
    @property
    def keepalive_timeout_s(self) -> float: ...
    @property
    def max_connections(self) -> int: ...
    @property
    def max_header_bytes(self) -> int: ...


class BodyTimeout(ServiceError, TimeoutError):
    """408: a request's body did not arrive within the body deadline. It is a TimeoutError too,
    so that aiohttp's read of what is left of the body (after the answer) stops at it and closes
    the connection."""

    error_type = ErrorType.REQUEST_TIMEOUT


class _HeadersTooLarge(ServiceError):
    error_type = ErrorType.HEADERS_TOO_LARGE


class _BadRequest(ServiceError):
    error_type = ErrorType.BAD_REQUEST


class ConnectionGuard:
    """The protocol factory for `loop.create_server`, around aiohttp's `web.Server`."""

    def __init__(self, server: web.Server, limits: ConnectionLimits) -> None:
        self._server = server
        self._limits = limits
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
        if self._open >= self._limits.max_connections and not self._evict_oldest_stalled():
            return _Refused()
        return _Tracked(self, self._new_handler(), self._limits.send_timeout_s)

    def _new_handler(self) -> RequestHandler:
        """What `web.Server()` makes (with the runner's options), as a `JsonErrorHandler`."""
        options: dict[str, Any] = self._server._kwargs
        return JsonErrorHandler(self._server, loop=asyncio.get_running_loop(), **options)

    def _opened(self, handler: RequestHandler) -> None:
        self._open += 1
        loop = asyncio.get_running_loop()
        timer = loop.call_later(self._limits.header_timeout_s, handler.force_close)
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
        body_timeout_s = self._limits.body_timeout_s

        async def handle_request(request: web.BaseRequest) -> web.StreamResponse:
            self._stop_timer(request.protocol)
            if not request.body_exists or request.content.is_eof():
                return await handle(request)  # the usual case: no deadline left to keep
            loop = asyncio.get_running_loop()
            timer = loop.call_later(body_timeout_s, _body_late, request.content, body_timeout_s)
            try:
                return await handle(request)
            finally:
                timer.cancel()

        return handle_request


def _body_late(content: StreamReader, timeout_s: float) -> None:
    """The body deadline passed: a read of what has not arrived raises `BodyTimeout`."""
    if not content.is_eof():
        message = f"the request body did not arrive within {timeout_s:g}s of its headers"
        content.set_exception(BodyTimeout(f"{message}: send it at once"))


class JsonErrorHandler(RequestHandler):
    """aiohttp's protocol for one connection, answering what it cannot parse as JSON errors.

    Once it answers one, it reads nothing more from the connection, which closes after the
    answer: aiohttp would otherwise go on feeding the rest (a 1 MiB header, say) to a parser
    that failed already, each chunk kept with the error it raises until the connection ends."""

    __slots__ = ("_refusing",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._refusing = False

    def data_received(self, data: bytes) -> None:
        if not self._refusing:
            super().data_received(data)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        self._refusing = True
        if self.transport is not None:
            self.transport.pause_reading()
        if request.writer.output_size > 0:  # too late for an answer: as aiohttp does
            return super().handle_error(request, status, exc, message)
        error = _parse_error(status, exc, message)
        if error.status >= 500:
            self.log_exception("Error handling request", exc_info=exc)
        else:
            self.log_debug("Refused a request it cannot parse: %s", error.message)
        answer = error_answer(error)
        response = web.Response(status=answer.status, headers=answer.headers, body=answer.body)
        response.force_close()
        return response


def _parse_error(status: int, exc: BaseException | None, message: str | None) -> ServiceError:
    """What to answer for a request aiohttp could not parse; the client's bytes are not echoed."""
    if status >= 500:
        return ServiceError(INTERNAL_MESSAGE)
    if isinstance(exc, LineTooLong):
        limit = exc.args[1] if len(exc.args) > 1 else "size"
        return _HeadersTooLarge(f"the request line or a header is over the {limit}-byte limit")
    if "too many headers" in (message or "").lower():
        return _HeadersTooLarge("too many request headers")
    return _BadRequest(f"cannot parse the request: {message}" if message else "cannot parse it")


class _Tracked(asyncio.Protocol):
    """aiohttp's protocol for one connection, with the guard told when it opens and closes,
    and aborted when its client takes none of what is left to send for `send_timeout_s`.

    The transport pauses the protocol as soon as anything is left unsent (a write-buffer
    high-water mark of 0), so that a stall is seen whatever is left: even a few bytes stuck
    behind a full kernel buffer would hold the connection for good, as closing it waits for
    them. aiohttp writes up to 64 KiB before it waits for the buffer to drain."""

    def __init__(self, guard: ConnectionGuard, handler: RequestHandler, send_timeout_s: float):
        self._guard = guard
        self._handler = handler
        self._send_timeout_s = send_timeout_s
        self._transport: asyncio.BaseTransport | None = None
        self._stalled: asyncio.TimerHandle | None = None
        self._unsent = 0  # what was left to send when the timer was last set

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        if isinstance(transport, asyncio.WriteTransport):
            transport.set_write_buffer_limits(high=0)
        self._guard._opened(self._handler)
        self._handler.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_send_timer()
        self._guard._closed(self._handler)
        self._handler.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._handler.data_received(data)

    def eof_received(self) -> None:
        self._handler.eof_received()  # aiohttp's keeps nothing open: the transport closes

    def pause_writing(self) -> None:
        if self._stalled is None:
            self._set_send_timer()
        self._handler.pause_writing()

    def resume_writing(self) -> None:
        self._stop_send_timer()
        self._handler.resume_writing()

    def _set_send_timer(self) -> None:
        self._unsent = self._left_to_send()
        loop = asyncio.get_running_loop()
        self._stalled = loop.call_later(self._send_timeout_s, self._check_progress)

    def _stop_send_timer(self) -> None:
        if self._stalled is not None:
            self._stalled.cancel()
            self._stalled = None

    def _left_to_send(self) -> int:
        transport = self._transport
        if isinstance(transport, asyncio.WriteTransport):
            return transport.get_write_buffer_size()
        return 0

    def _check_progress(self) -> None:
        """send_timeout_s since the timer was set: a client that took some is given as long
        again; one that took nothing is dropped."""
        if self._left_to_send() < self._unsent:
            self._set_send_timer()
            return
        self._stalled = None
        _abort(self._transport)


class _Refused(asyncio.Protocol):
    """A connection over the limit: closed as soon as it is made."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        _abort(transport)


def _abort(transport: asyncio.BaseTransport | None) -> None:
    if isinstance(transport, asyncio.Transport):
        transport.abort()
    elif transport is not None:
        transport.close()


def connection_runner(
    app: web.Application, limits: ConnectionLimits, **options: Any
) -> web.AppRunner:
    """An `AppRunner` for `app` with `limits`' keep-alive and header sizes (`options`: any other
    of `AppRunner`'s); serve it with `GuardedSite`. Handlers are cancelled when their client
    goes away."""
    return web.AppRunner(
        app,
        handler_cancellation=True,
        keepalive_timeout=limits.keepalive_timeout_s,
        lingering_time=LINGERING_TIME_S,
        max_line_size=limits.max_header_bytes,
        max_field_size=limits.max_header_bytes,
        max_headers=limits.max_headers,
        **options,
    )


class GuardedSite(web.BaseSite):
    """A TCP site (a host and port, or a bound socket) whose connections a `ConnectionGuard`
    admits; the TLS handshake too must end within `header_timeout_s`."""

    def __init__(
        self,
        runner: web.AppRunner,
        limits: ConnectionLimits,
        host: str | None = None,
        port: int = 0,
        *,
        sock: Any = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._limits = limits
        self._host = host
        self._port = port
        self._sock = sock
        self.guard: ConnectionGuard | None = None
        self._listening: asyncio.Server | None = None

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self.port}"

    @property
    def port(self) -> int:
        """The port listened on (the one the system chose for port 0), once started."""
        if self._listening is not None and self._listening.sockets:
            port: int = self._listening.sockets[0].getsockname()[1]
            return port
        return self._port

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None, "set the runner up first"
        self.guard = ConnectionGuard(server, self._limits)
        handshake_s = self._limits.header_timeout_s if self._ssl_context else None
        loop = asyncio.get_running_loop()
        if self._sock is not None:
            address: dict[str, Any] = {"sock": self._sock}
        else:
            address = {"host": self._host, "port": self._port, "reuse_address": True}
        self._listening = await loop.create_server(
            self.guard,
            ssl=self._ssl_context,
            ssl_handshake_timeout=handshake_s,
            backlog=self._backlog,
            **address,
        )
        self._server = self._listening
