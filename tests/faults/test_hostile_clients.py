"""Hostile clients against the router, the PyWorker and the backend, each a real process as
`tgi-serverless` starts it (docs/reliability.md, Hostile clients): 10,000 idle connections,
headers and bodies one byte a second, huge headers, and readers that never read their stream.

Each case measures the attacked process (RSS and open file descriptors, before, during and
after) and the latency of normal clients meanwhile against a baseline taken in the same run,
prints what it measured, and asserts the promise: memory and descriptors stay bounded, every
normal request is served, each hostile connection is cut off by its limit and the descriptors
come back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import socket
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.processes import (
    ADMIN_KEY,
    ManagedProcess,
    cli_join_token,
    get_json,
    router_args,
    router_status,
    wait_for,
    worker_args,
)
from tests.ports import free_port

API_KEY = "hostile-api-key"
SERVICES = ("router", "worker", "backend")
PREFIX = {"router": "TGIS_ROUTER_", "worker": "TGIS_WORKER_", "backend": "TGIS_BACKEND_"}
TIMEOUT_S = 4.0
"""The header, body, send and keep-alive deadlines every service gets here (defaults: 10, 30,
60 and 75 s)."""
MAX_CONNECTIONS = 4096  # the default, left as it is
ACCEPT_BATCH = 128  # aiohttp's listen backlog: asyncio accepts up to this many in one loop turn
IDLE_CONNECTIONS = 10_000
SLOW_CLIENTS = 300
STALLED_STREAMS = 4
STREAM_TOKENS = 64  # real work for the tiny model on 2 shared cores: more, and the PyWorker
# answers 429 `overloaded` (its expected wait over 30 s) before any stream starts
NORMAL_REQUESTS = 8
MIB = 1024 * 1024
READER_LIMIT_S = 30.0
"""Stalled readers are dropped within this: the stream's own length, then the 4 s keep-alive
deadline (measured 4.3 to 6.6 s on a quiet machine; 29 to 33 s under a load average of 15,
where the streams themselves took that long: docs/reliability.md, Hostile clients)."""


@dataclass
class Stack:
    urls: dict[str, str]
    processes: dict[str, ManagedProcess]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, tgis_cache_dir: Path) -> Iterator[Stack]:
    """Router, backend and PyWorker on free ports, each with the deadlines at `TIMEOUT_S`."""
    logs = tmp_path_factory.mktemp("hostile-logs")
    ports = {name: free_port() for name in SERVICES}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    env = {"TGIS_CACHE_DIR": str(tgis_cache_dir), "TGIS_IGNORE_EOS": "true"}
    for prefix in PREFIX.values():
        for limit in (
            "HEADER_TIMEOUT_S",
            "BODY_TIMEOUT_S",
            "SEND_TIMEOUT_S",
            "KEEPALIVE_TIMEOUT_S",
        ):
            env[prefix + limit] = str(TIMEOUT_S)
    state = tmp_path_factory.mktemp("router-state")
    args = {
        "router": router_args(ports["router"], API_KEY, state, "--admin-key", ADMIN_KEY),
        "backend": ["backend", "--port", str(ports["backend"])],
        "worker": worker_args(ports["worker"], urls["backend"], urls["router"], "hostile-w1"),
    }
    router_env = {**env, "TGIS_ALLOW_PRIVATE_WORKERS": "true"}
    with (
        ManagedProcess("router", args["router"], router_env, logs) as router,
        ManagedProcess("backend", args["backend"], env, logs) as backend,
    ):
        wait_for("the router", lambda: get_json(f"{urls['router']}/health")[0] == 200, [router])
        worker_env = {**env, "TGIS_JOIN_TOKEN": cli_join_token(urls["router"], ADMIN_KEY)}
        with ManagedProcess("worker", args["worker"], worker_env, logs) as worker:
            processes = {"router": router, "backend": backend, "worker": worker}
            wait_for("the worker", lambda: _worker_ready(urls["router"]), list(processes.values()))
            yield Stack(urls, processes)


def _worker_ready(router_url: str) -> bool:
    status, body = router_status(router_url)
    workers = body["endpoints"][0]["workers"] if status == 200 else []
    return any(worker["state"] == "ready" for worker in workers)


@pytest.fixture(scope="module", autouse=True)
def enough_file_descriptors() -> None:
    """10,000 client sockets need more descriptors than a shell's usual soft limit (1024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = IDLE_CONNECTIONS + 2048
    if soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            pytest.skip(f"needs {wanted} file descriptors; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


# What is measured ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    rss_mib: float
    fds: int

    def __str__(self) -> str:
        return f"RSS {self.rss_mib:.1f} MiB, {self.fds} fds"


def usage(pid: int) -> Usage:
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    return Usage(rss_kib / 1024, len(os.listdir(f"/proc/{pid}/fd")))


def accepted(pid: int, port: int) -> int:
    """How many connections to `port` (the service's own) the process holds open: its pooled
    connections to other services are not counted."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port, state = int(fields[1].rsplit(":", 1)[1], 16), fields[3]
            if local_port == port and state != "0A":  # 0A: the listening socket itself
                inodes.add(fields[9])
    held = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            held += os.readlink(f"/proc/{pid}/fd/{fd}").removeprefix("socket:[")[:-1] in inodes
    return held


@dataclass(frozen=True)
class Latency:
    samples: list[float]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples) * 1000

    @property
    def max_ms(self) -> float:
        return max(self.samples) * 1000

    def __str__(self) -> str:
        return f"median {self.median_ms:.0f} ms, max {self.max_ms:.0f} ms"


class NormalClient:
    """A well-behaved client of one service, on a new connection for each request (a new one
    must get past whatever the hostile clients hold)."""

    def __init__(self, stack: Stack, service: str) -> None:
        self._stack = stack
        self._service = service

    async def request(self) -> int:
        """One normal request; its status."""
        connector = aiohttp.TCPConnector(force_close=True)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            urls = self._stack.urls
            generate = {"inputs": "Hello", "parameters": {"max_new_tokens": 2}}
            if self._service == "backend":
                async with http.post(f"{urls['backend']}/generate", json=generate) as answer:
                    await answer.read()
                    return answer.status
            ticket = await self._ticket(http)
            if self._service == "router":
                return 200 if ticket is not None else 500
            body = {"auth_data": ticket, "payload": generate}
            async with http.post(f"{urls['worker']}/generate", json=body) as answer:
                await answer.read()
                return answer.status

    async def _ticket(self, http: aiohttp.ClientSession) -> object:
        route = {"endpoint": "default", "cost": 16}
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with http.post(
            f"{self._stack.urls['router']}/route/", json=route, headers=headers
        ) as r:
            return await r.json() if r.status == 200 else None

    async def latency(self) -> Latency:
        """`NORMAL_REQUESTS` requests one after another; each must be served."""
        samples = []
        for _ in range(NORMAL_REQUESTS):
            started = time.perf_counter()
            assert await self.request() == 200
            samples.append(time.perf_counter() - started)
        return Latency(samples)


def report(case: str, service: str, lines: dict[str, object]) -> None:
    print(f"\n[hostile] {case} -> {service}")
    for name, value in lines.items():
        print(f"[hostile]   {name}: {value}")


async def settle(pid: int, baseline: Usage, limit_s: float = 30.0) -> Usage:
    """The process's usage once its descriptors are back near `baseline` (or at `limit_s`)."""
    deadline = time.monotonic() + limit_s
    now = usage(pid)
    while now.fds > baseline.fds + 8 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        now = usage(pid)
    return now


def host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


async def open_connection(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(*host_port(url))


async def until_closed(reader: asyncio.StreamReader, limit_s: float) -> bytes:
    """All the server sends until it closes the connection (a reset counts as closed)."""
    received = b""
    async with asyncio.timeout(limit_s):
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                received += chunk
    return received


def close_all(writers: list[asyncio.StreamWriter]) -> None:
    for writer in writers:
        writer.close()


async def during(attack: Awaitable[object], stack: Stack, service: str) -> tuple[Latency, Usage]:
    """Normal clients' latency while `attack` runs, and the attacked process's usage: the most
    of its RSS and of its fds, sampled as they start and as they end."""
    pid = stack.processes[service].pid
    task = asyncio.ensure_future(attack)
    await asyncio.sleep(0.5)
    early = usage(pid)
    latency = await NormalClient(stack, service).latency()
    late = usage(pid)
    await task
    peak = Usage(max(early.rss_mib, late.rss_mib), max(early.fds, late.fds))
    return latency, peak


def post_head(service: str, path_of: Callable[[str], str], length: int) -> bytes:
    return (
        f"POST {path_of(service)} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def generate_path(service: str) -> str:
    return "/route/" if service == "router" else "/generate"


# The cases -----------------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
async def test_ten_thousand_idle_connections(stack: Stack, service: str) -> None:
    """10,000 connections that send nothing: at most `MAX_CONNECTIONS` are held (the oldest
    idle ones give way), each is closed by the header deadline, and normal clients get in.

    Some of the 10,000 the server never sees: while its accept queue (128) is full the kernel
    drops the handshake's last packet, and the client believes it is connected. The server's
    descriptors are what is counted: back to where they were while the clients still hold all
    of theirs."""
    pid, url = stack.processes[service].pid, stack.urls[service]
    baseline_latency = await NormalClient(stack, service).latency()
    before = usage(pid)
    writers: list[asyncio.StreamWriter] = []
    readers: list[asyncio.StreamReader] = []
    started = time.monotonic()
    peak = before
    for _ in range(IDLE_CONNECTIONS // 500):
        opened = await asyncio.gather(*(open_connection(url) for _ in range(500)))
        readers += [reader for reader, _ in opened]
        writers += [writer for _, writer in opened]
        peak = max(peak, usage(pid), key=lambda u: u.fds)
    opened_s = time.monotonic() - started
    latency = await NormalClient(stack, service).latency()
    try:
        after = await settle(pid, before, limit_s=TIMEOUT_S + 30)
        settled_s = time.monotonic() - started
        closed = sum(reader.at_eof() for reader in readers)
    finally:
        close_all(writers)
    report(
        f"{IDLE_CONNECTIONS} idle connections",
        service,
        {
            "opened in": f"{opened_s:.1f} s; server's fds back after {settled_s:.1f} s",
            "closed by the server, as the clients saw it": closed,
            "process before": before,
            "process at the most fds": peak,
            "process after (clients still connected)": after,
            "normal clients, baseline": baseline_latency,
            "normal clients, during": latency,
        },
    )
    # An evicted connection's descriptor closes on the loop's next turn, so for a moment one
    # batch of accepted connections stands beside the MAX_CONNECTIONS held (seen: 138 over).
    assert peak.fds <= before.fds + MAX_CONNECTIONS + ACCEPT_BATCH + 64
    assert after.fds <= before.fds + 8
    assert peak.rss_mib - before.rss_mib < 256


@pytest.mark.parametrize("service", SERVICES)
async def test_headers_one_byte_a_second(stack: Stack, service: str) -> None:
    """Slowloris: `SLOW_CLIENTS` connections send their headers a byte a second; each is
    closed at the header deadline, and normal clients are served meanwhile."""
    pid, url = stack.processes[service].pid, stack.urls[service]
    baseline_latency = await NormalClient(stack, service).latency()
    before = usage(pid)
    head = f"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: {'a' * 100}".encode()

    async def slowloris() -> float:
        reader, writer = await open_connection(url)
        started = time.monotonic()
        try:
            for byte in head:
                if reader.at_eof():
                    break
                with contextlib.suppress(ConnectionError):
                    writer.write(bytes([byte]))
                    await writer.drain()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(reader.read(1), 1.0)
            assert await until_closed(reader, 10) == b""
            return time.monotonic() - started
        finally:
            writer.close()

    attack = asyncio.gather(*(slowloris() for _ in range(SLOW_CLIENTS)))
    latency, peak = await during(attack, stack, service)
    cut_after = attack.result()
    after = await settle(pid, before)
    report(
        f"{SLOW_CLIENTS} clients sending headers one byte a second",
        service,
        {
            "cut off after": f"{min(cut_after):.1f} to {max(cut_after):.1f} s",
            "process before": before,
            "process during": peak,
            "process after": after,
            "normal clients, baseline": baseline_latency,
            "normal clients, during": latency,
        },
    )
    assert max(cut_after) < TIMEOUT_S + 3
    assert after.fds <= before.fds + 8


@pytest.mark.parametrize("service", SERVICES)
async def test_a_body_one_byte_a_second(stack: Stack, service: str) -> None:
    """`SLOW_CLIENTS` requests send their bodies a byte a second: each gets 408
    `request_timeout` at the body deadline, in JSON, and its connection is closed."""
    pid, url = stack.processes[service].pid, stack.urls[service]
    baseline_latency = await NormalClient(stack, service).latency()
    before = usage(pid)

    async def slow_body() -> tuple[float, bytes]:
        reader, writer = await open_connection(url)
        started = time.monotonic()
        writer.write(post_head(service, generate_path, 1000) + b'{"inputs": "')
        answer = b""
        try:
            while not reader.at_eof() and time.monotonic() - started < TIMEOUT_S + 10:
                with contextlib.suppress(ConnectionError):
                    writer.write(b"a")
                    await writer.drain()
                with contextlib.suppress(TimeoutError):
                    answer += await asyncio.wait_for(reader.read(65536), 1.0)
                if answer.endswith(b"}"):
                    break
            return time.monotonic() - started, answer + await until_closed(reader, 5)
        finally:
            writer.close()

    attack = asyncio.gather(*(slow_body() for _ in range(SLOW_CLIENTS)))
    latency, peak = await during(attack, stack, service)
    results = attack.result()
    after = await settle(pid, before)
    times = [elapsed for elapsed, _ in results]
    report(
        f"{SLOW_CLIENTS} bodies one byte a second",
        service,
        {
            "answered after": f"{min(times):.1f} to {max(times):.1f} s",
            "process before": before,
            "process during": peak,
            "process after": after,
            "normal clients, baseline": baseline_latency,
            "normal clients, during": latency,
        },
    )
    for _, answer in results:
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert json.loads(body)["error_type"] == "request_timeout"
    assert max(times) < TIMEOUT_S + 3
    assert after.fds <= before.fds + 8


@pytest.mark.parametrize("service", SERVICES)
async def test_huge_headers(stack: Stack, service: str) -> None:
    """`SLOW_CLIENTS` requests each with a 1 MiB header: 431 `headers_too_large` in JSON, and
    nothing more is read from the connection; what each costs is at most about one socket read
    (asyncio reads up to 256 KiB at once), not what the client sends."""
    pid, url = stack.processes[service].pid, stack.urls[service]
    baseline_latency = await NormalClient(stack, service).latency()
    before = usage(pid)
    huge = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: " + b"a" * MIB + b"\r\n\r\n"

    async def huge_header() -> bytes:
        reader, writer = await open_connection(url)
        try:
            with contextlib.suppress(ConnectionError):
                writer.write(huge)
                await writer.drain()
            return await until_closed(reader, 30)
        finally:
            writer.close()

    attack = asyncio.gather(*(huge_header() for _ in range(SLOW_CLIENTS)))
    latency, peak = await during(attack, stack, service)
    answers = attack.result()
    after = await settle(pid, before)
    report(
        f"{SLOW_CLIENTS} requests with a 1 MiB header",
        service,
        {
            "process before": before,
            "process during": peak,
            "process after": after,
            "normal clients, baseline": baseline_latency,
            "normal clients, during": latency,
        },
    )
    answered = [a for a in answers if a]  # a reset may come before the answer is read
    assert answered, "no client read its answer"
    for answer in answered:
        head, _, body = answer.partition(b"\r\n\r\n")
        assert b" 431 " in head.split(b"\r\n")[0], answer[:200]
        assert json.loads(body)["error_type"] == "headers_too_large"
    assert peak.rss_mib - before.rss_mib < SLOW_CLIENTS * 0.5  # MiB: under 512 KiB each
    assert after.fds <= before.fds + 8


def _stream_request(stack: Stack, service: str, ticket: object) -> tuple[str, bytes]:
    """Where a stalled reader's stream comes from, and its request: a long /generate_stream."""
    payload: dict[str, object] = {
        "inputs": "Hello",
        "parameters": {"max_new_tokens": STREAM_TOKENS},
    }
    body: dict[str, object]
    if service == "backend":
        path, body, auth = "/generate_stream", payload, ""
    elif service == "worker":
        path, body, auth = "/generate_stream", {"auth_data": ticket, "payload": payload}, ""
    else:  # through the router's gateway
        path, body = "/endpoints/default/generate_stream", payload
        auth = f"Authorization: Bearer {API_KEY}\r\n"
    raw = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\n"
        f"Content-Length: {len(raw)}\r\n\r\n"
    )
    return stack.urls[service], head.encode() + raw


async def _ticket(stack: Stack) -> object:
    async with aiohttp.ClientSession() as http:
        route = {"endpoint": "default", "cost": STREAM_TOKENS + 100}
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with http.post(f"{stack.urls['router']}/route/", json=route, headers=headers) as r:
            assert r.status == 200
            return await r.json()


@pytest.mark.parametrize("service", SERVICES)
async def test_a_reader_that_never_reads_its_stream(stack: Stack, service: str) -> None:
    """`STALLED_STREAMS` clients ask for a long token stream and never read it (a 4 KiB
    receive buffer): the server drops each connection (its descriptors come back while the
    clients still hold theirs), and normal clients are served meanwhile.

    On loopback the kernel's send buffer grows to a few MiB (2.8 MiB on the machine of
    docs/reliability.md) and takes in a whole stream of `STREAM_TOKENS`: the server ends its answer
    and the keep-alive deadline closes the connection. A stream too long for it fills the
    process's write buffer, and the send deadline closes it instead
    (tests/integration/httpedge/test_connection_limits.py). Either is `TIMEOUT_S` here."""
    pid = stack.processes[service].pid
    baseline_latency = await NormalClient(stack, service).latency()
    before = usage(pid)
    loop = asyncio.get_running_loop()
    stalled: list[socket.socket] = []
    requests = [
        _stream_request(stack, service, await _ticket(stack)) for _ in range(STALLED_STREAMS)
    ]
    for url, request in requests:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await loop.sock_connect(sock, host_port(url))
        await loop.sock_sendall(sock, request)
        stalled.append(sock)
    started = time.monotonic()

    port = host_port(stack.urls[service])[1]

    async def dropped_by_the_server() -> float:
        deadline = started + 10
        while accepted(pid, port) < STALLED_STREAMS and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # until the server has taken them all in
        deadline = started + READER_LIMIT_S
        while accepted(pid, port) > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        return time.monotonic() - started

    try:
        dropped = asyncio.ensure_future(dropped_by_the_server())
        latency, peak = await during(dropped, stack, service)
        dropped_s = dropped.result()
        after = usage(pid)
        report(
            f"{STALLED_STREAMS} readers that never read a {STREAM_TOKENS}-token stream",
            service,
            {
                "server dropped them after": f"{dropped_s:.1f} s",
                "process before": before,
                "process during": peak,
                "process after (clients still connected)": after,
                "normal clients, baseline": baseline_latency,
                "normal clients, during": latency,
            },
        )
        assert accepted(pid, port) == 0
        assert dropped_s < READER_LIMIT_S
        for sock in stalled:  # each got its stream's start, unread
            assert (await loop.sock_recv(sock, 65536)).startswith(b"HTTP/1.1 200 ")
    finally:
        for sock in stalled:
            sock.close()
