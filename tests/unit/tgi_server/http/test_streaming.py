"""`SocketStreamSink`: a stream's events written straight to its socket (framing, the end,
failures, keep-alives). `stream_response` and `run_stream`, which need an application and an
engine, are tested through the routes in tests/integration/tgi_server/test_stream.py."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import cast

import pytest

from protocol.sse import SSEParser
from tests.chunked import unchunk
from tests.unit.tgi_server.conftest import FakeTransport
from tgi_server.errors import ValidationError
from tgi_server.generation.events import Completion, FailureEvent, GeneratedToken, TokenEvent
from tgi_server.http.streaming import SocketStreamSink
from tgi_server.http.wire import stream_event_bytes

COMPLETION = Completion(" ok", "length", 2, None, 3)
FIRST = TokenEvent(1, GeneratedToken(5, " o", -0.5, False))
LAST = TokenEvent(2, GeneratedToken(6, "k", -0.25, False), completion=COMPLETION)


def sink_for(
    transport: FakeTransport | None, *, details: bool = False, chunked: bool = True
) -> SocketStreamSink:
    encode = partial(stream_event_bytes, details=details)
    return SocketStreamSink(
        cast(asyncio.Transport | None, transport), chunked=chunked, encode=encode
    )


async def test_each_event_is_one_chunk_of_tgi_sse_and_the_last_one_ends_the_wait() -> None:
    transport = FakeTransport()
    sink = sink_for(transport, details=True)
    sink.put_nowait(FIRST)
    sink.put_nowait(LAST)
    assert await asyncio.wait_for(sink.wait(15.0), 1) == COMPLETION
    written = unchunk(bytes(transport.written))
    assert written == stream_event_bytes(FIRST, details=True)
    assert sink.final == stream_event_bytes(LAST, details=True)  # the handler writes it last
    events = SSEParser().feed(written + sink.final)
    assert [event.json()["index"] for event in events] == [1, 2]
    assert events[1].json()["details"]["finish_reason"] == "length"


async def test_without_chunking_the_events_are_written_as_they_are() -> None:
    transport = FakeTransport()
    sink = sink_for(transport, chunked=False)
    sink.put_nowait(FIRST)
    assert bytes(transport.written) == stream_event_bytes(FIRST, details=False)


async def test_a_failure_is_raised_by_wait_and_nothing_after_it_is_written() -> None:
    transport = FakeTransport()
    sink = sink_for(transport)
    sink.put_nowait(FIRST)
    sink.put_nowait(FailureEvent(ValidationError("no")))
    sink.put_nowait(LAST)
    with pytest.raises(ValidationError):
        await asyncio.wait_for(sink.wait(15.0), 1)
    assert unchunk(bytes(transport.written)) == stream_event_bytes(FIRST, details=False)


@pytest.mark.parametrize("gone", ["closing", "no transport"])
async def test_a_client_that_went_away_ends_the_wait_with_connection_reset(gone: str) -> None:
    transport = FakeTransport()
    transport.closing = True
    sink = sink_for(transport if gone == "closing" else None)
    sink.put_nowait(FIRST)
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(sink.wait(15.0), 1)
    if gone == "closing":  # the sink has that transport: it must not have written to it
        assert transport.written == b""


async def test_a_client_gone_before_the_last_event_is_dropped_not_served() -> None:
    transport = FakeTransport()
    sink = sink_for(transport)
    sink.put_nowait(FIRST)
    transport.closing = True  # the client leaves during the last step
    sink.put_nowait(LAST)
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(sink.wait(15.0), 1)
    assert sink.final == b""


async def test_a_silent_stream_gets_keepalive_comments_until_its_events_come() -> None:
    transport = FakeTransport()
    sink = sink_for(transport)
    waiting = asyncio.create_task(sink.wait(0.02))
    await asyncio.sleep(0.07)
    keepalives = unchunk(bytes(transport.written))
    assert keepalives.count(b":\n\n") >= 2
    assert keepalives == b":\n\n" * keepalives.count(b":\n\n")
    sink.put_nowait(LAST)
    assert await asyncio.wait_for(waiting, 1) == COMPLETION


async def test_a_client_gone_during_keepalives_ends_the_wait() -> None:
    transport = FakeTransport()
    sink = sink_for(transport)
    waiting = asyncio.create_task(sink.wait(0.01))
    await asyncio.sleep(0.02)
    transport.closing = True
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(waiting, 1)


async def test_a_transport_that_fails_to_write_ends_the_wait_with_connection_reset() -> None:
    class Failing(FakeTransport):
        def write(self, data: bytes) -> None:
            raise RuntimeError("unable to perform operation on a closed transport")

    sink = sink_for(Failing())
    sink.put_nowait(FIRST)
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(sink.wait(15.0), 1)


async def test_an_encoder_that_raises_ends_the_wait_with_its_error_and_writes_nothing() -> None:
    def failing(event: TokenEvent) -> bytes:
        raise ValueError(f"cannot encode event {event.index}")

    transport = FakeTransport()
    sink = SocketStreamSink(cast(asyncio.Transport, transport), chunked=True, encode=failing)
    sink.put_nowait(FIRST)
    sink.put_nowait(LAST)
    with pytest.raises(ValueError, match="cannot encode event 1"):
        await asyncio.wait_for(sink.wait(15.0), 1)
    assert transport.written == b""
