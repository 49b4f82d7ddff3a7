"""`RedisState` against a real redis-server: atomic reqnum blocks, sealed secrets, the
exchange of reports and loads, and the lease."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from router.state.redis_store import RedisState
from router.state.sealing import Sealer, SealError
from router.state.shared import SeenReport, StateUnavailable
from tests.redis_server import RedisServer

SECRET = "a-state-secret-of-32-characters!"


@pytest.fixture
async def state(redis_server: RedisServer) -> AsyncIterator[RedisState]:
    store = RedisState(redis_server.url, Sealer(SECRET))
    yield store
    await store.close()


async def test_reqnum_blocks_never_overlap_across_concurrent_routers(
    redis_server: RedisServer,
) -> None:
    routers = [RedisState(redis_server.url, Sealer(SECRET)) for _ in range(3)]
    try:
        answers = await asyncio.gather(
            *[r.reserve_reqnums({"w1": 8, "w2": 8}, 1000) for r in routers for _ in range(20)]
        )
    finally:
        for router in routers:
            await router.close()
    for worker_id in ("w1", "w2"):
        numbers = [n for a in answers for n in range(a[worker_id] - 7, a[worker_id] + 1)]
        assert len(numbers) == len(set(numbers)) == 3 * 20 * 8
        assert min(numbers) == 1001


async def test_a_counter_starts_at_the_floor_and_then_only_counts(state: RedisState) -> None:
    assert await state.reserve_reqnums({"w": 4}, 100) == {"w": 104}
    assert await state.reserve_reqnums({"w": 4}, 5000) == {"w": 108}  # close together
    assert await state.reserve_reqnums({"v": 4}, 5000) == {"v": 5004}


async def test_the_ring_is_sealed_in_redis(state: RedisState, redis_server: RedisServer) -> None:
    assert await state.put_ring(b"-----BEGIN PRIVATE KEY----- secret")
    assert not await state.put_ring(b"another", only_if_absent=True)
    raw = aioredis.Redis.from_url(redis_server.url)
    try:
        stored = await raw.get("tgis:ring")
    finally:
        await raw.aclose()
    assert isinstance(stored, bytes)
    assert b"PRIVATE" not in stored
    with pytest.raises(SealError):
        Sealer("b" * 32).open(stored)
    stored_ring = await state.get_ring()
    assert stored_ring is not None
    assert stored_ring[1] == b"-----BEGIN PRIVATE KEY----- secret"


async def test_endpoints_are_sealed_and_changed_by_name(
    state: RedisState, redis_server: RedisServer
) -> None:
    await state.put_resources({"a": b'{"api_key": "k1"}', "b": b"{}"}, {"g": b"{}"})
    await state.put_resources({"a": None}, {})
    await state.put_resources({"b": b"other"}, {}, only_if_absent=True)
    stored = await state.get_resources()
    assert stored.endpoints == {"b": b"{}"}
    assert stored.groups == {"g": b"{}"}
    first_version = stored.version
    await state.put_resources({"c": b"{}"}, {})
    assert (await state.get_resources()).version == first_version + 1
    raw = aioredis.Redis.from_url(redis_server.url)
    try:
        values = await raw.hvals("tgis:endpoints")
    finally:
        await raw.aclose()
    assert len(values) == 2
    for value in values:
        assert b"{}" not in value


async def test_routers_see_each_others_reports_and_loads(redis_server: RedisServer) -> None:
    first, second = (RedisState(redis_server.url, Sealer(SECRET)) for _ in range(2))
    try:
        seen = SeenReport("A", 10.0, b'{"id": "w"}')
        await first.exchange("A", {"w": seen}, {"w": 3.0}, report_ttl_s=5, load_ttl_s=0.3)
        other = await second.exchange("B", {}, {"w": 2.0}, report_ttl_s=5, load_ttl_s=5)
        assert other.reports == {"w": seen}
        assert other.loads == {"w": 3.0}
        mine = await first.exchange("A", {}, {}, report_ttl_s=5, load_ttl_s=0.3)
        assert mine.loads == {"w": 2.0}  # A's own figure is not counted against itself
        await asyncio.sleep(0.5)  # A stops flushing: its figure expires
        assert (await second.exchange("B", {}, {}, report_ttl_s=5, load_ttl_s=5)).loads == {}
    finally:
        await first.close()
        await second.close()


async def test_one_lease_holder_at_a_time(redis_server: RedisServer) -> None:
    first, second = (RedisState(redis_server.url, Sealer(SECRET)) for _ in range(2))
    try:
        assert await first.hold_lease("autoscaler", "A", 0.4)
        assert not await second.hold_lease("autoscaler", "B", 0.4)
        assert await first.hold_lease("autoscaler", "A", 0.4)  # renewed
        await asyncio.sleep(0.6)  # A stops renewing: the lease lapses
        assert await second.hold_lease("autoscaler", "B", 0.4)
        assert not await first.hold_lease("autoscaler", "A", 0.4)
    finally:
        await first.close()
        await second.close()


async def test_an_absent_redis_is_state_unavailable(redis_server: RedisServer) -> None:
    redis_server.stop(kill=True)
    state = RedisState(redis_server.url, Sealer(SECRET), timeout_s=0.5)
    try:
        with pytest.raises(StateUnavailable):
            await state.reserve_reqnums({"w": 1}, 0)
        with pytest.raises(StateUnavailable):
            await state.exchange("A", {}, {}, report_ttl_s=1, load_ttl_s=1)
    finally:
        await state.close()
