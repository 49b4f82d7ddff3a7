"""The messages between the HTTP server and its model-server process (the shard), and their frames.

Both ends are this package, on one private socket pair, so messages are pickled tuples, each
in a frame: a 4-byte big-endian length, then the pickle. The one message sent at every model
step carries all of the step's events; a plain token event (no alternatives, not the last) goes
as a flat tuple, which pickles about 15 times faster than the event objects. Pure: no I/O.

HTTP server to shard:
    ("submit", job_id, queued_at, request)  request's `grammar` is its key (the shard compiles)
    ("cancel", job_id)
    ("stop",)
Shard to HTTP server:
    ("ready", device_type, device_name)     the model is loaded
    ("failed", message)                     it could not be
    ("step", events, stats)                 events: see `encode_events`; stats: the scheduler's
                                            counters, or None when unchanged enough to skip
"""

from __future__ import annotations

import pickle
import struct
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from tgi_server.errors import GenerationError
from tgi_server.generation.events import EngineEvent, FailureEvent, GeneratedToken, TokenEvent
from tgi_server.validation import ValidatedRequest

__all__ = [
    "FrameReader",
    "decode_events",
    "encode_events",
    "frame",
    "request_for_shard",
]

HEADER = struct.Struct("!I")
MAX_FRAME = 1 << 30
"""Larger frames mean a broken peer: no message comes near it."""

Message = tuple[Any, ...]


def frame(message: Message) -> bytes:
    """`message` as one frame."""
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(payload)) + payload


class FrameReader:
    """Splits a byte stream into messages, however the bytes arrive."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Message]:
        """Add `data`; every message now complete, in order."""
        self._buffer += data
        messages: list[Message] = []
        start = 0
        while len(self._buffer) - start >= HEADER.size:
            (length,) = HEADER.unpack_from(self._buffer, start)
            if length > MAX_FRAME:
                raise ValueError(f"a frame of {length} bytes: the stream is corrupt")
            end = start + HEADER.size + length
            if len(self._buffer) < end:
                break
            messages.append(pickle.loads(self._buffer[start + HEADER.size : end]))
            start = end
        del self._buffer[:start]
        return messages


def request_for_shard(request: ValidatedRequest) -> ValidatedRequest:
    """`request` as sent to the shard: a compiled grammar goes as its key (its grammar text)."""
    if request.grammar is None:
        return request
    return replace(request, grammar=request.grammar.key)


def encode_events(events: Iterable[tuple[int, EngineEvent]]) -> list[tuple[Any, ...]]:
    """Each (job id, event) as a tuple that pickles fast:
    (job, index, token id, text, logprob, special) for a plain token event,
    (job, detail) for a failure, (job, event) for any other event."""
    encoded: list[tuple[Any, ...]] = []
    for job_id, event in events:
        if isinstance(event, FailureEvent):
            error = event.error
            detail = error.detail if isinstance(error, GenerationError) else error.message
            encoded.append((job_id, detail))
        elif event.completion is None and not event.top_tokens:
            token = event.token
            encoded.append(
                (job_id, event.index, token.id, token.text, token.logprob, token.special)
            )
        else:
            encoded.append((job_id, event))
    return encoded


def decode_events(encoded: Iterable[tuple[Any, ...]]) -> list[tuple[int, EngineEvent]]:
    """The inverse of `encode_events`. A failure comes back as a `GenerationError`: the only
    error a scheduler reports."""
    events: list[tuple[int, EngineEvent]] = []
    for item in encoded:
        if len(item) == 6:
            job_id, index, token_id, text, logprob, special = item
            token = GeneratedToken(token_id, text, logprob, special)
            events.append((job_id, TokenEvent(index, token)))
        elif isinstance(item[1], str):
            events.append((item[0], FailureEvent(GenerationError(item[1]))))
        else:
            events.append((item[0], item[1]))
    return events
