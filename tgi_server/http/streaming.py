"""Streamed responses: where `/generate_stream`'s bytes are written, and every other stream's
(`POST /` with `stream`, OpenAI's chat and completions with `stream: true`).

`stream_response` sends the headers at once, then runs its requests one after another
(`run_stream`), each into a `SocketStreamSink`. The engine hands every step's events to the
event loop in one call; the sink turns each of its request's events into SSE bytes with the
route's encoder (`wire.stream_event_bytes` for TGI's events, OpenAI's chunks from
`openai.routes`) and writes them to the connection's transport right there. The handler does
not wake up once per token: it waits for the last event (`SocketStreamSink.wait`), sending a
keep-alive comment (`KEEPALIVE_EVENT`) whenever the stream has been silent for the keep-alive
interval, as TGI does.

The last event is not written by the sink: its bytes wait in `final` for the handler, which
sends them, any error event and the route's trailer (OpenAI's `data: [DONE]`) together with the
end of the response (the chunked encoding's terminator) in one write; a socket write is a system
call and wakes the client, and on a small VM it cost as much as the rest of a short request's
handling.

The transport buffers what a slow client has not read yet. That is bounded: a request makes at
most its token budget of events (a few hundred bytes each), and a client that goes away ends
the stream at its next event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from aiohttp import hdrs, web

from protocol.tgi import GenerateRequest
from tgi_server.errors import BackendError
from tgi_server.generation.events import Completion, EngineEvent, FailureEvent, TokenEvent
from tgi_server.http.app_keys import METRICS_KEY, SERVICE_KEY
from tgi_server.http.responses import recording_outcome

__all__ = [
    "KEEPALIVE_EVENT",
    "EncodeEvent",
    "ErrorEvent",
    "SocketStreamSink",
    "run_stream",
    "stream_response",
]

log = logging.getLogger(__name__)

KEEPALIVE_EVENT = b":\n\n"
"""The SSE comment a silent stream gets every keep-alive interval, as TGI sends it."""

EncodeEvent = Callable[[TokenEvent], bytes]
"""One token event as the SSE bytes the client gets (b"" to send nothing for it)."""

ErrorEvent = Callable[[BackendError], bytes]
"""The route's in-stream error event for an error."""


async def stream_response(
    request: web.Request,
    headers: dict[str, str],
    streams: Sequence[tuple[GenerateRequest, EncodeEvent]],
    received_at: float,
    *,
    error_event: ErrorEvent,
    trailer: bytes = b"",
    add_special_tokens: bool = True,
) -> web.StreamResponse:
    """Stream `streams` in turn; an error ends them all with `error_event`."""
    response = web.StreamResponse(headers=headers)
    try:
        await response.prepare(request)
        await response.write(b"")  # the headers go out now, ahead of the events
        ending = await _write_streams(
            request, response, streams, received_at, error_event, add_special_tokens
        )
        await response.write_eof(ending + trailer)  # the last event and the end: one write
    except ConnectionResetError:  # `run_stream` counted it as dropped if it was still running
        log.debug("client went away during a stream")
    return response


async def _write_streams(
    request: web.Request,
    response: web.StreamResponse,
    streams: Sequence[tuple[GenerateRequest, EncodeEvent]],
    received_at: float,
    error_event: ErrorEvent,
    add_special_tokens: bool,
) -> bytes:
    """Each request's events through a `SocketStreamSink`. The bytes left to write: the last
    event, or the error event."""
    chunked = response.headers.get(hdrs.TRANSFER_ENCODING) == "chunked"
    pending = b""
    try:
        for generate_request, encode in streams:
            if pending:  # the previous request's last event, before this one's first
                await response.write(pending)
                pending = b""
            sink = SocketStreamSink(request.transport, chunked=chunked, encode=encode)
            await run_stream(
                request.app,
                generate_request,
                sink,
                received_at,
                add_special_tokens=add_special_tokens,
            )
            pending = sink.final
    except BackendError as exc:
        pending += error_event(exc)
    return pending


async def run_stream(
    app: web.Application,
    body: GenerateRequest,
    sink: SocketStreamSink,
    received_at: float,
    *,
    add_special_tokens: bool = True,
) -> Completion:
    """Run one streamed request into `sink` and record its outcome exactly once: served, failed
    with its error type, or dropped when the client went away (ConnectionResetError or the
    handler's cancellation, re-raised). Any other error is raised as a GenerationError, for the
    route to send as its in-stream error event."""
    metrics, service = app[METRICS_KEY], app[SERVICE_KEY]
    dropped = (ConnectionResetError, asyncio.CancelledError)
    with recording_outcome(metrics, dropped=dropped, failure_log="a stream failed"):
        streamed = service.streaming_into(body, sink, add_special_tokens=add_special_tokens)
        async with streamed as validated_at:
            completion = await sink.wait(service.keepalive_s)
    metrics.served(completion, received_at, validated_at)
    return completion


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
