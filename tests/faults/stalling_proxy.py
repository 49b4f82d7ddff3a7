"""A TCP proxy in front of a backend that can make its generations stall, for the stall cases.

Every byte is passed on as it comes, except the answers to generation requests (a request
that starts `POST /generate`) once a stall is set: `BEFORE_FIRST_BYTE` holds the whole answer
(the backend did the work; nothing reaches the worker), `AFTER_FIRST_EVENT` lets the head and
the first SSE event through, then holds the rest. Held bytes are never sent; the connection
stays open, silent, until the side waiting on it gives up. Health checks and metadata pass,
as from a backend whose model is wedged in one request. Runs its own event loop in a thread.
"""

from __future__ import annotations

import asyncio
import enum
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tests.ports import free_port

__all__ = ["Stall", "StallingProxy", "stalling_proxy"]


class Stall(enum.Enum):
    NONE = "none"
    BEFORE_FIRST_BYTE = "before the first byte"
    AFTER_FIRST_EVENT = "after the first event"


class StallingProxy:
    def __init__(self, upstream_port: int) -> None:
        self.port = free_port()
        self.stall = Stall.NONE
        """What happens to the next generation's answer: set it from any thread."""
        self._upstream_port = upstream_port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def serve(self, stop: asyncio.Event, listening: threading.Event) -> None:
        server = await asyncio.start_server(self._connection, "127.0.0.1", self.port)
        listening.set()
        async with server:
            await stop.wait()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._upstream_port)
        except OSError:
            writer.close()
            return
        answer = _Answer()
        tasks = [
            asyncio.create_task(self._requests(reader, up_writer, answer)),
            asyncio.create_task(self._answers(up_reader, writer, answer)),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        for end in (writer, up_writer):
            end.close()

    async def _requests(
        self, reader: asyncio.StreamReader, up_writer: asyncio.StreamWriter, answer: _Answer
    ) -> None:
        while chunk := await reader.read(65536):
            if chunk.startswith((b"POST /", b"GET /")):  # a new request on this connection
                answer.reset(self.stall if chunk.startswith(b"POST /generate") else Stall.NONE)
            up_writer.write(chunk)
            await up_writer.drain()

    async def _answers(
        self, up_reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answer: _Answer
    ) -> None:
        while chunk := await up_reader.read(65536):
            passed = answer.passes(chunk)
            if passed:
                writer.write(passed)
                await writer.drain()


class _Answer:
    """How much of the current answer on one connection may pass."""

    def __init__(self) -> None:
        self.reset(Stall.NONE)

    def reset(self, stall: Stall) -> None:
        self._stall = stall
        self._seen = b""
        self.holding = False

    def passes(self, chunk: bytes) -> bytes:
        if self.holding:
            return b""
        if self._stall is Stall.NONE:
            return chunk
        if self._stall is Stall.BEFORE_FIRST_BYTE:
            self.holding = True
            return b""
        start = len(self._seen)
        self._seen += chunk
        head_end = self._seen.find(b"\r\n\r\n")
        event_end = self._seen.find(b"\n\n", head_end + 4) if head_end >= 0 else -1
        if event_end < 0:
            return chunk
        self.holding = True
        return self._seen[start : event_end + 2]


@contextmanager
def stalling_proxy(upstream_port: int) -> Iterator[StallingProxy]:
    """The proxy, serving from a thread of its own until the block ends."""
    proxy = StallingProxy(upstream_port)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    ready = threading.Event()

    def run() -> None:
        loop.run_until_complete(proxy.serve(stop, ready))

    thread = threading.Thread(target=run, name="stalling-proxy", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the stalling proxy did not start")
    try:
        yield proxy
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
