"""Server-sent events: TGI's byte format out, and an incremental parser in.

TGI writes each event as one `data: {json}` line and a blank line, with no `event:` or `id:`
fields; older TGI wrote `data:{json}` with no space, and keep-alives are comment lines `:`.
The parser follows the SSE specification, so it reads all of these, fed in chunks of any size.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "SSEError",
    "SSEParser",
    "ServerSentEvent",
    "encode_data_event",
    "encode_json_event",
]

_LINE_END = re.compile(rb"\r\n|\r|\n")
DEFAULT_MAX_LINE_BYTES = 8 * 1024 * 1024


class SSEError(ValueError):
    """The stream is not valid SSE (a line beyond the size bound)."""


@dataclass(frozen=True)
class ServerSentEvent:
    data: str
    event: str = "message"
    id: str = ""

    def json(self) -> Any:
        return json.loads(self.data)


def encode_data_event(data: str) -> bytes:
    """One event as TGI 3.x writes it: `data: <data>` and a blank line. `data` must be one line."""
    if "\n" in data or "\r" in data:
        raise ValueError("SSE data must not contain line breaks")
    return b"data: " + data.encode("utf-8") + b"\n\n"


def encode_json_event(payload: Any) -> bytes:
    """A JSON payload as one event, serialised compactly as TGI's serde does: UTF-8, not
    escaped. A lone surrogate has no UTF-8 form (a client may send one as `"\\ud800"`, and an
    error message may quote it): such a payload is written with its non-ASCII escaped, which
    is the same JSON value, so no event ever fails to encode."""
    try:
        return encode_data_event(json.dumps(payload, separators=(",", ":"), ensure_ascii=False))
    except UnicodeEncodeError:
        return encode_data_event(json.dumps(payload, separators=(",", ":")))


class SSEParser:
    """Feed it bytes as they arrive; it returns the events completed so far."""

    def __init__(self, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self._max_line_bytes = max_line_bytes
        self._buffer = bytearray()
        self._data: list[str] = []
        self._event = ""
        self._last_id = ""

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        self._buffer += chunk
        events: list[ServerSentEvent] = []
        for line in self._take_lines():
            event = self._process_line(line)
            if event is not None:
                events.append(event)
        if len(self._buffer) > self._max_line_bytes:
            raise SSEError(f"an SSE line is longer than {self._max_line_bytes} bytes")
        return events

    def finish(self) -> list[ServerSentEvent]:
        """The stream ended: a held-back final `\r` ends its line; partial events are dropped."""
        events: list[ServerSentEvent] = []
        if self._buffer.endswith(b"\r"):
            event = self._process_line(bytes(self._buffer[:-1]))
            if event is not None:
                events.append(event)
        self._buffer.clear()
        self._data = []
        return events

    def _take_lines(self) -> list[bytes]:
        lines: list[bytes] = []
        start = 0
        buffer = self._buffer
        for match in _LINE_END.finditer(buffer):
            if match.group() == b"\r" and match.end() == len(buffer):
                break  # a "\r\n" may be split across chunks: wait for the next byte
            lines.append(bytes(buffer[start : match.start()]))
            start = match.end()
        del buffer[:start]
        return lines

    def _process_line(self, raw: bytes) -> ServerSentEvent | None:
        line = raw.decode("utf-8", errors="replace")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id" and "\0" not in value:
            self._last_id = value
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._data:
            self._event = ""
            return None
        event = ServerSentEvent(
            data="\n".join(self._data), event=self._event or "message", id=self._last_id
        )
        self._data = []
        self._event = ""
        return event
