from __future__ import annotations

import asyncio

from router.routing.waiting import WaitQueue


async def test_waiters_wake_in_arrival_order() -> None:
    queue = WaitQueue(capacity=10)
    woken: list[int] = []

    async def waiter(index: int) -> None:
        await queue.wait("e")
        woken.append(index)

    tasks = [asyncio.create_task(waiter(i)) for i in range(5)]
    await asyncio.sleep(0)
    queue.wake("other")
    await asyncio.sleep(0)
    assert woken == []
    queue.wake("e")
    await asyncio.gather(*tasks)
    assert woken == [0, 1, 2, 3, 4]
    assert queue.waiting_for("e") == 0


async def test_a_timed_out_waiter_leaves_no_trace() -> None:
    queue = WaitQueue(capacity=1)
    queue.enter()
    assert queue.full()
    try:
        async with asyncio.timeout(0.01):
            await queue.wait("e")
    except TimeoutError:
        pass
    queue.leave()
    assert (queue.waiting, queue.waiting_for("e"), queue.full()) == (0, 0, False)
