"""The rules a relay follows, shared by both: the PyWorker (client → backend) and the router's
gateway (client → PyWorker).

Each relays a request to the next hop and passes its answer back as it came: the same routes
(`RELAYED_PATHS` with a ticket, `METADATA_PATHS` without), every header but those that describe
one hop (`relayed_headers`), a server-sent event stream in whole events only (`EventFramer`),
and, when the next hop breaks off a stream after it started, one last event that says so
(`INCOMPLETE_STREAM_EVENT`).
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

from protocol.sse import encode_json_event

__all__ = [
    "HOP_BY_HOP_HEADERS",
    "INCOMPLETE_STREAM_EVENT",
    "MAX_EVENT_BYTES",
    "METADATA_PATHS",
    "RELAYED_PATHS",
    "UPSTREAM_HEADERS",
    "EventFramer",
    "is_redirect",
    "relayed_headers",
]

RELAYED_PATHS = (
    "/generate",
    "/generate_stream",
    "/",
    "/v1/chat/completions",
    "/v1/completions",
    "/invocations",
    "/tokenize",
    "/chat_tokenize",
)
"""The POST routes both relays pass on, each with a ticket whose cost covers the payload's
workload (`protocol.workload`): TGI's two, TGI's compat route `/` (`{"stream": bool}`), the
OpenAI-compatible two, SageMaker's `/invocations` (a compat, chat or completions body), and the
two that tokenize. The PyWorker serves each at the same path on itself; the gateway at
`/endpoints/{name}<path>` (and `/` also as `/endpoints/{name}`). Neither relays a route the
other does not."""

METADATA_PATHS = ("/info", "/health", "/v1/models")
"""The GET routes both serve without a ticket: harmless metadata, the same few bytes for
everyone, with no input and no work for the model. The PyWorker relays `/info` and `/v1/models`
to its backend and answers `/health` itself (its own state, which follows the backend's
health); the gateway serves each at `/endpoints/{name}<path>` with the endpoint's key, from one
ready worker."""

HOP_BY_HOP_HEADERS = frozenset(
    {
        # RFC 9110 §7.6.1: about the connection the answer came on, not about the answer.
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "transfer-encoding",
        "upgrade",
        # Announces trailer fields; neither relay passes trailers on, so it would promise
        # fields that never come.
        "trailer",
        # Asks the client of the next hop to authenticate to a proxy (RFC 9110 §11.7.1): a relay
        # is no proxy its own client chose.
        "proxy-authenticate",
        # Written again by the relay's own server for the answer it sends: its framing (a
        # whole body gets its length, a stream is chunked again), its date, its name.
        "content-length",
        "date",
        "server",
    }
)
"""Answer headers a relay never passes on: the hop-by-hop ones, and the ones its own server
recomputes. `Content-Encoding` is not among them and goes through: neither relay decodes a body
(both ask for `identity` and read with `auto_decompress=False`), so the header still describes
the bytes it comes with. Names that a `Connection` header lists are hop-by-hop too (RFC 9110
§7.6.1); `relayed_headers` drops them as well."""


def relayed_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (name, value) pairs of an answer's headers that a relay passes on, in their order:
    all but `HOP_BY_HOP_HEADERS` and the names the answer's `Connection` header lists."""
    pairs = list(headers)
    dropped = HOP_BY_HOP_HEADERS
    for name, value in pairs:
        if name.lower() == "connection":
            dropped = dropped | {option.strip().lower() for option in value.split(",")}
    return [(name, value) for name, value in pairs if name.lower() not in dropped]


UPSTREAM_HEADERS = {"Content-Type": "application/json", "Accept-Encoding": "identity"}
"""The headers of the request each relay sends on: a JSON body, and an answer asked for as it is
(`identity`), since neither relay decodes one (see `HOP_BY_HOP_HEADERS`)."""


def is_redirect(status: int) -> bool:
    """A 3xx. Neither relay follows one (it would turn a POST into a GET to wherever the next hop
    points, inside the relay's own network) nor passes one on: it is the next hop's failure."""
    return 300 <= status < 400


INCOMPLETE_STREAM_EVENT = encode_json_event(
    {"error": "Incomplete generation stream", "error_type": "incomplete_generation_stream"}
)
"""The last event of a stream whose upstream broke off after it began (reset, closed mid-event
or mid-stream, or silent past the idle timeout): TGI's own event for a generation stream that
ended without its final message, so clients that read TGI's errors (huggingface_hub,
text-generation, ours) treat it as they treat TGI's. The status is already 200 and out, so this
event is all a client can still be told; the cause goes to the relay's log and metrics."""

MAX_EVENT_BYTES = 1 << 20
"""The most bytes `EventFramer` holds back while it waits for an event's end."""

_SEPARATORS = (b"\n\n", b"\r\n\r\n", b"\r\r")  # a blank line, in each line ending SSE allows
_LONGEST_SEPARATOR = 4


class EventFramer:
    """Cuts a byte stream into whole server-sent events, so a relay never writes half of one.

    An event ends with a blank line: `\\n\\n`, `\\r\\n\\r\\n` or `\\r\\r`, in the one line
    ending a server writes throughout (a blank line that mixes two, such as `\\n\\r\\n`, is
    not seen: the events on both sides of it go out together, at the next boundary).

    `feed` returns, in one piece, every event that the bytes so far complete, and holds back
    the rest; a relay writes what it returns. At most `max_event_bytes` are held: an event
    longer than that is passed on in pieces, all but the three bytes that may begin its blank
    line, so what is held never outgrows the bound and no boundary is missed. `events` counts
    the events passed on so far (the blank lines: a run of them counts more than one, and a
    stream that mixes line endings may count fewer).

    When the upstream breaks off, `interrupted()` gives what ends the client's stream.
    """

    __slots__ = ("_held", "_max", "_split", "events")

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        if max_event_bytes < _LONGEST_SEPARATOR:
            raise ValueError(f"max_event_bytes must be at least {_LONGEST_SEPARATOR}")
        self._held: bytes | bytearray = b""
        self._max = max_event_bytes
        self._split = False  # part of an event was passed on: the client holds its beginning
        self.events = 0

    @property
    def held(self) -> int:
        """Bytes held back, waiting for the end of their event."""
        return len(self._held)

    @property
    def mid_event(self) -> bool:
        """Whether the bytes so far stop inside an event (past its first non-blank byte)."""
        return self._split or bool(self._held.strip())

    def feed(self, chunk: bytes) -> bytes:
        """The whole events that `chunk` completes, together (b"" when none).

        One cut per chunk however many events it holds: a relay that fell behind reads large
        chunks, and cutting them event by event costs a copy per event. A chunk that ends with
        `\\n\\n`, the usual case, comes back as it is (after what was held, if anything),
        with no search but the count of its blank lines. An event that comes in pieces costs
        time in proportion to its length, not to its square: only the new bytes are searched
        (from three before them, where a blank line may begin), the second piece is joined to
        the first with one copy, and from the third on the held bytes grow in place.
        """
        held = self._held
        if not held:
            buffer: bytes | bytearray = chunk
            start = 0
        else:
            start = max(0, len(held) - (_LONGEST_SEPARATOR - 1))
            if isinstance(held, bytearray):
                held += chunk
                buffer = held
            else:
                buffer = held + chunk
        if buffer.endswith(b"\n\n"):  # TGI writes LF line endings: whole events
            self._held = b""
            self._split = False
            self.events += buffer.count(b"\n\n")
            return buffer if isinstance(buffer, bytes) else bytes(buffer)
        end = _last_event_end(buffer, start)
        if len(buffer) - end > self._max:  # no end in sight: pass on what cannot begin one
            end = len(buffer) - (_LONGEST_SEPARATOR - 1)
            self._split = True
        elif end:
            self._split = False
        if not end:
            growing = buffer is chunk or isinstance(buffer, bytearray)
            self._held = buffer if growing else bytearray(buffer)
            return b""
        self._held = buffer[end:]
        self.events += _blank_lines(buffer, end)
        if isinstance(buffer, bytes):
            return buffer[:end]
        with memoryview(buffer) as view:
            return bytes(view[:end])

    def interrupted(self) -> bytes:
        """What a relay writes last when its upstream broke off the stream: the held bytes are
        dropped, and `INCOMPLETE_STREAM_EVENT` follows, after a blank line when part of an
        event went out (that event ends there, cut, and the error event stays well-formed)."""
        self._held = b""
        if self._split:
            self._split = False
            return b"\n\n" + INCOMPLETE_STREAM_EVENT
        return INCOMPLETE_STREAM_EVENT


def _last_event_end(buffer: bytes | bytearray, start: int) -> int:
    """The index just past the last blank line in `buffer` from `start`; 0 if it has none."""
    if buffer.find(b"\r", start) < 0:  # LF line endings: one search
        found = buffer.rfind(b"\n\n", start)
        return found + 2 if found >= 0 else 0
    end = 0
    for separator in _SEPARATORS:
        found = buffer.rfind(separator, start)
        if found >= 0:
            end = max(end, found + len(separator))
    return end


def _blank_lines(buffer: bytes | bytearray, end: int) -> int:
    """How many blank lines `buffer[:end]` holds."""
    count = buffer.count(b"\n\n", 0, end)
    if b"\r" in buffer:
        count += buffer.count(b"\r\n\r\n", 0, end) + buffer.count(b"\r\r", 0, end)
    return count
