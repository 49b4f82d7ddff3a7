"""Demand as the router sees it: route requests (tokens, count) and requests waiting with no
worker. The router's /route/ handler records; the autoscaler loop takes the counts each tick
and is woken at once when a request starts waiting (scale from zero)."""

from __future__ import annotations

import asyncio

__all__ = ["DemandSignal"]


class DemandSignal:
    def __init__(self) -> None:
        self.arrived_tokens = 0.0
        self.arrived_requests = 0
        self.waiting_tokens = 0.0
        self.waiting_requests = 0
        self.wake = asyncio.Event()

    def arrived(self, cost: float) -> None:
        self.arrived_tokens += cost
        self.arrived_requests += 1

    def waiting_started(self, cost: float) -> None:
        self.waiting_tokens += cost
        self.waiting_requests += 1
        self.wake.set()

    def waiting_ended(self, cost: float) -> None:
        self.waiting_tokens = max(0.0, self.waiting_tokens - cost)
        self.waiting_requests = max(0, self.waiting_requests - 1)

    def take_arrivals(self) -> tuple[float, int]:
        """Arrivals since the last call."""
        counts = (self.arrived_tokens, self.arrived_requests)
        self.arrived_tokens, self.arrived_requests = 0.0, 0
        return counts
