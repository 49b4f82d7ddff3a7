"""What gateway mode costs: a client's two steps (POST /route/, then POST to the worker) vs one
POST to the router's /endpoints/default/... that does both and relays the answer.

    .venv/bin/python -m benchmarks.gateway_overhead [--requests 400] [--concurrency 16]

Router, PyWorker and the test suite's instant fake TGI run in one process and one event loop,
so the ratio compares CPU cost per request on equal terms. Anchor: the two-step path with our
client's work (route, then post) in the same loop. Measured: the same payloads through the
gateway. Both pay for a signed ticket per request; the gateway adds a proxy hop.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp

from benchmarks.bench_relay import Call, measure, report, run_from_command_line, serve_stack
from router.settings import RouterSettings

API_KEY = "bench-key"
ADMIN_KEY = "bench-admin-key"


async def wait_until_routable(http: aiohttp.ClientSession, router_url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        async with http.get(f"{router_url}/status") as response:
            workers = (await response.json())["endpoints"][0]["workers"]
        if any(worker["state"] == "ready" for worker in workers):
            return
        await asyncio.sleep(0.1)
    raise TimeoutError("the worker never became ready")


async def run(requests: int, concurrency: int, tokens: int, state_dir: Path) -> None:
    router_settings = RouterSettings(
        api_key=API_KEY,
        admin_key=ADMIN_KEY,
        state_dir=state_dir,
        route_timeout_s=5,
        public_status=True,  # wait_until_routable reads /status
        allow_private_workers=True,  # the worker listens on 127.0.0.1
    )
    stack = await serve_stack(tokens, router_settings, report_interval_s=0.5)
    urls = stack.urls
    headers = {"Authorization": f"Bearer {API_KEY}"}
    payload = {"inputs": "Hello", "parameters": {"max_new_tokens": tokens}}
    connector = aiohttp.TCPConnector(limit=2 * concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        await wait_until_routable(http, urls["router"])

        def two_steps(path: str) -> Call:
            async def call(_: int) -> None:
                body = {"endpoint": "default", "cost": tokens}
                async with http.post(f"{urls['router']}/route/", json=body, headers=headers) as r:
                    ticket = await r.json()
                envelope = {"auth_data": ticket, "payload": payload}
                async with http.post(f"{ticket['url']}{path}", json=envelope) as response:
                    await response.read()
                    assert response.status == 200, response.status

            return call

        def gateway(path: str) -> Call:
            url = f"{urls['router']}/endpoints/default{path}"

            async def call(_: int) -> None:
                async with http.post(url, json=payload, headers=headers) as response:
                    await response.read()
                    assert response.status == 200, response.status

            return call

        for path in ("/generate", "/generate_stream"):
            for level in (1, concurrency):
                await measure(two_steps(path), 50, level)  # warm-up
                await measure(gateway(path), 50, level)
                report(
                    f"gateway {path} (concurrency {level})",
                    await measure(two_steps(path), requests, level),
                    await measure(gateway(path), requests, level),
                )
    await stack.close()


def main() -> None:
    run_from_command_line(run, (__doc__ or "").splitlines()[0])


if __name__ == "__main__":
    main()
