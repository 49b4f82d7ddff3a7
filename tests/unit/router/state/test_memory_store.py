"""`MemoryState`, the shared state in one process, keeps the contract `RedisState` keeps
(tests/integration/router/state/test_redis_store.py)."""

from __future__ import annotations

from router.state.memory import MemoryState
from router.state.shared import SeenReport, SharedState
from tests.clock import FakeClock


def shared(clock: FakeClock) -> SharedState:
    return MemoryState(clock)


async def test_reqnum_blocks_start_at_the_floor_and_never_overlap() -> None:
    state = shared(FakeClock())
    first = await state.reserve_reqnums({"w": 4}, 1000)
    second = await state.reserve_reqnums({"w": 4}, 9000)
    assert first == {"w": 1004}
    assert second == {"w": 1008}


async def test_reports_and_loads_cross_routers_and_expire() -> None:
    clock = FakeClock()
    state = shared(clock)
    seen = SeenReport("A", 1.0, b"{}")
    await state.exchange("A", {"w": seen}, {"w": 2.0}, report_ttl_s=10, load_ttl_s=3)
    other = await state.exchange("B", {}, {}, report_ttl_s=10, load_ttl_s=3)
    assert other.reports == {"w": seen}
    assert other.loads == {"w": 2.0}
    clock.now += 5
    later = await state.exchange("B", {}, {}, report_ttl_s=10, load_ttl_s=3)
    assert later.loads == {}
    assert later.reports == {"w": seen}


async def test_the_ring_is_put_once_when_only_if_absent() -> None:
    state = shared(FakeClock())
    assert await state.put_ring(b"one", only_if_absent=True)
    assert not await state.put_ring(b"two", only_if_absent=True)
    assert await state.get_ring() == (1, b"one")


async def test_one_lease_holder_until_it_lapses() -> None:
    clock = FakeClock()
    state = shared(clock)
    assert await state.hold_lease("a", "A", 1.0)
    assert not await state.hold_lease("a", "B", 1.0)
    clock.now += 1.5
    assert await state.hold_lease("a", "B", 1.0)
