"""A lean HTTP/1.1 client for the one backend a PyWorker relays to, on keep-alive connections.

The relay is the hot path: a general client (aiohttp's) spends more CPU per request than the
rest of the worker together. The backend is a known TGI on a private address, so this client
does only what that needs: POST with a body, a status line and headers, then a body framed by
`Content-Length`, `Transfer-Encoding: chunked`, or the end of the connection. Chunked bodies are
decoded from whatever arrived in one read, so several events cost one wake-up and one write.

Pure parts (`parse_head`, `ChunkedDecoder`) hold no I/O; `BackendPool` does the sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = [
    "BackendPool",
    "BackendResponse",
    "ChunkedDecoder",
    "Head",
    "ProtocolError",
    "parse_head",
]

READ_SIZE = 1 << 16
MAX_HEAD_BYTES = 64 * 1024
IDLE_REUSE_S = 4.0  # below common server keep-alive timeouts (uvicorn's is 5 s)


class ProtocolError(Exception):
    """The backend's answer is not HTTP/1.1 this client can read."""


@dataclass(frozen=True, slots=True)
class Head:
    status: int
    headers: list[tuple[str, str]]
    content_length: int | None
    chunked: bool
    keep_alive: bool

    @property
    def content_type(self) -> str:
        for name, value in self.headers:
            if name.lower() == "content-type":
                return value.split(";", 1)[0].strip().lower()
        return ""


def parse_head(raw: bytes) -> Head:
    """Parse a status line and headers (ending with the blank line); ProtocolError if invalid."""
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ProtocolError(f"bad status line {lines[0][:100]!r}")
    headers: list[tuple[str, str]] = []
    length: int | None = None
    chunked = False
    keep_alive = parts[0] == "HTTP/1.1"
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ProtocolError(f"bad header line {line[:100]!r}")
        name, value = name.strip(), value.strip()
        lower = name.lower()
        if lower == "content-length":
            if not value.isdigit():
                raise ProtocolError(f"bad Content-Length {value[:40]!r}")
            length = int(value)
        elif lower == "transfer-encoding":
            chunked = value.lower().endswith("chunked")
        elif lower == "connection":
            keep_alive = "close" not in value.lower() and (
                keep_alive or "keep-alive" in value.lower()
            )
        headers.append((name, value))
    return Head(int(parts[1]), headers, None if chunked else length, chunked, keep_alive)


class ChunkedDecoder:
    """Decodes `Transfer-Encoding: chunked` from pieces of any size; `done` after the last chunk."""

    def __init__(self) -> None:
        self._buffer = b""
        self._remaining = 0  # payload bytes left in the current chunk
        self._need_crlf = False  # the CRLF after a chunk's payload is pending
        self._last = False  # the zero-size chunk was read: only the final CRLF may follow
        self.done = False
        self.reusable = False  # ended with no trailers and nothing after: the connection is free

    def feed(self, data: bytes) -> bytes:
        """Return the payload bytes completed by `data` (possibly empty)."""
        if self._remaining and not self._buffer and len(data) < self._remaining:
            self._remaining -= len(data)  # the common case inside a big chunk: no copy
            return data
        buffer = self._buffer + data if self._buffer else data
        out: list[bytes] = []
        position = self._decode(buffer, out)
        self._buffer = buffer[position:] if not self.done else b""
        return out[0] if len(out) == 1 else b"".join(out)

    def _decode(self, buffer: bytes, out: list[bytes]) -> int:
        """Append complete payload pieces of `buffer` to `out`; return how far it got."""
        position = 0
        end = len(buffer)
        while position < end and not self.done:
            if self._remaining:
                take = min(self._remaining, end - position)
                out.append(buffer[position : position + take])
                position += take
                self._remaining -= take
                self._need_crlf = not self._remaining
            elif self._last:
                rest = buffer[position:]
                if b"\r\n".startswith(rest):
                    self.done = self.reusable = rest == b"\r\n"
                    return position if not self.done else end
                self.done = True  # trailers: not read, and the connection is not reused
            elif self._need_crlf:
                if end - position < 2:
                    break
                if buffer[position : position + 2] != b"\r\n":
                    raise ProtocolError("chunk not followed by CRLF")
                position += 2
                self._need_crlf = False
            else:
                line_end = buffer.find(b"\r\n", position)
                if line_end < 0:
                    if end - position > 1024:
                        raise ProtocolError("chunk size line too long")
                    break
                self._remaining = _chunk_size(buffer[position:line_end])
                self._last = self._remaining == 0
                position = line_end + 2
        return position


def _chunk_size(line: bytes) -> int:
    text = line.split(b";", 1)[0].strip()
    try:
        return int(text, 16)
    except ValueError:
        raise ProtocolError(f"bad chunk size {text[:20]!r}") from None


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.last_used = time.monotonic()

    @property
    def usable(self) -> bool:
        return (
            not self.writer.is_closing()
            and not self.reader.at_eof()
            and time.monotonic() - self.last_used < IDLE_REUSE_S
        )

    def abort(self) -> None:
        self.writer.transport.abort()
        self.writer.close()


class BackendResponse:
    """The head of an answer and its body, read once, then the connection goes back or closes."""

    def __init__(self, head: Head, connection: _Connection, release: Callable[[], None]) -> None:
        self.head = head
        self._connection = connection
        self._release = release
        self._finished = False
        self._closed = False
        self._chunked = ChunkedDecoder() if head.chunked else None
        self._left = head.content_length

    @property
    def status(self) -> int:
        return self.head.status

    @property
    def headers(self) -> list[tuple[str, str]]:
        return self.head.headers

    @property
    def content_type(self) -> str:
        return self.head.content_type

    async def read(self) -> bytes:
        """The whole body; raises ConnectionError if it ends early."""
        if self._chunked is None and self._left:  # the usual case: one read of a known length
            try:
                data = await self._connection.reader.readexactly(self._left)
            except asyncio.IncompleteReadError:
                raise ConnectionResetError("the backend closed the connection mid-body") from None
            self._left = 0
            self._finish()
            return data
        parts = [chunk async for chunk in self.iter_chunks()]
        return b"".join(parts)

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """Body bytes as they arrive; raises ConnectionError if the body ends early."""
        reader = self._connection.reader
        if self._left == 0:
            self._finish()
            return
        while True:
            data = await reader.read(READ_SIZE)
            if not data:
                if self._chunked is None and self._left is None:
                    self._finish(reusable=False)  # the body ran to the end of the connection
                    return
                raise ConnectionResetError("the backend closed the connection mid-body")
            if self._chunked is not None:
                payload = self._chunked.feed(data)
                if payload:
                    yield payload
                if self._chunked.done:
                    self._finish(reusable=self._chunked.reusable)
                    return
                continue
            if self._left is not None:
                if len(data) > self._left:
                    raise ProtocolError("the backend sent more than its Content-Length")
                self._left -= len(data)
            yield data
            if self._left == 0:
                self._finish()
                return

    def _finish(self, reusable: bool = True) -> None:
        self._finished = True
        self._closed = True
        if reusable and self.head.keep_alive:
            self._release()
        else:
            self._connection.abort()

    def close(self) -> None:
        """Drop the connection unless the body was read to its end (and went back to the pool)."""
        if not self._closed:
            self._closed = True
            self._connection.abort()

    async def __aenter__(self) -> BackendResponse:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()


class BackendPool:
    """Keep-alive connections to one `http://host:port` backend, reused most-recent first."""

    def __init__(self, base_url: str, *, connect_timeout_s: float) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the lean backend client speaks plain http only, not {base_url!r}")
        self._host = parts.hostname
        self._port = parts.port or 80
        self._prefix = parts.path.rstrip("/")
        self._host_header = parts.netloc.encode("latin-1")
        self._connect_timeout_s = connect_timeout_s
        self._idle: deque[_Connection] = deque()

    @property
    def idle_connections(self) -> int:
        """Kept-alive connections waiting for reuse (at most the peak concurrency)."""
        return len(self._idle)

    async def post(
        self, path: str, body: bytes, content_type: bytes = b"application/json"
    ) -> BackendResponse:
        """Send a POST and return once the answer's head arrived."""
        request = b"".join(
            (
                b"POST ",
                (self._prefix + path).encode("latin-1"),
                b" HTTP/1.1\r\nHost: ",
                self._host_header,
                b"\r\nContent-Type: ",
                content_type,
                b"\r\nContent-Length: ",
                str(len(body)).encode(),
                b"\r\n\r\n",
                body,
            )
        )
        while True:
            connection, reused = await self._acquire()
            try:
                return await self._exchange(connection, request)
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                connection.abort()
                if not reused:
                    raise ConnectionResetError(f"backend closed the connection: {exc}") from None
                # A kept-alive connection the backend had closed: try once on a fresh one.
            except BaseException:
                connection.abort()
                raise

    async def _exchange(self, connection: _Connection, request: bytes) -> BackendResponse:
        connection.writer.write(request)
        try:
            raw = await connection.reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            raise ProtocolError("the backend's headers are too long") from None
        head = parse_head(raw)
        while 100 <= head.status < 200:  # informational answers precede the real one
            head = parse_head(await connection.reader.readuntil(b"\r\n\r\n"))
        return BackendResponse(head, connection, lambda: self._release(connection))

    async def _acquire(self) -> tuple[_Connection, bool]:
        while self._idle:
            connection = self._idle.pop()
            if connection.usable:
                return connection, True
            connection.abort()
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                reader, writer = await asyncio.open_connection(
                    self._host, self._port, limit=MAX_HEAD_BYTES
                )
        except TimeoutError:
            raise TimeoutError(f"no connection within {self._connect_timeout_s:g}s") from None
        return _Connection(reader, writer), False

    def _release(self, connection: _Connection) -> None:
        connection.last_used = time.monotonic()
        self._idle.append(connection)

    async def close(self) -> None:
        while self._idle:
            connection = self._idle.pop()
            connection.writer.close()
            with contextlib.suppress(ConnectionError):
                await connection.writer.wait_closed()
