"""Streamed token events, written straight to the client's socket.

The engine hands every step's events to the event loop in one call; a `SocketStreamSink` turns
each of its request's events into SSE bytes with the route's encoder (TGI's `/generate_stream`
events, or OpenAI chunks) and writes them to the connection's transport right there. The
request's handler does not wake up once per token: it waits for the last event (`wait`),
sending a keep-alive comment whenever the stream has been silent for the keep-alive interval, as
TGI does.

The last event is not written here: its bytes wait in `final` for the handler, which sends them
together with what ends the response (the chunked encoding's terminator, OpenAI's `[DONE]`) in
one write; a socket write is a system call and wakes the client, and on a small VM it cost as
much as the rest of a short request's handling.

The transport buffers what a slow client has not read yet. That is bounded: a request makes at
most its token budget of events (a few hundred bytes each), and a client that goes away ends
the stream at its next event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from tgi_server.generation.events import Completion, EngineEvent, FailureEvent, TokenEvent
from tgi_server.http.responses import KEEPALIVE_EVENT

__all__ = ["EncodeEvent", "SocketStreamSink"]

EncodeEvent = Callable[[TokenEvent], bytes]
"""One token event as the SSE bytes the client gets (b"" to send nothing for it)."""


class SocketStreamSink:
    """An `EventSink` that writes one request's events to its (prepared) response's socket."""

    def __init__(
        self,
        transport: asyncio.Transport | None,
        *,
        chunked: bool,
        encode: EncodeEvent,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._transport = transport
        self._chunked = chunked
        self._encode = encode
        self._clock = clock
        self._last_write = clock()
        self._done: asyncio.Future[Completion] = asyncio.get_running_loop().create_future()
        self.final = b""
        """The last event's bytes (unframed), for the handler to write with the response's end."""

    def put_nowait(self, item: EngineEvent, /) -> None:
        """Called by the engine on the event loop, in order: write the event or finish."""
        if self._done.done():
            return
        if isinstance(item, FailureEvent):
            self._done.set_exception(item.error)
            return
        try:
            data = self._encode(item)
        except Exception as exc:  # noqa: BLE001 -- `wait` raises it in the handler, which reports it
            self._done.set_exception(exc)
            return
        if item.completion:
            if self._transport is None or self._transport.is_closing():  # left at the last step
                self._done.set_exception(ConnectionResetError("the client went away"))
                return
            self.final = data
            self._done.set_result(item.completion)
        elif data:
            self._send(data)

    async def wait(self, keepalive_s: float) -> Completion:
        """The last event's completion; raises the request's BackendError, or
        ConnectionResetError when the client went away."""
        while not self._done.done():
            silent = self._clock() - self._last_write
            if silent >= keepalive_s:
                self._send(KEEPALIVE_EVENT)
            else:
                await asyncio.wait((self._done,), timeout=keepalive_s - silent)
        return self._done.result()

    def _send(self, data: bytes) -> None:
        transport = self._transport
        try:
            if transport is None or transport.is_closing():
                raise ConnectionResetError("the client went away")
            transport.write(b"%x\r\n%b\r\n" % (len(data), data) if self._chunked else data)
        except (OSError, RuntimeError) as exc:  # ConnectionResetError is an OSError
            if not self._done.done():
                self._done.set_exception(ConnectionResetError(f"the client went away: {exc}"))
            return
        self._last_write = self._clock()
