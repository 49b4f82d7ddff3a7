"""A worker with several routers in `REPORT_ADDR`: every router gets every report, each on its
own (one that hangs slows no other), each with its own join token and credential or one shared,
and the tickets of every router's keys pass, each key with its own reqnums."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from protocol import SigningKey, sign_ticket
from pyworker.state import REPORTER, VERIFIER
from pyworker.tickets.keys import KeyFetchError, RouterKeys
from tests.fakes.fake_router import StandInRouter
from tests.fakes.fake_tgi import FakeTGI
from tests.integration.pyworker.stack import PAYLOAD, ServerFactory, wait_until
from tests.integration.pyworker.test_keys_and_reports import Worker, address, worker_for
from tests.ports import free_port


async def serve(aiohttp_server: ServerFactory, *routers: StandInRouter) -> list[TestServer]:
    return [await aiohttp_server(router.app()) for router in routers]


def ticket(worker: Worker, key: SigningKey, reqnum: int) -> dict[str, Any]:
    fields = {
        "cost": 3,
        "endpoint": "default",
        "reqnum": reqnum,
        "url": worker.url,
        "request_idx": reqnum,
        "exp": time.time() + 60,
        "kid": key.kid,
        "epoch": worker.server.app[VERIFIER].epoch,
    }
    return sign_ticket(key.private_key, fields)


async def generate(worker: Worker, key: SigningKey, reqnum: int) -> tuple[int, Any]:
    body = {"auth_data": ticket(worker, key, reqnum), "payload": PAYLOAD}
    async with worker.http.post(f"{worker.url}/generate", json=body) as response:
        return response.status, await response.json()


async def test_every_router_gets_every_report(aiohttp_server: ServerFactory) -> None:
    first, second = StandInRouter(), StandInRouter()
    servers = await serve(aiohttp_server, first, second)
    report_addr = ",".join(address(server) for server in servers)
    async with worker_for(aiohttp_server, report_addr, FakeTGI()):
        await wait_until(lambda: any(r["state"] == "ready" for r in first.reports))
        await wait_until(lambda: any(r["state"] == "ready" for r in second.reports))
        assert first.states()[0] == second.states()[0] == "starting"


async def test_a_router_that_hangs_never_slows_the_reports_to_the_others(
    aiohttp_server: ServerFactory,
) -> None:
    hanging, healthy = StandInRouter(hang_reports=True), StandInRouter()
    servers = await serve(aiohttp_server, hanging, healthy)
    down = f"http://127.0.0.1:{free_port()}"
    report_addr = ",".join([address(servers[0]), down, address(servers[1])])
    async with worker_for(aiohttp_server, report_addr, FakeTGI()):
        await wait_until(lambda: bool(hanging.report_attempts))
        before = len(healthy.reports)
        started = time.monotonic()
        # Every 0.2 s (report_interval_s) while the first router holds its report for 5 s.
        await wait_until(lambda: len(healthy.reports) >= before + 5)
        assert time.monotonic() - started < 4.0
        assert not hanging.reports
        hanging.hang_reports = False
        hanging.release.set()


async def test_each_router_gets_its_own_join_token_and_credential(
    aiohttp_server: ServerFactory,
) -> None:
    first = StandInRouter(join_token="tgis-join-a", credential="tgis-worker-a")
    second = StandInRouter(join_token="tgis-join-b", credential="tgis-worker-b")
    servers = await serve(aiohttp_server, first, second)
    report_addr = ",".join(address(server) for server in servers)
    tokens = "tgis-join-a,tgis-join-b"
    async with worker_for(aiohttp_server, report_addr, FakeTGI(), join_token=tokens) as worker:
        await wait_until(lambda: worker.server.app[REPORTER].registered)
        await wait_until(lambda: len(first.authorizations) > 2 and len(second.authorizations) > 2)
    assert first.authorizations[0] == "Bearer tgis-join-a"
    assert set(first.authorizations[1:]) == {"Bearer tgis-worker-a"}
    assert second.authorizations[0] == "Bearer tgis-join-b"
    assert set(second.authorizations[1:]) == {"Bearer tgis-worker-b"}


async def test_one_join_token_registers_once_and_its_credential_goes_to_every_router(
    aiohttp_server: ServerFactory,
) -> None:
    # Routers that share their identities: the token is good once, at whichever router.
    first = StandInRouter(join_token="tgis-join-x", credential="tgis-worker-x")
    second = StandInRouter(join_token="tgis-join-x", credential="tgis-worker-x")
    servers = await serve(aiohttp_server, first, second)
    report_addr = ",".join(address(server) for server in servers)
    async with worker_for(
        aiohttp_server, report_addr, FakeTGI(), join_token="tgis-join-x"
    ) as worker:
        await wait_until(lambda: worker.server.app[REPORTER].registered)
        await wait_until(lambda: len(first.authorizations) > 2 and len(second.authorizations) > 2)
    both = first.authorizations + second.authorizations
    assert both.count("Bearer tgis-join-x") == 1  # one report at a time carries the token
    assert set(both) == {"Bearer tgis-join-x", "Bearer tgis-worker-x"}


async def test_tickets_of_every_routers_keys_pass_each_with_its_own_reqnums(
    aiohttp_server: ServerFactory,
) -> None:
    # Two routers that share no state: each signs with its own key and numbers from 1.
    first, second = StandInRouter(), StandInRouter()
    servers = await serve(aiohttp_server, first, second)
    report_addr = ",".join(address(server) for server in servers)
    async with worker_for(aiohttp_server, report_addr, FakeTGI()) as worker:
        known = worker.server.app[VERIFIER].known_kids
        assert known == {first.keys[0].kid, second.keys[0].kid}
        assert (await generate(worker, first.keys[0], 1))[0] == 200
        assert (await generate(worker, second.keys[0], 1))[0] == 200
        status, body = await generate(worker, second.keys[0], 1)
        assert (status, body["reason"]) == (403, "replayed")
        worker.assert_idle()


async def test_a_router_that_misses_one_key_fetch_keeps_its_keys_two_lose_them(
    aiohttp_server: ServerFactory,
) -> None:
    first, second = StandInRouter(), StandInRouter()
    servers = await serve(aiohttp_server, first, second)
    kids = {first.keys[0].kid, second.keys[0].kid}
    async with aiohttp.ClientSession() as session:
        keys = RouterKeys(session, [address(server) for server in servers])
        assert set(await keys.fetch()) == kids
        second.refuse_keys = 2
        assert set(await keys.fetch()) == kids  # a blip: kept
        assert set(await keys.fetch()) == {first.keys[0].kid}  # gone: forgotten
        assert set(await keys.fetch()) == kids  # back
        first.refuse_keys = second.refuse_keys = 3
        for _ in range(3):
            with pytest.raises(KeyFetchError):
                await keys.fetch()  # cut off from all: the worker keeps what it had
        assert set(await keys.fetch()) == kids
