from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyworker.admission import FifoGate, expected_wait_s, refuse_if_overloaded
from pyworker.errors import Overloaded


def test_expected_wait_is_in_flight_workload_over_max_perf() -> None:
    assert expected_wait_s(300, 100) == 3
    assert expected_wait_s(300, 0) == 0  # not measured yet: no basis to refuse


def test_a_request_within_the_limit_passes() -> None:
    refuse_if_overloaded(3000, 100, 30)  # exactly 30 s: allowed


@given(workload=st.floats(1, 1e7), perf=st.floats(0.1, 1e5), limit=st.floats(0.1, 600))
def test_429_exactly_when_the_wait_exceeds_the_limit(
    workload: float, perf: float, limit: float
) -> None:
    wait = workload / perf
    if wait <= limit:
        refuse_if_overloaded(workload, perf, limit)
        return
    with pytest.raises(Overloaded) as caught:
        refuse_if_overloaded(workload, perf, limit)
    assert caught.value.status == 429
    assert caught.value.retry_after_s is not None
    assert 1 <= caught.value.retry_after_s <= wait - limit + 1


async def test_the_gate_serves_waiters_first_come_first_served() -> None:
    gate = FifoGate(1)
    order: list[int] = []
    await gate.acquire()

    async def user(n: int) -> None:
        async with gate:
            order.append(n)
            await asyncio.sleep(0)

    users = []
    for n in range(5):
        users.append(asyncio.create_task(user(n)))
        await asyncio.sleep(0)  # arrive in this order
    assert gate.waiting == 5
    gate.release()
    await asyncio.gather(*users)
    assert order == [0, 1, 2, 3, 4]
    assert (gate.active, gate.waiting) == (0, 0)


async def full_gate(waiters: int) -> tuple[FifoGate, list[asyncio.Task[None]]]:
    """A gate of one slot, taken, and `waiters` acquires queued behind it in their order."""
    gate = FifoGate(1)
    await gate.acquire()
    queued = [asyncio.create_task(gate.acquire()) for _ in range(waiters)]
    await asyncio.sleep(0)
    return gate, queued


async def test_a_late_arrival_cannot_overtake_a_waiter() -> None:
    gate, [first] = await full_gate(1)
    gate.release()  # the slot goes to `first`, not to whoever asks next
    late = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    assert first.done()
    assert not late.done()
    gate.release()
    await late
    gate.release()
    assert gate.active == 0


async def test_a_cancelled_waiter_leaves_the_queue_and_leaks_nothing() -> None:
    gate, [waiter] = await full_gate(1)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert gate.waiting == 0
    gate.release()
    assert gate.active == 0


async def test_a_waiter_cancelled_just_after_its_grant_passes_the_slot_on() -> None:
    gate, [granted, nxt] = await full_gate(2)
    gate.release()  # grants `granted`...
    granted.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await granted
    await asyncio.wait_for(nxt, 1)
    gate.release()
    assert (gate.active, gate.waiting) == (0, 0)


async def test_raising_the_limit_lets_waiters_in() -> None:
    gate, waiters = await full_gate(3)
    gate.set_limit(3)
    await asyncio.sleep(0)
    assert sum(w.done() for w in waiters) == 2
    assert gate.active == 3
    with pytest.raises(ValueError, match="at least 1"):
        gate.set_limit(0)


@given(
    limit=st.integers(1, 4),
    plan=st.lists(st.tuples(st.integers(0, 3), st.booleans()), min_size=1, max_size=25),
)
def test_the_gate_never_exceeds_its_limit_and_always_returns_to_zero(
    limit: int, plan: list[tuple[int, bool]]
) -> None:
    async def scenario() -> None:
        gate = FifoGate(limit)
        peak = 0

        async def user(hold: int) -> None:
            nonlocal peak
            async with gate:
                peak = max(peak, gate.active)
                for _ in range(hold):
                    await asyncio.sleep(0)

        tasks = [asyncio.create_task(user(hold)) for hold, _ in plan]
        await asyncio.sleep(0)
        for task, (_, cancel) in zip(tasks, plan, strict=True):
            if cancel:
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert peak <= limit
        assert (gate.active, gate.waiting) == (0, 0)

    asyncio.run(scenario())
