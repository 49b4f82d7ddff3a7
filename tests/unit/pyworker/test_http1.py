from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyworker.http1 import BackendPool, ChunkedDecoder, ProtocolError, parse_head


def test_a_head_is_parsed() -> None:
    head = parse_head(
        b"HTTP/1.1 422 Unprocessable Entity\r\nContent-Type: application/json\r\n"
        b"Content-Length: 12\r\nx-compute-type: gpu\r\n\r\n"
    )
    assert (head.status, head.content_length, head.chunked, head.keep_alive) == (
        422,
        12,
        False,
        True,
    )
    assert head.content_type == "application/json"
    assert ("x-compute-type", "gpu") in head.headers


def test_chunked_wins_over_a_length_and_close_ends_keep_alive() -> None:
    head = parse_head(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n"
        b"Connection: close\r\nContent-Type: text/event-stream; charset=utf-8\r\n\r\n"
    )
    assert (head.chunked, head.content_length, head.keep_alive) == (True, None, False)
    assert head.content_type == "text/event-stream"


@pytest.mark.parametrize(
    "raw",
    [b"SPDY/3 200 OK\r\n\r\n", b"HTTP/1.1 abc\r\n\r\n", b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
     b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"],
)  # fmt: skip
def test_bad_heads_are_protocol_errors(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_head(raw)


def encode_chunked(pieces: list[bytes], extension: bool) -> bytes:
    ext = b";name=value" if extension else b""
    body = b"".join(b"%x%s\r\n%s\r\n" % (len(p), ext, p) for p in pieces if p)
    return body + b"0\r\n\r\n"


@given(
    pieces=st.lists(st.binary(min_size=1, max_size=300), max_size=12),
    cuts=st.lists(st.integers(0, 5000), max_size=20),
    extension=st.booleans(),
)
def test_chunked_decoding_is_independent_of_how_bytes_arrive(
    pieces: list[bytes], cuts: list[int], extension: bool
) -> None:
    wire = encode_chunked(pieces, extension)
    points = sorted({0, len(wire), *(c % (len(wire) + 1) for c in cuts)})
    decoder = ChunkedDecoder()
    out = b"".join(decoder.feed(wire[a:b]) for a, b in itertools.pairwise(points))
    assert out == b"".join(pieces)
    assert decoder.done
    assert decoder.reusable


@pytest.mark.parametrize("wire", [b"zz\r\n", b"3\r\nabcX\r\n", b"1" * 2000])
def test_broken_chunking_is_a_protocol_error(wire: bytes) -> None:
    with pytest.raises(ProtocolError):
        ChunkedDecoder().feed(wire)


def test_trailers_make_the_connection_not_reusable() -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(b"2\r\nhi\r\n0\r\nX-Trailer: 1\r\n\r\n") == b"hi"
    assert decoder.done
    assert not decoder.reusable


class Backend:
    """A raw HTTP/1.1 server: answers each request with the next scripted bytes."""

    def __init__(self, answers: list[bytes], close_after: bool = False) -> None:
        self.answers = answers
        self.close_after = close_after
        self.connections = 0
        self.requests: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while self.answers:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                self.requests.append(head + await reader.readexactly(length))
                writer.write(self.answers.pop(0))
                await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


async def serve(backend: Backend) -> AsyncIterator[str]:
    server = await asyncio.start_server(backend.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def test_connections_are_kept_alive_and_reused() -> None:
    backend = Backend(
        [OK, OK, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"]
    )
    async for url in serve(backend):
        pool = BackendPool(url, connect_timeout_s=5)
        for expected in (b"ok", b"ok", b"hi"):
            async with await pool.post("/generate", b"{}") as response:
                assert await response.read() == expected
        assert backend.connections == 1
        assert b"POST /generate HTTP/1.1" in backend.requests[0]
        assert backend.requests[0].endswith(b"\r\n\r\n{}")
        await pool.close()


async def test_a_kept_alive_connection_the_backend_closed_is_retried_once() -> None:
    backend = Backend([OK, OK], close_after=True)
    async for url in serve(backend):
        pool = BackendPool(url, connect_timeout_s=5)
        for _ in range(2):
            async with await pool.post("/generate", b"{}") as response:
                assert await response.read() == b"ok"
        assert backend.connections == 2
        await pool.close()


async def test_a_body_cut_short_raises_and_the_connection_is_dropped() -> None:
    backend = Backend([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"], close_after=True)
    async for url in serve(backend):
        pool = BackendPool(url, connect_timeout_s=5)
        async with await pool.post("/generate", b"{}") as response:
            with pytest.raises(ConnectionResetError):
                await response.read()
        await pool.close()


async def test_a_refused_connection_raises() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    pool = BackendPool(f"http://127.0.0.1:{port}", connect_timeout_s=5)
    with pytest.raises(ConnectionRefusedError):
        await pool.post("/generate", b"{}")


def test_only_plain_http_is_spoken() -> None:
    with pytest.raises(ValueError, match="plain http"):
        BackendPool("https://127.0.0.1:5001", connect_timeout_s=1)
