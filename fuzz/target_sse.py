"""The SSE code both relays and the client run on upstream bytes: `protocol.relay.EventFramer`
(cuts a stream into whole events), `protocol.sse.SSEParser` (reads events) and
`encode_json_event` (writes one).

The input's first byte picks a chunk size and a framer bound; the rest is the stream. Contract:

- the framer never loses, adds or reorders a byte: what it passed on plus what it holds is
  the stream so far; it holds at most its bound; what it passes on ends at an event boundary
  unless an event outgrew the bound;
- the parser raises only `SSEError`, and reads the same events whatever the chunking;
- a JSON value written by `encode_json_event` reads back, by the parser, as that value.
"""

from __future__ import annotations

from fuzz.inputs import MISSING, chunks, json_value, reference_json
from protocol.relay import EventFramer
from protocol.sse import ServerSentEvent, SSEError, SSEParser, encode_json_event

__all__ = ["check"]


_SEPARATORS = (b"\n\n", b"\r\n\r\n", b"\r\r")


def check(data: bytes) -> None:
    if not data:
        return
    size, stream = data[0] % 16 + 1, data[1:]
    _check_framer(stream, size, max_event_bytes=4 + data[0] // 16)
    _check_parser(stream, size)
    _check_encoder(stream)


def _check_framer(stream: bytes, size: int, max_event_bytes: int) -> None:
    framer = EventFramer(max_event_bytes)
    passed = bytearray()
    fed = 0
    for piece in chunks(stream, size):
        out = framer.feed(piece)
        fed += len(piece)
        passed += out
        assert len(passed) + framer.held == fed, "the framer lost or added bytes"
        assert passed == stream[: len(passed)], "the framer changed the bytes"
        assert framer.held <= max_event_bytes, "the framer outgrew its bound"
        if out and not framer.mid_event:
            assert out.endswith(_SEPARATORS), "the framer cut an event"
    assert framer.interrupted().endswith(b"\n\n")
    assert framer.held == 0


def _check_parser(stream: bytes, size: int) -> None:
    whole = _events(stream, len(stream) or 1)
    pieces = _events(stream, size)
    if whole is not None and pieces is not None:
        assert whole == pieces, "the parser read other events in other chunks"


def _events(stream: bytes, size: int) -> list[ServerSentEvent] | None:
    parser = SSEParser(max_line_bytes=256)
    events: list[ServerSentEvent] = []
    try:
        for piece in chunks(stream, size):
            events += parser.feed(piece)
    except SSEError:
        return None
    return events + parser.finish()


def _check_encoder(stream: bytes) -> None:
    value = json_value(stream)
    if value is MISSING:
        return
    try:
        encoded = encode_json_event(value)
    except RecursionError:
        return  # nested deeper than json writes: the caller's documented limit
    events = SSEParser().feed(encoded)
    assert len(events) == 1, "one JSON value became several events"
    assert reference_json(events[0].json()) == reference_json(value), "the value changed"
