"""The worker's two conversations with its routers: fetching keys and sending status reports.

Against a stand-in for the native router (Ed25519 keys at `/keys`, reports at
`/worker_status/`) that can refuse, hang or rotate its keys on demand: keys are fetched with
retries from the first of a comma-separated `REPORT_ADDR` that answers, fetched again when a
ticket names a new key, reports fall over to the next router and back off while none accepts,
and a router that hangs never slows a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from protocol import SigningKey, WorkerState, sign_ticket
from pyworker.app import create_app
from pyworker.lifecycle import Lifecycle
from pyworker.load import LoadTracker
from pyworker.reporter import StatusReporter, build_report, retry_delay_s
from pyworker.settings import WorkerSettings
from pyworker.state import LIFECYCLE, LOAD, VERIFIER
from tests.fakes.fake_router import StandInRouter
from tests.fakes.fake_tgi import FakeTGI
from tests.integration.pyworker.stack import PAYLOAD, ServerFactory, wait_until
from tests.ports import free_port

VAST_FIELDS = (
    "id",
    "loadtime",
    "cur_load",
    "max_perf",
    "cur_perf",
    "error_msg",
    "num_requests_working",
    "num_requests_recieved",
    "url",
)
OUR_FIELDS = ("state", "queue_time", "in_flight_workload", "version", "unsecured", "warnings")


@dataclass
class Worker:
    server: TestServer
    http: aiohttp.ClientSession
    reqnum: int = 0

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    def ticket(self, key: SigningKey, cost: int = 3, life_s: float = 60) -> dict[str, Any]:
        self.reqnum += 1
        fields = {
            "cost": cost,
            "endpoint": "default",
            "reqnum": self.reqnum,
            "url": self.url,
            "request_idx": self.reqnum,
            "exp": time.time() + life_s,
            "kid": key.kid,
            "epoch": self.server.app[VERIFIER].epoch,
        }
        return sign_ticket(key.private_key, fields)

    async def generate(self, key: SigningKey, life_s: float = 60) -> aiohttp.ClientResponse:
        body = {"auth_data": self.ticket(key, life_s=life_s), "payload": PAYLOAD}
        return await self.http.post(f"{self.url}/generate", json=body)

    def assert_idle(self) -> None:
        load = self.server.app[LOAD]
        assert (load.in_flight_workload, load.requests_working) == (0, 0)


@contextlib.asynccontextmanager
async def worker_for(
    aiohttp_server: ServerFactory,
    report_addr: str,
    backend: FakeTGI,
    clock: Callable[[], float] = time.time,
    **fields: Any,
) -> AsyncIterator[Worker]:
    backend_server = await aiohttp_server(backend.app())
    port = free_port()
    settings = WorkerSettings(
        **{
            "port": port,
            "backend_url": str(backend_server.make_url("")).rstrip("/"),
            "report_addr": report_addr,
            "public_url": f"http://127.0.0.1:{port}",
            "worker_id": "w",
            "report_interval_s": 0.2,
            "health_interval_s": 0.2,
            "benchmark_tokens": 3,
            **fields,
        }
    )
    server = await aiohttp_server(create_app(settings, clock=clock), port=port)
    async with aiohttp.ClientSession() as http:
        await wait_until(lambda: server.app[LIFECYCLE].serving)
        backend.received.clear()
        yield Worker(server, http)


def address(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


async def test_keys_come_with_retries_from_the_first_router_that_answers(
    aiohttp_server: ServerFactory,
) -> None:
    router = StandInRouter(refuse_keys=2)  # starting up: two refusals, then its keys
    router_server = await aiohttp_server(router.app())
    nobody = f"http://127.0.0.1:{free_port()}"  # the first REPORT_ADDR is down
    async with worker_for(
        aiohttp_server, f"{nobody}, {address(router_server)}", FakeTGI()
    ) as worker:
        assert router.key_fetches == 3
        assert (await worker.generate(router.keys[0])).status == 200
        await wait_until(lambda: any(r["state"] == "ready" for r in router.reports))
        worker.assert_idle()


async def test_a_rotated_native_key_is_fetched_on_its_first_ticket(
    aiohttp_server: ServerFactory,
) -> None:
    router = StandInRouter()
    router_server = await aiohttp_server(router.app())
    backend = FakeTGI()
    async with worker_for(
        aiohttp_server, address(router_server), backend, key_refresh_interval_s=0.0
    ) as worker:
        old, new = router.keys[0], SigningKey.generate()
        fetches = router.key_fetches
        router.keys = [old, new]  # rotation with overlap: both are published
        assert (await worker.generate(new)).status == 200
        assert router.key_fetches == fetches + 1
        assert (await worker.generate(old)).status == 200  # still accepted: no fetch
        assert router.key_fetches == fetches + 1
        stranger = await worker.generate(SigningKey.generate())  # never published
        assert stranger.status == 401
        assert (await stranger.json())["reason"] == "unknown_key"
        assert len(backend.payloads("/generate")) == 2
        worker.assert_idle()


async def test_a_key_the_router_stops_publishing_is_dropped_within_a_poll(
    aiohttp_server: ServerFactory,
) -> None:
    router = StandInRouter()
    router_server = await aiohttp_server(router.app())
    backend = FakeTGI()
    async with worker_for(
        aiohttp_server, address(router_server), backend, key_poll_interval_s=0.1
    ) as worker:
        revoked, kept = router.keys[0], SigningKey.generate()
        router.keys = [revoked, kept]
        await wait_until(lambda: kept.kid in worker.server.app[VERIFIER].known_kids)
        assert (await worker.generate(revoked)).status == 200
        router.keys = [kept]  # revoked: no longer published
        await wait_until(lambda: worker.server.app[VERIFIER].known_kids == {kept.kid})
        refused = await worker.generate(revoked)
        assert (refused.status, (await refused.json())["reason"]) == (401, "unknown_key")
        assert (await worker.generate(kept)).status == 200
        assert len(backend.payloads("/generate")) == 2
        worker.assert_idle()


async def test_reports_fall_over_to_the_next_router(aiohttp_server: ServerFactory) -> None:
    first, second = StandInRouter(refuse_reports=10**6), StandInRouter()
    second.keys = first.keys
    servers = [await aiohttp_server(router.app()) for router in (first, second)]
    report_addr = ",".join(address(server) for server in servers)
    async with worker_for(aiohttp_server, report_addr, FakeTGI()) as worker:
        await wait_until(lambda: any(r["state"] == "ready" for r in second.reports))
        report = second.reports[-1]
        assert set(VAST_FIELDS) | set(OUR_FIELDS) <= set(report)
        assert (report["id"], report["url"], report["max_perf"] > 0) == ("w", worker.url, True)
        assert first.report_attempts
        assert not first.reports
        assert (await worker.generate(first.keys[0])).status == 200
        worker.assert_idle()


async def test_a_router_that_hangs_never_slows_a_request(aiohttp_server: ServerFactory) -> None:
    router = StandInRouter()
    router_server = await aiohttp_server(router.app())
    async with worker_for(aiohttp_server, address(router_server), FakeTGI()) as worker:
        router.hang_reports = True
        attempts = len(router.report_attempts)
        await wait_until(lambda: len(router.report_attempts) > attempts)  # a report hangs now
        started = time.monotonic()
        for _ in range(5):
            assert (await worker.generate(router.keys[0])).status == 200
        assert time.monotonic() - started < 2.0
        worker.assert_idle()
        router.hang_reports = False
        router.release.set()


async def test_failed_reports_are_retried_with_growing_back_off(
    aiohttp_server: ServerFactory,
) -> None:
    router = StandInRouter(refuse_reports=4)
    router_server = await aiohttp_server(router.app())
    lifecycle, load = Lifecycle(clock=time.time), LoadTracker(clock=time.time)
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    async with aiohttp.ClientSession() as session:
        reporter = StatusReporter(
            session,
            [address(router_server)],
            lambda: build_report(
                worker_id="w", url="u", endpoint="e", lifecycle=lifecycle, load=load
            ),
            lifecycle.changed,
            interval_s=5.0,
            token=None,
            sleep=sleep,
        )
        task = asyncio.create_task(reporter.run())
        try:
            await wait_until(lambda: len(router.reports) == 1)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert delays == [0.5, 1.0, 2.0, 4.0]
    assert [retry_delay_s(n, 5.0) for n in (5, 6, 20)] == [5.0, 5.0, 5.0]  # capped
    assert router.reports[0]["state"] == "starting"


async def test_every_state_change_is_logged_and_reported(
    aiohttp_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pyworker")
    router = StandInRouter()
    router_server = await aiohttp_server(router.app())
    async with worker_for(aiohttp_server, address(router_server), FakeTGI()) as worker:
        await wait_until(lambda: any(r["state"] == "ready" for r in router.reports))
        await worker.server.close()
    messages = [r.getMessage() for r in caplog.records if r.name == "pyworker.lifecycle"]
    assert messages == [
        "worker state starting → loading",
        "worker state loading → benchmarking",
        "worker state benchmarking → ready",
        "worker state ready → draining",
        "worker state draining → stopped",
    ]
    assert [r["state"] for r in router.reports][-2:] == ["draining", "stopped"]
    assert worker.server.app[LIFECYCLE].state is WorkerState.STOPPED


@pytest.mark.parametrize("worker_ahead_s", [30.0, -30.0])
async def test_tickets_expire_by_the_routers_clock_on_a_worker_whose_clock_is_off(
    aiohttp_server: ServerFactory, worker_ahead_s: float
) -> None:
    """A worker's clock 30 s off the router's: it learns the offset from its reports' answers
    (their Date), so a ticket with 15 s to live is served (a worker 30 s ahead once refused
    it as expired) and one expired 15 s ago is refused (a worker 30 s behind once served it)."""
    router = StandInRouter()
    router_server = await aiohttp_server(router.app())
    ahead = lambda: time.time() + worker_ahead_s  # noqa: E731
    async with worker_for(aiohttp_server, address(router_server), FakeTGI(), ahead) as worker:
        await wait_until(lambda: len(router.reports) >= 2)  # the first one's answer is in
        assert (await worker.generate(router.keys[0], life_s=15)).status == 200
        expired = await worker.generate(router.keys[0], life_s=-15)
        assert expired.status == 401
        assert (await expired.json())["reason"] == "expired"
