"""The PyWorker under hostile connections, served as `tgi-serverless worker` serves it
(`pyworker.command.serve`, over real sockets on 127.0.0.1): headers and bodies that never finish
are cut off, connections are bounded, and normal clients are served meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pyworker.app import create_app
from pyworker.command import serve
from pyworker.settings import WorkerSettings
from pyworker.state import LIFECYCLE
from tests.fakes.fake_tgi import FakeTGI
from tests.integration.pyworker.stack import (
    API_KEY,
    PAYLOAD,
    ServerFactory,
    url_of,
    wait_until,
)
from tests.ports import free_port
from tests.worker_identity import join_token

PARTIAL_HEADERS = b"POST /generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: appl"


@dataclass
class Served:
    url: str
    router_url: str
    http: aiohttp.ClientSession

    async def generate(self) -> int:
        """A normal client: a ticket from the router, then POST /generate with it."""
        route = {"endpoint": "default", "cost": 3}
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with self.http.post(f"{self.router_url}/route/", json=route, headers=headers) as r:
            ticket = await r.json()
        body = {"auth_data": ticket, "payload": PAYLOAD}
        async with self.http.post(f"{self.url}/generate", json=body) as answer:
            await answer.read()
            return answer.status


@contextlib.asynccontextmanager
async def served_worker(
    aiohttp_server: ServerFactory, tmp_path: Path, **fields: Any
) -> AsyncIterator[Served]:
    """A router and a fake TGI in process, and a PyWorker (`fields` over its settings) served by
    `serve` on a free port, until the block ends."""
    from router.http.app import create_app as create_router_app
    from router.settings import RouterSettings

    router_settings = RouterSettings(
        api_key=API_KEY, allow_private_workers=True, state_dir=tmp_path, route_timeout_s=5
    )
    router = await aiohttp_server(create_router_app(router_settings))
    backend = await aiohttp_server(FakeTGI().app())
    port = free_port()
    settings = WorkerSettings(
        port=port,
        host="127.0.0.1",
        worker_id="w1",
        join_token=join_token(router.app, worker_id="w1"),
        backend_url=url_of(backend),
        report_addr=url_of(router),
        public_url=f"http://127.0.0.1:{port}",
        report_interval_s=0.2,
        health_interval_s=0.2,
        benchmark_tokens=3,
        **fields,
    )
    app = create_app(settings)
    task = asyncio.create_task(serve(app, settings, None))
    try:
        await wait_until(lambda: app[LIFECYCLE].serving)
        async with aiohttp.ClientSession() as http:
            yield Served(f"http://127.0.0.1:{port}", url_of(router), http)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def connect(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = url.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


async def closed_within(reader: asyncio.StreamReader, limit_s: float) -> bytes:
    """All the server sends until it closes the connection; fails if that takes over limit_s."""
    async with asyncio.timeout(limit_s):
        return await reader.read()


def partial_body_request(declared: int = 1000) -> bytes:
    head = (
        f"POST /generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    )
    return head.encode() + b'{"auth_data": {"co'


async def test_a_connection_that_never_finishes_its_headers_is_closed(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    async with served_worker(aiohttp_server, tmp_path, header_timeout_s=0.5) as worker:
        reader, writer = await connect(worker.url)
        writer.write(PARTIAL_HEADERS)
        started = time.monotonic()
        assert await closed_within(reader, limit_s=5) == b""
        assert time.monotonic() - started >= 0.4
        writer.close()


async def test_headers_sent_a_byte_at_a_time_are_cut_off_at_the_deadline(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    async with served_worker(aiohttp_server, tmp_path, header_timeout_s=0.5) as worker:
        reader, writer = await connect(worker.url)
        started = time.monotonic()
        for byte in PARTIAL_HEADERS:
            if reader.at_eof() or writer.is_closing():
                break
            with contextlib.suppress(ConnectionError):
                writer.write(bytes([byte]))
                await writer.drain()
            await asyncio.sleep(0.05)
        assert await closed_within(reader, limit_s=5) == b""
        assert time.monotonic() - started < 2.5
        writer.close()


async def test_a_body_that_does_not_arrive_in_time_is_a_408_then_the_connection_closes(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    async with served_worker(aiohttp_server, tmp_path, body_timeout_s=0.5) as worker:
        reader, writer = await connect(worker.url)
        writer.write(partial_body_request())
        answer = await closed_within(reader, limit_s=5)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408 ")
        assert json.loads(body)["error_type"] == "request_timeout"
        writer.close()
        assert await worker.generate() == 200  # and the worker serves on


async def test_a_served_connection_is_not_cut_off_by_the_header_deadline(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    async with served_worker(aiohttp_server, tmp_path, header_timeout_s=0.3) as worker:
        reader, writer = await connect(worker.url)
        writer.write(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert (await reader.readuntil(b"pong")).startswith(b"HTTP/1.1 200 ")
        await asyncio.sleep(0.6)  # past the header deadline, kept alive
        writer.write(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert (await reader.readuntil(b"pong")).startswith(b"HTTP/1.1 200 ")
        writer.close()


async def test_over_the_connection_limit_the_oldest_connection_without_headers_goes(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    async with served_worker(aiohttp_server, tmp_path, max_connections=4) as worker:
        stalled = [await connect(worker.url) for _ in range(4)]
        await asyncio.sleep(0.1)
        assert await worker.generate() == 200  # its connection pushed the oldest one out
        oldest_reader, _ = stalled[0]
        assert await closed_within(oldest_reader, limit_s=2) == b""
        for _, writer in stalled:
            writer.close()


async def test_over_the_limit_with_every_connection_past_its_headers_a_new_one_is_closed(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    async with served_worker(aiohttp_server, tmp_path, max_connections=3) as worker:
        stalled = [await connect(worker.url) for _ in range(3)]
        for _, writer in stalled:
            writer.write(partial_body_request())  # headers in: none of them may be evicted
        await asyncio.sleep(0.2)
        reader, writer = await connect(worker.url)
        writer.write(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        with contextlib.suppress(ConnectionError):
            assert await closed_within(reader, limit_s=2) == b""
        for stalled_reader, _ in stalled:
            assert not stalled_reader.at_eof()
        for _, stalled_writer in [*stalled, (reader, writer)]:
            stalled_writer.close()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="counts fds in /proc")
async def test_two_hundred_stalled_connections_leave_normal_clients_served(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """100 connections stop in their headers and 100 in their bodies; meanwhile normal clients
    are served promptly, then every stalled one is closed by its deadline and the fds come back.
    """
    limits = {"header_timeout_s": 1.0, "body_timeout_s": 1.0, "max_connections": 4096}
    async with served_worker(aiohttp_server, tmp_path, **limits) as worker:
        assert await worker.generate() == 200  # the client's pool holds its connection now
        before = open_fds()
        stalled = [await connect(worker.url) for _ in range(200)]
        for n, (_, writer) in enumerate(stalled):
            writer.write(PARTIAL_HEADERS if n % 2 else partial_body_request())
        started = time.monotonic()
        for _ in range(5):
            assert await worker.generate() == 200
        assert time.monotonic() - started < 2.0
        answers = await asyncio.gather(*(closed_within(r, limit_s=8) for r, _ in stalled))
        assert sum(a.startswith(b"HTTP/1.1 408 ") for a in answers) == 100
        assert sum(a == b"" for a in answers) == 100
        for _, writer in stalled:
            writer.close()
        await wait_until(lambda: open_fds() <= before + 2, limit_s=5)
        assert await worker.generate() == 200
