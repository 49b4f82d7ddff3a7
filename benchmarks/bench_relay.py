"""What the PyWorker adds: requests straight to a backend vs the same requests through it.

    .venv/bin/python -m benchmarks.bench_relay [--requests 400] [--concurrency 16] [--tokens 32]

The backend is the test suite's instant fake TGI, so the figures isolate the proxy: ticket
check, envelope parsing, load accounting and relay. Anchor: the client posting straight to
the backend. Measured: the same payloads through the PyWorker with a fresh ticket each. Also
the router's `/route/` against its trivial `/health`. Everything runs in one process and one
event loop, so each ratio compares CPU cost per request on equal terms.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import aiohttp
from aiohttp import web

from protocol import SigningKey, sign_ticket
from pyworker.app import create_app as create_worker_app
from pyworker.settings import WorkerSettings
from pyworker.state import LIFECYCLE, VERIFIER
from router.http.app import IDENTITIES
from router.http.app import create_app as create_router_app
from router.settings import RouterSettings
from tests.fakes.fake_tgi import FakeTGI
from tests.ports import free_port

Call = Callable[[int], Awaitable[None]]


async def serve(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def measure(call: Call, requests: int, concurrency: int) -> tuple[float, float]:
    """(requests per second, median latency in ms) for `requests` calls at `concurrency`."""
    latencies: list[float] = []
    queue = iter(range(requests))

    async def user() -> None:
        for index in queue:
            started = time.perf_counter()
            await call(index)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(user() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return requests / elapsed, statistics.median(latencies) * 1000


def report(name: str, anchor: tuple[float, float], measured: tuple[float, float]) -> None:
    print(
        f"{name:<34} anchor {anchor[0]:7.0f} req/s p50 {anchor[1]:6.2f} ms | "
        f"measured {measured[0]:7.0f} req/s p50 {measured[1]:6.2f} ms | "
        f"throughput ratio {measured[0] / anchor[0]:.2f}"
    )


@dataclass
class LocalStack:
    """A router, the instant fake TGI and a PyWorker in front of it, served in this process."""

    urls: dict[str, str]
    """"router", "backend" and "worker": each one's base URL."""
    worker: web.Application
    runners: list[web.AppRunner]

    async def close(self) -> None:
        for runner in reversed(self.runners):
            await runner.cleanup()


async def serve_stack(
    tokens: int,
    router_settings: RouterSettings,
    *,
    signing_key: SigningKey | None = None,
    **worker_fields: Any,
) -> LocalStack:
    """Serve the three on free ports; the worker registers with the router with a join token,
    as a provider's would, and reports to it (`worker_fields` add to its settings); its start-up
    benchmark asks for `tokens` tokens. The router's settings' endpoint must allow private
    workers: the worker listens on 127.0.0.1."""
    ports = {name: free_port() for name in ("router", "backend", "worker")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    router_app = create_router_app(router_settings, signing_key=signing_key)
    join_token = router_app[IDENTITIES].book.mint(
        router_settings.endpoint, now=time.time(), ttl_s=600.0, worker_id="bench"
    )
    worker_settings = WorkerSettings(
        port=ports["worker"],
        backend_url=urls["backend"],
        report_addr=urls["router"],
        public_url=urls["worker"],
        worker_id="bench",
        join_token=join_token,
        benchmark_tokens=tokens,
        **worker_fields,
    )
    worker_app = create_worker_app(worker_settings)
    runners = [
        await serve(router_app, ports["router"]),
        await serve(FakeTGI(tokens=tokens).app(), ports["backend"]),
        await serve(worker_app, ports["worker"]),
    ]
    return LocalStack(urls, worker_app, runners)


async def run(requests: int, concurrency: int, tokens: int, state_dir: Path) -> None:
    key = SigningKey.generate()
    router_settings = RouterSettings(
        api_key="k", state_dir=state_dir, route_timeout_s=0, allow_private_workers=True
    )
    stack = await serve_stack(tokens, router_settings, signing_key=key)
    urls, worker_app = stack.urls, stack.worker
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        await asyncio.wait_for(worker_app[LIFECYCLE].wait_until_serving(), 60)
        payload = {"inputs": "Hello", "parameters": {"max_new_tokens": tokens}}
        reqnums = iter(range(1, 10**9))

        def ticket() -> dict[str, Any]:
            fields = {
                "cost": tokens,
                "endpoint": "default",
                "reqnum": next(reqnums),
                "url": urls["worker"],
                "request_idx": 0,
                "exp": time.time() + 600,
                "kid": key.kid,
                "epoch": worker_app[VERIFIER].epoch,
            }
            return sign_ticket(key.private_key, fields)

        def post(url: str, body_of: Callable[[], Any]) -> Call:
            async def call(_: int) -> None:
                async with http.post(url, json=body_of()) as response:
                    await response.read()
                    assert response.status == 200, response.status

            return call

        for path in ("/generate", "/generate_stream"):
            # Tickets are signed before the clock starts: signing is the router's work.
            bodies = iter(
                [{"auth_data": ticket(), "payload": payload} for _ in range(4 * requests)]
            )
            direct = post(f"{urls['backend']}{path}", lambda: payload)
            relayed = post(f"{urls['worker']}{path}", functools.partial(next, bodies))
            for level in (1, concurrency):
                await measure(direct, 50, level)  # warm-up
                await measure(relayed, 50, level)
                report(
                    f"{path} (concurrency {level})",
                    await measure(direct, requests, level),
                    await measure(relayed, requests, level),
                )

        headers = {"Authorization": "Bearer k"}

        def get(url: str) -> Call:
            async def call(_: int) -> None:
                async with http.get(url) as response:
                    await response.read()

            return call

        async def route(_: int) -> None:
            body = {"endpoint": "default", "cost": tokens}
            async with http.post(f"{urls['router']}/route/", json=body, headers=headers) as r:
                assert r.status == 200
                await r.read()

        report(
            f"router /route/ vs /health (c {concurrency})",
            await measure(get(f"{urls['router']}/health"), requests, concurrency),
            await measure(route, requests, concurrency),
        )
    await stack.close()


Run = Callable[[int, int, int, Path], Coroutine[Any, Any, None]]
"""(requests, concurrency, tokens, state directory) -> a measurement that prints its ratios."""


def run_from_command_line(run: Run, description: str) -> None:
    """Parse --requests, --concurrency and --tokens, and run `run` in a scratch state dir."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=32, help="SSE events per stream")
    args = parser.parse_args()
    with TemporaryDirectory() as state_dir:
        asyncio.run(run(args.requests, args.concurrency, args.tokens, Path(state_dir)))


def main() -> None:
    run_from_command_line(run, (__doc__ or "").splitlines()[0])


if __name__ == "__main__":
    main()
