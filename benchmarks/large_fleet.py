"""One router with a large fleet: route latency (p50, p99), report latency and memory with
`--workers` simulated workers (10,000), as ratios against `--baseline` workers (100), in one run.

The workers are status reports alone: each is registered by a `POST /worker_status/` that this
process sends to the real router app (`router.http.app.create_app`, memory state) through
aiohttp's in-process test client: no worker process and no worker socket, only the one loopback
connection between this client and the app. Every worker is ready, at a 10.x.y.z address, with
a capacity so large that no route ever waits, so the figures are the registry's and the
chooser's, not queueing.

- route latency: `POST /route/` one request at a time (nothing queues), `--routes` of them per
  round after a warm-up, each a signed ticket (anything else counts as an error);
- route latency after a change: one worker leaves rotation (a `loading` report) before each
  of `--churn` routes, and comes back after it, so each of these routes is the first after the
  fleet changed (what a router pays while workers start, fail and stop);
- report latency: reports of workers already registered, `--reports` per round (the path
  every worker takes every few seconds);
- memory: the bytes Python holds after the fleet registered, less before (tracemalloc, traced
  only while registering), in all and per worker.

Rounds alternate between the two fleets (`--rounds`, the median round of each is reported), so
drift on a shared machine touches both alike. Latencies include this client's own aiohttp
overhead, the same for both fleets: the ratios understate the registry's share.

Usage (from the repository root, with the venv the project is installed in):
  .venv/bin/python benchmarks/large_fleet.py [--workers 10000] [--baseline 100] [--routes 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

API_KEY = "bench-api-key"
WORKER_TOKEN = "bench-worker-token"
ROUTE_BODY = {"endpoint": "default", "cost": 1}
ROUTE_HEADERS = {"Authorization": f"Bearer {API_KEY}"}
REPORT_HEADERS = {"Authorization": f"Bearer {WORKER_TOKEN}"}


@dataclass
class Fleet:
    size: int
    client: TestClient[Any, Any]
    memory_bytes: int
    register_s: float


@dataclass
class Round:
    route_p50_ms: float
    route_p99_ms: float
    churn_p50_ms: float
    churn_p99_ms: float
    report_p50_ms: float
    report_p99_ms: float
    errors: int


def report(index: int) -> dict[str, Any]:
    """Worker `index`'s report: ready, at its own private address, never short of capacity."""
    return {
        "id": f"w{index}",
        "url": f"http://10.{index // 62500}.{index // 250 % 250}.{index % 250}:3000",
        "state": "ready",
        "max_perf": 1e9,
    }


@asynccontextmanager
async def fleet(size: int, state_dir: Path) -> AsyncIterator[Fleet]:
    """A router app with `size` registered workers, and the memory they took."""
    from router.http.app import create_app
    from router.settings import RouterSettings

    settings = RouterSettings(
        api_key=API_KEY,
        admin_key="bench-admin",
        worker_token=WORKER_TOKEN,
        allow_anonymous_workers=True,  # the fleet is reports alone: no worker process to join
        allow_private_workers=True,  # at 10.x.y.z
        max_workers_per_endpoint=max(size, 1024),
        state_dir=state_dir,
        worker_stale_s=3600,
        ticket_ttl_s=3600,
    )
    async with TestClient(TestServer(create_app(settings))) as client:
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        started = time.perf_counter()
        for index in range(size):
            async with client.post(
                "/worker_status/", json=report(index), headers=REPORT_HEADERS
            ) as r:
                if r.status >= 300:
                    raise SystemExit(f"worker {index} was refused: {r.status} {await r.text()}")
        register_s = time.perf_counter() - started
        memory = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        yield Fleet(size, client, memory, register_s)


async def timed_route(client: TestClient[Any, Any]) -> tuple[float, bool]:
    """Seconds one `POST /route/` took, and whether it answered a ticket."""
    started = time.perf_counter()
    async with client.post("/route/", json=ROUTE_BODY, headers=ROUTE_HEADERS) as response:
        answer = await response.json()
    return time.perf_counter() - started, response.status == 200 and "signature" in answer


async def timed_report(client: TestClient[Any, Any], body: dict[str, Any]) -> tuple[float, bool]:
    """Seconds one `POST /worker_status/` took, and whether it was accepted."""
    started = time.perf_counter()
    async with client.post("/worker_status/", json=body, headers=REPORT_HEADERS) as response:
        await response.read()
    return time.perf_counter() - started, response.status < 300


async def measure(fleet: Fleet, routes: int, churn: int, reports: int) -> Round:
    client, failures = fleet.client, []
    route_s: list[float] = []
    for _ in range(routes):
        seconds, ticket = await timed_route(client)
        route_s.append(seconds)
        failures.append(not ticket)
    churn_s: list[float] = []
    for index in range(churn):
        worker = report(index * fleet.size // churn)
        failures.append(not (await timed_report(client, {**worker, "state": "loading"}))[1])
        seconds, ticket = await timed_route(client)
        churn_s.append(seconds)
        failures.append(not ticket)
        failures.append(not (await timed_report(client, worker))[1])
    report_s: list[float] = []
    for index in range(reports):
        seconds, accepted = await timed_report(client, report(index * fleet.size // reports))
        report_s.append(seconds)
        failures.append(not accepted)
    return Round(
        *percentiles(route_s), *percentiles(churn_s), *percentiles(report_s), sum(failures)
    )


def percentiles(seconds: list[float]) -> tuple[float, float]:
    """p50 and p99, in milliseconds."""
    ordered = sorted(seconds)
    return ordered[len(ordered) // 2] * 1e3, ordered[
        min(len(ordered) - 1, len(ordered) * 99 // 100)
    ] * 1e3


def median_round(rounds: list[Round]) -> Round:
    return Round(
        statistics.median(r.route_p50_ms for r in rounds),
        statistics.median(r.route_p99_ms for r in rounds),
        statistics.median(r.churn_p50_ms for r in rounds),
        statistics.median(r.churn_p99_ms for r in rounds),
        statistics.median(r.report_p50_ms for r in rounds),
        statistics.median(r.report_p99_ms for r in rounds),
        sum(r.errors for r in rounds),
    )


async def run(args: argparse.Namespace) -> None:
    counts = (args.routes, args.churn, args.reports)
    with tempfile.TemporaryDirectory() as small_dir, tempfile.TemporaryDirectory() as large_dir:
        async with (
            fleet(args.baseline, Path(small_dir)) as small,
            fleet(args.workers, Path(large_dir)) as large,
        ):
            for each in (small, large):
                await measure(each, *(max(1, count // 10) for count in counts))  # warm-up
            rounds: dict[int, list[Round]] = {small.size: [], large.size: []}
            for _ in range(args.rounds):
                for each in (small, large):
                    rounds[each.size].append(await measure(each, *counts))
            results = {size: median_round(taken) for size, taken in rounds.items()}
    print_table(small, large, results[small.size], results[large.size], args)


def print_table(small: Fleet, large: Fleet, a: Round, b: Round, args: argparse.Namespace) -> None:
    def row(name: str, x: float, y: float, unit: str) -> None:
        print(f"{name:<26}{x:>12.3f}{y:>12.3f}  {unit:<6}{y / x:>8.2f}x")

    per_round = f"{args.routes} routes, {args.churn} after a change, {args.reports} reports"
    print(f"{per_round}, {args.rounds} rounds, median round")
    print(f"{'':<26}{small.size:>12,}{large.size:>12,}  {'':<6}{'ratio':>9}")
    row("route p50", a.route_p50_ms, b.route_p50_ms, "ms")
    row("route p99", a.route_p99_ms, b.route_p99_ms, "ms")
    row("route after change p50", a.churn_p50_ms, b.churn_p50_ms, "ms")
    row("route after change p99", a.churn_p99_ms, b.churn_p99_ms, "ms")
    row("report p50", a.report_p50_ms, b.report_p50_ms, "ms")
    row("report p99", a.report_p99_ms, b.report_p99_ms, "ms")
    row("memory", small.memory_bytes / 2**20, large.memory_bytes / 2**20, "MiB")
    row(
        "memory per worker",
        small.memory_bytes / small.size / 1024,
        large.memory_bytes / large.size / 1024,
        "KiB",
    )
    row("registering", small.register_s, large.register_s, "s")
    print(f"errors: {a.errors} ({small.size:,} workers), {b.errors} ({large.size:,} workers)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=10_000, help="the large fleet")
    parser.add_argument("--baseline", type=int, default=100, help="the fleet it is compared with")
    parser.add_argument("--routes", type=int, default=2000, help="route requests per round")
    parser.add_argument("--churn", type=int, default=200, help="routes after a change per round")
    parser.add_argument("--reports", type=int, default=1000, help="reports per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per fleet, alternating")
    args = parser.parse_args()
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
