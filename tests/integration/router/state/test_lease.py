"""The autoscaler's lease on a real Redis: one holder at a time, and the lease moves within
twice its length when its holder dies."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from router.state.lease import Lease, run_while_leading
from router.state.redis_store import RedisState
from router.state.sealing import Sealer
from tests.redis_server import RedisServer

SECRET = "a-state-secret-of-32-characters!"
TTL_S = 0.6


async def test_the_lease_moves_within_twice_its_length_and_never_has_two_holders(
    redis_server: RedisServer,
) -> None:
    states = [RedisState(redis_server.url, Sealer(SECRET)) for _ in range(2)]
    leading: list[str] = []
    overlaps: list[float] = []
    started: dict[str, float] = {}

    def runner(name: str) -> Callable[[asyncio.Event], Coroutine[Any, Any, None]]:
        async def run(until: asyncio.Event) -> None:
            if leading:
                overlaps.append(time.monotonic())
            leading.append(name)
            started[name] = time.monotonic()
            try:
                await until.wait()
            finally:
                leading.remove(name)

        return run

    stops = [asyncio.Event(), asyncio.Event()]
    first = asyncio.create_task(
        run_while_leading(Lease(states[0], "autoscaler", "A", TTL_S), runner("A"), stops[0])
    )
    deadline = time.monotonic() + 10
    while "A" not in leading:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    second = asyncio.create_task(
        run_while_leading(Lease(states[1], "autoscaler", "B", TTL_S), runner("B"), stops[1])
    )
    await asyncio.sleep(3 * TTL_S)
    assert leading == ["A"]  # A renews: B never takes it
    first.cancel()  # A dies without a word (its run is cut short too)
    died_at = time.monotonic()
    while "B" not in leading:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    assert started["B"] - died_at < 2 * TTL_S
    assert overlaps == []
    stops[1].set()
    await asyncio.wait_for(second, 5)
    for state in states:
        await state.close()
