"""One streamed HTTP response for the streaming routes (TGI's and OpenAI's).

The headers go out at once; each request's events then go straight to the socket through its
`SocketStreamSink`, one request after another; the last event, any error event and the route's
trailer (OpenAI's `data: [DONE]`) go out with the end of the response, in one write.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from aiohttp import hdrs, web

from protocol.tgi import GenerateRequest
from tgi_server.errors import BackendError
from tgi_server.http.responses import run_stream
from tgi_server.http.stream_sink import EncodeEvent, SocketStreamSink

__all__ = ["stream_response"]

log = logging.getLogger(__name__)

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
