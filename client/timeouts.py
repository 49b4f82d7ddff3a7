"""How long each phase of a request may take: asking the router, connecting to the worker,
waiting for the first byte of its answer, and waiting between two reads of a stream."""

from __future__ import annotations

import math
from dataclasses import dataclass

import aiohttp

__all__ = ["Timeouts"]


@dataclass(frozen=True)
class Timeouts:
    """Seconds per phase; None means no limit for that phase.

    `route` bounds one `/route/` call (polling while the endpoint scales from zero is bounded by
    `PollPolicy.timeout` instead); `connect` bounds opening a connection to a worker; `first_byte`
    bounds the wait from sending a request until its answer starts (the backend's queue and prefill
    are in there); `idle` bounds each silence while a body or token stream is being read.
    """

    route: float | None = 30.0
    connect: float | None = 10.0
    first_byte: float | None = 300.0
    idle: float | None = 120.0

    def __post_init__(self) -> None:
        for name in ("route", "connect", "first_byte", "idle"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"Timeouts.{name} must be a positive number or None")

    @classmethod
    def uniform(cls, seconds: float | None) -> Timeouts:
        """The same limit for every phase."""
        return cls(route=seconds, connect=seconds, first_byte=seconds, idle=seconds)

    def router_timeout(self) -> aiohttp.ClientTimeout:
        """aiohttp's limits for one `/route/` exchange."""
        return aiohttp.ClientTimeout(total=self.route, sock_connect=self.connect)

    def worker_timeout(self) -> aiohttp.ClientTimeout:
        """aiohttp's limits for a worker exchange: only connecting; the first-byte and idle limits
        are enforced around the reads themselves (see `client._http`)."""
        return aiohttp.ClientTimeout(total=None, sock_connect=self.connect, sock_read=None)
