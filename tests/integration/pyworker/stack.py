"""A PyWorker in process between the real router app and a scriptable fake TGI, for the
PyWorker's integration tests: `start_stack` brings all three up, `Stack` drives them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from protocol import SigningKey, sign_ticket
from pyworker.app import create_app
from pyworker.settings import WorkerSettings
from pyworker.state import LIFECYCLE, LOAD, VERIFIER
from router.http.app import create_app as create_router_app
from router.settings import RouterSettings
from tests.fakes.fake_tgi import FakeTGI
from tests.ports import free_port
from tests.worker_identity import join_token

API_KEY = "k"
PAYLOAD = {"inputs": "Hello", "parameters": {"max_new_tokens": 3}}

ServerFactory = Callable[..., Awaitable[TestServer]]


@dataclass
class Stack:
    router: TestServer
    worker: TestServer
    backend: FakeTGI
    backend_server: TestServer
    key: SigningKey
    http: aiohttp.ClientSession

    @property
    def worker_url(self) -> str:
        return str(self.worker.make_url("")).rstrip("/")

    async def ticket(self, cost: float = 3) -> dict[str, Any]:
        body = {"endpoint": "default", "cost": cost}
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with self.http.post(self.router.make_url("/route/"), json=body, headers=headers) as r:
            assert r.status == 200
            ticket: dict[str, Any] = await r.json()
        assert "url" in ticket, ticket
        return ticket

    def forge(self, **fields: Any) -> dict[str, Any]:
        base = {
            "cost": 100,
            "endpoint": "default",
            "reqnum": 10**15,
            "url": self.worker_url,
            "request_idx": 1,
            "exp": time.time() + 60,
            "kid": self.key.kid,
            "epoch": self.worker.app[VERIFIER].epoch,
        }
        return sign_ticket(self.key.private_key, {**base, **fields})

    async def post(self, path: str, body: Any) -> aiohttp.ClientResponse:
        return await self.http.post(f"{self.worker_url}{path}", json=body)

    def assert_idle(self) -> None:
        load = self.worker.app[LOAD]
        assert (load.in_flight_workload, load.requests_working) == (0, 0)


async def start_stack(
    aiohttp_server: ServerFactory,
    tmp_path: Path,
    backend: FakeTGI,
    *,
    router_fields: dict[str, Any] | None = None,
    **worker_fields: Any,
) -> AsyncIterator[Stack]:
    """A router (`router_fields` add to or replace its settings), a ready worker with
    `worker_fields` (registered with a join token), and `backend` behind it."""
    key = SigningKey.generate()
    router_settings = RouterSettings(
        **{
            "api_key": API_KEY,
            "allow_private_workers": True,
            "state_dir": tmp_path,
            "route_timeout_s": 5,
            "public_status": True,  # the tests read /status to see the worker
            **(router_fields or {}),
        }
    )
    router = await aiohttp_server(create_router_app(router_settings, signing_key=key))
    backend_server = await aiohttp_server(backend.app())
    endpoint = worker_fields.get("endpoint", "default")
    token = join_token(router.app, endpoint)  # the worker registers, as a provider's would
    fields = {"worker_id": "w1", "join_token": token, **worker_fields}
    worker = await serve_worker(aiohttp_server, url_of(router), url_of(backend_server), **fields)
    backend.received.clear()  # forget the start-up benchmark
    async with aiohttp.ClientSession() as http:
        yield Stack(router, worker, backend, backend_server, key, http)


def url_of(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


async def serve_worker(
    aiohttp_server: ServerFactory,
    router_url: str,
    backend_url: str,
    *,
    wait_until_serving: bool = True,
    **fields: Any,
) -> TestServer:
    """A PyWorker (`fields` add to or replace its settings) reporting to `router_url`, in front
    of `backend_url`, served on a free port; once it is serving, unless told not to wait."""
    port = free_port()
    defaults: dict[str, Any] = {
        "port": port,
        "backend_url": backend_url,
        "report_addr": router_url,
        "public_url": f"http://127.0.0.1:{port}",
        "report_interval_s": 0.2,
        "health_interval_s": 0.2,
        "benchmark_tokens": 3,
    }
    worker = await aiohttp_server(create_app(WorkerSettings(**{**defaults, **fields})), port=port)
    if wait_until_serving:
        await wait_until(lambda: worker.app[LIFECYCLE].serving)
    return worker


async def wait_until(condition: Callable[[], bool], limit_s: float = 10.0) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)
