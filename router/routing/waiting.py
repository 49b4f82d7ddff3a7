"""Requests waiting for a worker: bounded, first come first served, per endpoint.

A waiter is a future in its endpoint's FIFO. When capacity may have appeared (a status
report), `wake` resolves the waiters of that endpoint in arrival order; each then tries to
pick a worker in that order, and those that find none queue again, in the same order. The
number of waiters, all endpoints together, is bounded (`capacity`; the caller counts them with
`enter` and `leave`): past it the caller must refuse (`full()`), and the router answers 429
instead of holding memory for a flood.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

__all__ = ["WaitQueue"]


class WaitQueue:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}
        self._count = 0

    @property
    def waiting(self) -> int:
        """How many requests are waiting now, all endpoints together."""
        return self._count

    def waiting_for(self, endpoint: str) -> int:
        return len(self._waiting.get(endpoint, ()))

    def full(self) -> bool:
        return self._count >= self.capacity

    def enter(self) -> None:
        """Count one more waiter (of any endpoint); the caller checked `full()` first."""
        self._count += 1

    def leave(self) -> None:
        """Count one waiter less: it got a worker, timed out or was cancelled."""
        self._count -= 1

    async def wait(self, endpoint: str) -> None:
        """Until `wake(endpoint)` (cancel it with a timeout)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._waiting.setdefault(endpoint, deque())
        queue.append(future)
        try:
            await future
        finally:
            if not future.done() or future.cancelled():
                with contextlib.suppress(ValueError):
                    queue.remove(future)
            if not queue and self._waiting.get(endpoint) is queue:
                del self._waiting[endpoint]

    def wake(self, endpoint: str) -> None:
        """Wake every waiter of `endpoint`, oldest first."""
        queue = self._waiting.pop(endpoint, None)
        while queue:
            future = queue.popleft()
            if not future.done():
                future.set_result(None)

    def wake_all(self) -> None:
        for endpoint in list(self._waiting):
            self.wake(endpoint)
