"""Admission: refuse what would wait too long, then let requests through first come, first served.

A request's expected wait is the workload already in flight here (relaying or queued) divided
by the measured `max_perf`. Above `max_queue_time` it is refused with 429 and a `Retry-After`
of the excess; otherwise it joins a FIFO in front of a concurrency cap that suits the backend
(TGI's `max_concurrent_requests` unless set), so the backend never sees more than it accepts.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque

from pyworker.errors import Overloaded

__all__ = ["FifoGate", "expected_wait_s", "refuse_if_overloaded"]


def expected_wait_s(in_flight_workload: float, max_perf: float) -> float:
    """Seconds until the work in flight is done, at the measured tokens/s (0 when unknown)."""
    return in_flight_workload / max_perf if max_perf > 0 else 0.0


def refuse_if_overloaded(in_flight_workload: float, max_perf: float, max_queue_s: float) -> None:
    """Raise Overloaded (429) when a new request would wait longer than `max_queue_s`."""
    wait = expected_wait_s(in_flight_workload, max_perf)
    if wait > max_queue_s:
        retry_after = max(1, math.ceil(wait - max_queue_s))
        raise Overloaded(
            f"expected wait {wait:.1f}s is over this worker's {max_queue_s:g}s limit: "
            "route again or retry later",
            retry_after_s=retry_after,
        )


class FifoGate:
    """A concurrency cap whose waiters are served strictly in arrival order.

    A released slot is handed to the oldest waiter directly, so no late arrival can overtake
    it; a waiter that is cancelled leaves the queue, or passes its slot on if it had one.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the concurrency cap must be at least 1")
        self._limit = limit
        self._active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def active(self) -> int:
        return self._active

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def set_limit(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the concurrency cap must be at least 1")
        self._limit = limit
        while self._active < self._limit and self._grant_next():
            self._active += 1

    async def acquire(self) -> None:
        if self._active < self._limit and not self._waiters:
            self._active += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # granted just as we were cancelled: pass the slot on
            else:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        if not self._grant_next():
            self._active -= 1

    def _grant_next(self) -> bool:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return True
        return False

    async def __aenter__(self) -> FifoGate:
        await self.acquire()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()
