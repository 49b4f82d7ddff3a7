"""SIGTERM on a real PyWorker process: it stops listening, reports `draining`, lets the stream
in flight finish, reports `stopped` and exits 0. The backend and the router are in-process
stand-ins speaking the wire formats; the worker runs Vast's RSA ticket scheme."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from protocol.vast_tickets import VastVariant, sign_vast_ticket
from tests.e2e.processes import ManagedProcess, worker_args
from tests.fakes.fake_router import StandInRouter
from tests.fakes.fake_tgi import FakeTGI, expected_stream
from tests.ports import free_port

pytestmark = pytest.mark.e2e

PAYLOAD = {"inputs": "Hello", "parameters": {"max_new_tokens": 8}}


async def eventually(
    what: str, check: Callable[[], Awaitable[bool]], process: ManagedProcess, limit_s: float = 60
) -> None:
    deadline = time.monotonic() + limit_s
    while not await check():
        assert process.popen.poll() is None, f"worker exited:\n{process.output()[-3000:]}"
        assert time.monotonic() < deadline, f"{what}: timed out\n{process.output()[-3000:]}"
        await asyncio.sleep(0.1)


async def test_sigterm_drains_the_stream_in_flight_then_exits(tmp_path: Path) -> None:
    backend, router = FakeTGI(tokens=8), StandInRouter()
    backend_server, router_server = TestServer(backend.app()), TestServer(router.app())
    await backend_server.start_server()
    await router_server.start_server()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    backend_url = str(backend_server.make_url("")).rstrip("/")
    router_url = str(router_server.make_url("")).rstrip("/")
    args = worker_args(port, backend_url, router_url, "drain-1")
    env = {"TGIS_TICKET_SCHEME": "vast", "TGIS_DRAIN_GRACE": "30"}
    worker = ManagedProcess("worker", args, env, tmp_path)
    try:
        async with aiohttp.ClientSession() as http:

            async def ready() -> bool:
                try:
                    async with http.get(f"{url}/health") as response:
                        return response.status == 200
                except aiohttp.ClientError:
                    return False

            await eventually("the worker to be ready", ready, worker)
            backend.mode = "slow_stream"  # 0.2 s a token: 1.6 s for the stream
            fields = {"cost": 8, "endpoint": "default", "reqnum": 1, "url": url}
            ticket = sign_vast_ticket(router.key, fields, VastVariant.LEGACY)
            body = {"auth_data": ticket, "payload": PAYLOAD}
            async with http.post(f"{url}/generate_stream", json=body) as response:
                assert response.status == 200
                first = await response.content.readline()
                worker.popen.send_signal(signal.SIGTERM)

                async def draining() -> bool:
                    return "draining" in router.states()

                await eventually("a draining report", draining, worker)
                rest = await response.content.read()
            assert first + rest == expected_stream(8)  # finished, not cut
            with pytest.raises(aiohttp.ClientConnectionError):
                await http.get(f"{url}/ping")  # no longer listening
            code = await asyncio.to_thread(worker.popen.wait, 30)
            assert code == 0, worker.output()[-3000:]
            assert router.states()[-1] == "stopped"
    finally:
        worker.stop()
        await backend_server.close()
        await router_server.close()
