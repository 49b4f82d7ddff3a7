"""What the PyWorker adds on the wire, against the backend alone and against nginx as a proxy.

    .venv/bin/python -m benchmarks.pyworker_overhead [--runs 3] [--requests 4000] [--streams 128]

A fast fake TGI (answers at once; streams 256 tokens as fast as it can, or paced at 10 ms and
2 ms a token) is measured directly, through the PyWorker with a fresh ticket verified per
request (`pyworker`: the native Ed25519 scheme; `pyw-rsa`: Vast's RSA scheme, whose signature
is about four times cheaper to verify) and through nginx, all in the same run. Without nginx
(`apt-get install -y nginx`) the run says so loudly and goes on without that reference.

The server side (backend, PyWorkers, nginx) is pinned to CPU 0 with `taskset`; the load
generator, a lean HTTP/1.1 client on keep-alive connections, to CPU 1. Figures are medians
over `--runs`, printed as ratios against the direct anchor: requests/s on /generate, relayed
SSE events/s on /generate_stream, added p50/p99 latency and time to first byte, and the proxy
process's CPU time per request and per event (from /proc). Issue 4's goals are printed beside
them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from protocol import KeySet, SigningKey, sign_ticket
from protocol.vast_tickets import VastVariant, rsa_public_key_pem, sign_vast_ticket

TOKENS = 256
SERVER_CPU, CLIENT_CPU = "0", "1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- the fake backend and the stub router (run as their own processes) ---------------------


def _event(index: int, last: int) -> bytes:
    token = {"id": index, "text": f" t{index}", "logprob": -0.5, "special": False}
    body = {"index": index, "token": token, "generated_text": "x" if index == last else None}
    return b"data:" + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


def backend_app() -> web.Application:
    generated = {
        "generated_text": " t" * 16,
        "details": {"finish_reason": "length", "generated_tokens": 16, "seed": None},
    }
    answer = json.dumps(generated).encode()
    events = [_event(i, TOKENS) for i in range(1, TOKENS + 1)]
    info = {
        "model_id": "bench",
        "max_concurrent_requests": 512,
        "max_best_of": 1,
        "max_stop_sequences": 4,
        "max_input_tokens": 1024,
        "max_total_tokens": 2048,
        "validation_workers": 1,
        "max_client_batch_size": 1,
        "router": "text-generation-router",
        "version": "3.3.6",
    }

    async def generate(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=answer, content_type="application/json")

    async def generate_stream(request: web.Request) -> web.StreamResponse:
        pace = float(json.loads(await request.read()).get("bench_pace_s", 0.0))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        started = time.perf_counter()
        for n, event in enumerate(events, start=1):
            if pace:
                await asyncio.sleep(max(0.0, started + n * pace - time.perf_counter()))
            await response.write(event)
        await response.write_eof()
        return response

    async def health(request: web.Request) -> web.Response:
        return web.Response()

    async def info_handler(request: web.Request) -> web.Response:
        return web.json_response(info)

    app = web.Application()
    app.router.add_post("/generate", generate)
    app.router.add_post("/generate_stream", generate_stream)
    app.router.add_get("/health", health)
    app.router.add_get("/info", info_handler)
    return app


def router_app(key: SigningKey, rsa_key: RSAPrivateKey) -> web.Application:
    """Publishes the keys, and keeps each worker's latest epoch from its reports (`/epochs`:
    the native tickets the load generator signs must name it, as a router's do)."""
    keys = KeySet(keys=[key.published()]).model_dump_json()
    pem = rsa_public_key_pem(rsa_key.public_key())
    epochs: dict[str, str] = {}

    async def get_keys(request: web.Request) -> web.Response:
        return web.Response(text=keys, content_type="application/json")

    async def get_pubkey(request: web.Request) -> web.Response:
        return web.Response(text=pem)

    async def worker_status(request: web.Request) -> web.Response:
        report = await request.json()
        epochs[str(report["id"])] = str(report.get("epoch", ""))
        return web.json_response({})

    async def get_epochs(request: web.Request) -> web.Response:
        return web.json_response(epochs)

    app = web.Application()
    app.router.add_get("/keys", get_keys)
    app.router.add_get("/pubkey/", get_pubkey)
    app.router.add_post("/worker_status/", worker_status)
    app.router.add_get("/epochs", get_epochs)
    return app


# --- a lean HTTP/1.1 load generator ----------------------------------------------------------


@dataclass
class Sample:
    latency_s: float
    ttfb_s: float
    events: int


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> Sample:
        started = time.perf_counter()
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        if status != 200:
            detail = await self.reader.read(2000)
            raise RuntimeError(f"HTTP {status}: {head[:200]!r} {detail[:500]!r}")
        lower = head.lower()
        if b"transfer-encoding: chunked" in lower:
            ttfb, events = await self._chunked(started)
        else:
            start = lower.index(b"content-length:") + 15
            length = int(lower[start : lower.index(b"\r\n", start)])
            await self.reader.readexactly(length)
            ttfb, events = time.perf_counter() - started, 0
        return Sample(time.perf_counter() - started, ttfb, events)

    async def _chunked(self, started: float) -> tuple[float, int]:
        ttfb = 0.0
        events = 0
        tail = b""
        while True:
            size = int((await self.reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return ttfb, events
            data = (await self.reader.readexactly(size + 2))[:-2]
            if not ttfb:
                ttfb = time.perf_counter() - started
            joined = tail + data
            events += joined.count(b"\n\n") - tail.count(b"\n\n")
            tail = joined[-1:]

    def close(self) -> None:
        self.writer.close()


def http_request(path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def load(port: int, requests: list[bytes], concurrency: int) -> tuple[float, list[Sample]]:
    """Send `requests` over `concurrency` keep-alive connections; (wall seconds, samples)."""
    pending = iter(requests)
    samples: list[Sample] = []
    connections = [await Connection.open(port) for _ in range(concurrency)]

    async def user(connection: Connection) -> None:
        for raw in pending:
            samples.append(await connection.request(raw))

    started = time.perf_counter()
    await asyncio.gather(*(user(c) for c in connections))
    elapsed = time.perf_counter() - started
    for connection in connections:
        connection.close()
    return elapsed, samples


# --- targets, CPU accounting, scenarios ------------------------------------------------------


@dataclass
class Target:
    name: str
    port: int
    pids: list[int]
    scheme: str | None = None  # a PyWorker's ticket scheme: it wants {"auth_data", "payload"}
    epoch: str = ""  # a PyWorker's, as it reported it: its native tickets name it


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


@dataclass
class Result:
    rate: float  # requests/s or events/s
    p50_ms: float
    p99_ms: float
    ttfb_p50_ms: float
    cpu_us_per_unit: float


@dataclass
class Bench:
    key: SigningKey
    rsa_key: RSAPrivateKey
    reqnum: int = 0
    results: dict[tuple[str, str], list[Result]] = field(default_factory=dict)

    def bodies(self, target: Target, payload: dict[str, Any], count: int) -> list[bytes]:
        if target.scheme is None:
            return [json.dumps(payload).encode()] * count
        out = []
        for _ in range(count):
            self.reqnum += 1  # one counter for every worker: each sees rising reqnums
            out.append(json.dumps({"auth_data": self.ticket(target), "payload": payload}).encode())
        return out

    def ticket(self, target: Target) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "cost": TOKENS,
            "endpoint": "default",
            "reqnum": self.reqnum,
            "url": f"http://127.0.0.1:{target.port}",
            "request_idx": self.reqnum,
        }
        if target.scheme == "vast":
            return sign_vast_ticket(self.rsa_key, fields, VastVariant.LEGACY)
        expires = math.ceil(time.time() + 3600)
        fields.update(exp=expires, kid=self.key.kid, epoch=target.epoch)  # as the router does
        return sign_ticket(self.key.private_key, fields)

    async def measure(
        self, scenario: str, target: Target, path: str, payload: dict[str, Any], count: int, c: int
    ) -> None:
        warm_up = max(c, count // 10)
        bodies = self.bodies(target, payload, warm_up + count)  # every ticket used once
        raws = [http_request(path, body) for body in bodies]
        await load(target.port, raws[:warm_up], c)
        raws = raws[warm_up:]
        cpu_before = cpu_seconds(target.pids)
        elapsed, samples = await load(target.port, raws, c)
        cpu = cpu_seconds(target.pids) - cpu_before
        events = sum(s.events for s in samples)
        units = events if events else len(samples)
        latencies = sorted(s.latency_s * 1000 for s in samples)
        result = Result(
            rate=units / elapsed,
            p50_ms=statistics.median(latencies),
            p99_ms=latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
            ttfb_p50_ms=statistics.median(s.ttfb_s * 1000 for s in samples),
            cpu_us_per_unit=cpu / units * 1e6,
        )
        self.results.setdefault((scenario, target.name), []).append(result)


def median_result(results: list[Result]) -> Result:
    return Result(
        *(
            statistics.median(getattr(r, name) for r in results)
            for name in ("rate", "p50_ms", "p99_ms", "ttfb_p50_ms", "cpu_us_per_unit")
        )
    )


def report(bench: Bench, scenarios: list[tuple[str, str]], targets: list[Target]) -> None:
    for scenario, unit in scenarios:
        direct = median_result(bench.results[(scenario, "direct")])
        print(f"\n{scenario}")
        print(
            f"  {'target':<9}{unit + '/s':>12}{'ratio':>7}{'p50 ms':>9}{'p99 ms':>9}"
            f"{'+p50 ms':>9}{'+p99 ms':>9}{'ttfb ms':>9}{'+ttfb':>8}{'cpu µs/' + unit:>16}"
        )
        for target in targets:
            r = median_result(bench.results[(scenario, target.name)])
            print(
                f"  {target.name:<9}{r.rate:>12.0f}{r.rate / direct.rate:>7.2f}{r.p50_ms:>9.2f}"
                f"{r.p99_ms:>9.2f}{r.p50_ms - direct.p50_ms:>9.2f}{r.p99_ms - direct.p99_ms:>9.2f}"
                f"{r.ttfb_p50_ms:>9.2f}{r.ttfb_p50_ms - direct.ttfb_p50_ms:>8.2f}"
                f"{r.cpu_us_per_unit if target.name != 'direct' else float('nan'):>16.1f}"
            )


def headline(bench: Bench, scenarios: list[tuple[str, str]], targets: list[Target]) -> None:
    """Issue 4's figures, one line per proxy, each beside its goal (medians over the runs)."""
    generate, _, paced_10, paced_2 = (name for name, _ in scenarios)
    print("\nissue 4's figures (medians over the runs; CPU time per request is the steady one):")
    for target in targets:
        if target.name == "direct":
            continue
        plain = median_result(bench.results[(generate, target.name)])
        added = [
            median_result(bench.results[(scenario, target.name)]).ttfb_p50_ms
            - median_result(bench.results[(scenario, "direct")]).ttfb_p50_ms
            for scenario in (paced_10, paced_2)
        ]
        print(
            f"  {target.name:<9}/generate {plain.rate:,.0f} req/s = {plain.rate / 1000:.1f}x Vast's"
            f" 1,000 (goal >= 5x), {plain.cpu_us_per_unit:.1f} µs CPU/request (goal <= 200);"
            f"\n  {'':<9}added median TTFB, paced streams: {added[0]:+.2f} ms at 10 ms/token"
            f" (goal <= 1), {added[1]:+.2f} ms at 2 ms/token (goal <= 2)"
        )
    print(f"  ({generate}; paced: {paced_10.split(', ', 1)[1]}, all started at once)")


NGINX_MISSING = """
!!! nginx is not installed: the reference proxy column is missing from this run.
!!! Install it (as root: apt-get update && apt-get install -y nginx) and run again."""

GOALS = """
goals (issue 4): /generate >= 5x Vast's ~1,000 req/s and <= 200 µs CPU/request (c=64);
  /generate_stream >= 0.85x direct events/s and <= 3 µs CPU/event (c=64);
  added median TTFB <= 1 ms at 10 ms/token and <= 2 ms at 2 ms/token.
anchors (issue 4): Vast PyWorker ~1,000 req/s, ~800 µs/request; 0.61-0.66x events/s, ~5 µs/event;
  +3 ms / +16 ms TTFB. nginx 0.97x req/s (~30 µs), 0.93x events/s (~2.7 µs), +0.4 / +1.5 ms."""


# --- orchestration ---------------------------------------------------------------------------


def spawn(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    command = ["taskset", "-c", SERVER_CPU, *args] if shutil.which("taskset") else args
    return subprocess.Popen(
        command,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def wait_http(url: str, limit_s: float = 60) -> None:
    deadline = time.monotonic() + limit_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} never answered 200")
        time.sleep(0.2)


def reported_epochs(router_port: int, names: list[str], limit_s: float = 60) -> dict[str, str]:
    """Each named worker's epoch, once the stub router has had a report from every one."""
    deadline = time.monotonic() + limit_s
    while True:
        with urllib.request.urlopen(f"http://127.0.0.1:{router_port}/epochs", timeout=2) as answer:
            epochs: dict[str, str] = json.loads(answer.read())
        if all(name in epochs for name in names):
            return epochs
        if time.monotonic() > deadline:
            raise RuntimeError(f"no report from {sorted(set(names) - set(epochs))}")
        time.sleep(0.2)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


NGINX_CONF = """
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fcgi; uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  upstream backend {{ server 127.0.0.1:{backend}; keepalive 256; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }}
  }}
}}
"""


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            if int(stat.read_text().rsplit(") ", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def find_nginx() -> str | None:
    return shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )


def spawn_worker(ports: dict[str, int], name: str, scheme: str) -> subprocess.Popen[bytes]:
    env = {"TGIS_MAX_QUEUE_TIME": "1000000", "TGIS_TICKET_SCHEME": scheme}
    return spawn(
        [
            sys.executable, "-m", "tgi_serverless", "--log-level", "WARNING", "worker",
            "--port", str(ports[name]), "--host", "127.0.0.1",
            "--backend-url", f"http://127.0.0.1:{ports['backend']}",
            "--router", f"http://127.0.0.1:{ports['router']}",
            "--public-url", f"http://127.0.0.1:{ports[name]}", "--worker-id", name,
        ],
        env,
    )  # fmt: skip


@contextlib.contextmanager
def servers(tmp: Path, key: SigningKey, rsa_key: RSAPrivateKey) -> Iterator[list[Target]]:
    ports = {name: free_port() for name in ("backend", "router", "pyworker", "pyw-rsa", "nginx")}
    me = [sys.executable, "-m", "benchmarks.pyworker_overhead"]
    (tmp / "key.pem").write_bytes(key.to_pem())
    rsa_pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp / "rsa.pem").write_bytes(rsa_pem)
    router_args = ["--key", str(tmp / "key.pem"), "--rsa-key", str(tmp / "rsa.pem")]
    processes = [
        spawn([*me, "serve-backend", "--port", str(ports["backend"])]),
        subprocess.Popen(
            [*me, "serve-router", "--port", str(ports["router"]), *router_args],
            start_new_session=True,
        ),
    ]
    schemes = {"pyworker": "ed25519", "pyw-rsa": "vast"}
    workers = {name: spawn_worker(ports, name, scheme) for name, scheme in schemes.items()}
    processes.extend(workers.values())
    try:
        wait_http(f"http://127.0.0.1:{ports['backend']}/health")
        targets = [Target("direct", ports["backend"], [processes[0].pid])]
        for name in workers:
            wait_http(f"http://127.0.0.1:{ports[name]}/health")
        epochs = reported_epochs(ports["router"], list(workers))
        for name, worker in workers.items():
            scheme, epoch = schemes[name], epochs[name]
            targets.append(Target(name, ports[name], [worker.pid], scheme=scheme, epoch=epoch))
        nginx = find_nginx()
        if nginx:
            conf = tmp / "nginx.conf"
            conf.write_text(
                NGINX_CONF.format(tmp=tmp, backend=ports["backend"], port=ports["nginx"])
            )
            master = spawn([nginx, "-p", str(tmp), "-c", str(conf), "-g", "daemon off;"])
            processes.append(master)
            wait_http(f"http://127.0.0.1:{ports['nginx']}/health")
            targets.append(Target("nginx", ports["nginx"], [master.pid, *children(master.pid)]))
        else:
            print(NGINX_MISSING, flush=True)
        yield targets
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


async def run(args: argparse.Namespace) -> None:
    key = SigningKey.generate()
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with tempfile.TemporaryDirectory() as tmp, servers(Path(tmp), key, rsa_key) as targets:
        with contextlib.suppress(AttributeError, OSError):
            os.sched_setaffinity(0, {int(CLIENT_CPU)})
        bench = Bench(key, rsa_key)
        fast = {"inputs": "Hello", "parameters": {"max_new_tokens": TOKENS}}
        scenarios = [
            (f"/generate, concurrency {args.concurrency}", "req"),
            (f"/generate_stream {TOKENS} tokens, fast, concurrency {args.concurrency}", "event"),
            (f"/generate_stream paced 10 ms/token, concurrency {args.paced_concurrency}", "event"),
            (f"/generate_stream paced 2 ms/token, concurrency {args.paced_concurrency}", "event"),
        ]
        plan: list[tuple[str, str, dict[str, Any], int, int]] = [
            (scenarios[0][0], "/generate", fast, args.requests, args.concurrency),
            (scenarios[1][0], "/generate_stream", fast, args.streams, args.concurrency),
            (
                scenarios[2][0],
                "/generate_stream",
                {**fast, "bench_pace_s": 0.010},
                args.paced_streams,
                args.paced_concurrency,
            ),
            (
                scenarios[3][0],
                "/generate_stream",
                {**fast, "bench_pace_s": 0.002},
                args.paced_streams,
                args.paced_concurrency,
            ),
        ]
        for run_index in range(args.runs):
            for scenario, path, payload, count, concurrency in plan:
                for target in targets:
                    await bench.measure(scenario, target, path, payload, count, concurrency)
            print(f"run {run_index + 1}/{args.runs} done", flush=True)
        report(bench, scenarios, targets)
        headline(bench, scenarios, targets)
        print(GOALS)
        if not any(target.name == "nginx" for target in targets):
            print(NGINX_MISSING)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    backend = sub.add_parser("serve-backend")
    backend.add_argument("--port", type=int, required=True)
    router = sub.add_parser("serve-router")
    router.add_argument("--port", type=int, required=True)
    router.add_argument("--key", type=Path, required=True)
    router.add_argument("--rsa-key", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--streams", type=int, default=128)
    parser.add_argument("--paced-streams", type=int, default=32)
    parser.add_argument("--paced-concurrency", type=int, default=16)
    args = parser.parse_args()
    if args.command == "serve-backend":
        web.run_app(backend_app(), host="127.0.0.1", port=args.port, print=None, access_log=None)
    elif args.command == "serve-router":
        key = SigningKey.from_pem(args.key.read_bytes())
        rsa_key = serialization.load_pem_private_key(args.rsa_key.read_bytes(), password=None)
        assert isinstance(rsa_key, RSAPrivateKey)
        app = router_app(key, rsa_key)
        web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)
    else:
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
