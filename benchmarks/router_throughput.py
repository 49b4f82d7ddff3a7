"""Router throughput: POST /route/ per second and its p50/p99 latency, against its ceiling.

One router process (pinned to one core when the machine has two or more) serves the real
router app with `--workers` registered, ready workers. The same process, the same app, also
answers `POST /ceiling/`, which reads the body and returns a constant JSON ticket-sized body
without parsing, authenticating, choosing or signing: the most this aiohttp app can answer on
this core. A load generator on the other core (`wrk` when installed, else a Python aiohttp
client in its own process) drives each path in turn, `--rounds` times, ceiling and route
alternating, and the best round of each is reported, with the ratio route / ceiling.

It also reports the router process's own CPU time per request (user + system, from
/proc/<pid>/stat, over each round), which moves much less than req/s when other work shares
the machine, and what the 0.7x goal leaves for routing: (1 / 0.7 - 1) x the ceiling's CPU time.

Goals (issue 5): ratio >= 0.7, and >= 5,000 routes/s on one core.

Usage (from the repository root, with the venv the project is installed in):
  .venv/bin/python benchmarks/router_throughput.py [--workers 100] [--duration 5] [--connections 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

API_KEY = "bench-api-key"
WORKER_TOKEN = "bench-worker-token"
ROUTE_BODY = {"endpoint": "default", "cost": 100}
CEILING_BODY = json.dumps(
    {
        "cost": 100,
        "endpoint": "default",
        "reqnum": 1764553200000,
        "url": "http://10.0.0.1:3000",
        "request_idx": 1,
        "exp": 1764553260,
        "kid": "0123456789abcdef",
        "signature": "A" * 88,
    }
).encode()


@dataclass
class Result:
    path: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int = 0
    cpu_us: float = float("nan")
    """The router process's CPU time (user + system) per request, over this round."""


# -- the server ---------------------------------------------------------------------------------


def serve(port: int, state_dir: Path, core: int | None) -> None:
    """Run the router app (plus /ceiling/) until killed."""
    if core is not None:
        os.sched_setaffinity(0, {core})
    from aiohttp import web

    from router.http.app import create_app
    from router.settings import RouterSettings

    settings = RouterSettings(
        api_key=API_KEY,
        admin_key="bench-admin",
        worker_token=WORKER_TOKEN,
        allow_anonymous_workers=True,  # the fleet is reports alone: no worker process to join
        allow_private_workers=True,  # at 10.0.x.y
        state_dir=state_dir,
        port=port,
        worker_stale_s=3600,
        ticket_ttl_s=60,
    )
    app = create_app(settings)

    async def ceiling(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=CEILING_BODY, content_type="application/json")

    app.router.add_post("/ceiling/", ceiling)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# -- load ---------------------------------------------------------------------------------------


WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
"""


def run_wrk(url: str, duration_s: float, connections: int, core: int | None) -> Result:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT.format(body=json.dumps(ROUTE_BODY), key=API_KEY))
    command = [
        "wrk", "-t1", f"-c{connections}", f"-d{duration_s:g}s", "--latency", "-s", script.name, url
    ]  # fmt: skip
    if core is not None and shutil.which("taskset"):
        command = ["taskset", "-c", str(core), *command]
    try:
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script.name)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non_2xx:
        errors += int(non_2xx.group(1))
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    total = re.search(r"(\d+) requests in", out)
    requests = int(total.group(1)) if total else 0
    return Result(url, rate, _wrk_ms(out, "50%"), _wrk_ms(out, "99%"), errors, requests)


def _wrk_ms(out: str, percentile: str) -> float:
    match = re.search(rf"^\s+{re.escape(percentile)}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    if match is None:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def run_python_client(url: str, duration_s: float, connections: int, core: int | None) -> Result:
    """Fallback load generator (slower than wrk: it may be the bottleneck; the output says so)."""
    command = [
        sys.executable, __file__, "--client", url,
        "--duration", str(duration_s), "--connections", str(connections),
    ]  # fmt: skip
    if core is not None:
        command += ["--core", str(core)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    return Result(
        url, data["rate"], data["p50_ms"], data["p99_ms"], data["errors"], data["requests"]
    )


async def _client(url: str, duration_s: float, connections: int) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    body = json.dumps(ROUTE_BODY).encode()
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    deadline = time.perf_counter() + duration_s

    async def loop(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    errors += 1
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        began = time.perf_counter()
        await asyncio.gather(*(loop(session) for _ in range(connections)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "rate": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "errors": errors,
        "requests": len(latencies),
    }


# -- orchestration ------------------------------------------------------------------------------


def _post(url: str, body: dict[str, Any], token: str) -> None:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        response.read()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_healthy(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("the router process exited during start-up")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the router did not start within 60 s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workers", type=int, default=100, help="ready workers registered with the router"
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=5.0,
        help="seconds per measurement, whole (wrk measures nothing finer)",
    )
    parser.add_argument(
        "--connections", type=int, default=32, help="concurrent connections of the load generator"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="ceiling and route measured this many times each"
    )
    parser.add_argument("--port", type=int, default=0, help="the router's port (0: a free one)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--state-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--core", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.duration < 1 or not args.duration.is_integer():
        parser.error(f"--duration must be whole seconds, at least 1 (not {args.duration:g})")
    if args.serve:
        serve(args.port, args.state_dir, args.core)
        return 0
    if args.client:
        if args.core is not None:
            os.sched_setaffinity(0, {args.core})
        result = asyncio.run(_client(args.client, args.duration, args.connections))
        print(json.dumps(result))
        return 0
    return _orchestrate(args)


def _orchestrate(args: argparse.Namespace) -> int:
    from aiohttp.test_utils import unused_port

    cores = sorted(os.sched_getaffinity(0))
    server_core, load_core = (cores[0], cores[1]) if len(cores) >= 2 else (None, None)
    port = args.port or unused_port()
    url = f"http://127.0.0.1:{port}"
    load = run_wrk if shutil.which("wrk") else run_python_client
    with tempfile.TemporaryDirectory() as state_dir:
        command = [sys.executable, __file__, "--serve", "--port", str(port)]
        command += ["--state-dir", state_dir]
        if server_core is not None:
            command += ["--core", str(server_core)]
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        try:
            _wait_healthy(url, server)
            for index in range(args.workers):
                report = {
                    "id": f"w{index}",
                    "url": f"http://10.0.{index // 250}.{index % 250}:3000",
                    "state": "ready",
                    "max_perf": 100.0 + 10 * (index % 7),
                }
                _post(f"{url}/worker_status/", report, WORKER_TOKEN)
            load(f"{url}/route/", 1.0, args.connections, load_core)  # warm-up
            best: dict[str, Result] = {}
            least_cpu: dict[str, float] = {}
            for _ in range(args.rounds):
                for path in ("/ceiling/", "/route/"):
                    cpu_before = _cpu_seconds(server.pid)
                    result = load(f"{url}{path}", args.duration, args.connections, load_core)
                    cpu = _cpu_seconds(server.pid) - cpu_before
                    result.cpu_us = cpu / result.requests * 1e6 if result.requests else cpu
                    if path not in best or result.requests_per_s > best[path].requests_per_s:
                        best[path] = result
                    least_cpu[path] = min(least_cpu.get(path, float("inf")), result.cpu_us)
        finally:
            server.terminate()
            server.wait(10)
    _print(best, least_cpu, args, load.__name__, server_core)
    return 0


def _print(
    best: dict[str, Result],
    least_cpu: dict[str, float],
    args: argparse.Namespace,
    load: str,
    core: int | None,
) -> None:
    ceiling, route = best["/ceiling/"], best["/route/"]
    ratio = route.requests_per_s / ceiling.requests_per_s
    generator = "wrk -t1" if load == "run_wrk" else "Python aiohttp client (may be the bottleneck)"
    pinned = f"router pinned to core {core}" if core is not None else "router not pinned"
    print(f"router throughput: {args.workers} ready workers, {args.connections} connections, ")
    print(f"  best of {args.rounds} x {args.duration:g}s, load from {generator}, {pinned}")
    print(
        f"  {'path':<10} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'CPU us/req':>11}"
    )
    for name, result in (("ceiling", ceiling), ("route", route)):
        print(
            f"  {name:<10} {result.requests_per_s:>10.0f} {result.p50_ms:>8.2f} "
            f"{result.p99_ms:>8.2f} {result.errors:>7} {_least(least_cpu, result):>11.1f}"
        )
    print(f"  ratio route/ceiling: {ratio:.2f}x (goal >= 0.70x)")
    print(f"  routes/s on one core: {route.requests_per_s:.0f} (goal >= 5000)")
    sign_us = _signature_us()
    route_cpu, ceiling_cpu = _least(least_cpu, route), _least(least_cpu, ceiling)
    print(
        f"  router CPU per request (least of {args.rounds} rounds): route {route_cpu:.1f} us, "
        f"ceiling {ceiling_cpu:.1f} us, ratio {ceiling_cpu / route_cpu:.2f}x"
    )
    budget = ceiling_cpu * (1 / 0.7 - 1)
    print(
        f"  0.7x leaves routing {budget:.1f} us of CPU per request beyond the ceiling's; it uses "
        f"{route_cpu - ceiling_cpu:.1f} us, of which one Ed25519 signature (the router's "
        f"signer, in a loop) is {sign_us:.1f} us"
    )


def _least(least_cpu: dict[str, float], result: Result) -> float:
    """The least CPU time per request over the rounds of `result`'s path."""
    return least_cpu["/" + result.path.split("/", 3)[3]]


def _signature_us(samples: int = 5000) -> float:
    """The CPU cost of one ticket signature as the router signs (in this process, best of 3)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from protocol import TicketSigner

    signer = TicketSigner(Ed25519PrivateKey.generate())
    fields = json.loads(CEILING_BODY)
    del fields["signature"]
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for _ in range(samples):
            signer.sign(dict(fields))
        best = min(best, (time.process_time() - started) / samples)
    return best * 1e6


if __name__ == "__main__":
    raise SystemExit(main())
