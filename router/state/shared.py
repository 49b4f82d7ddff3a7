"""The seam: what routers on one fleet must share, whatever holds it.

`SharedState` is the contract; `router.state.memory.MemoryState` keeps it in one process (tests,
and the shape of the default: a single router needs nothing shared), and
`router.state.redis_store.RedisState` keeps it in Redis for several routers. Values cross the
seam as bytes; the Redis store seals the secret ones (`router.state.sealing`). What each router
does with them (its registry, ring and endpoint store) is `router.state.sync`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol

__all__ = ["Exchange", "Resources", "SeenReport", "SharedState", "StateUnavailable"]


class StateUnavailable(Exception):
    """The shared store did not answer (it is away, or too slow): the caller keeps serving from
    memory, and tries again."""


@dataclass(frozen=True)
class SeenReport:
    """A worker's latest status report as one router took it in: the report's JSON, when (the
    router's clock) and which router."""

    router: str
    at: float
    report: bytes


class Exchange(NamedTuple):
    """What one router learns at each flush."""

    reports: dict[str, SeenReport]
    """The latest report of every worker some router heard from recently, by worker id."""
    loads: dict[str, float]
    """Per worker: the cost of the tickets the *other* routers count as in flight on it."""
    ring_version: int
    """Bumped by every write of the key ring (0: no ring stored)."""
    resources_version: int
    """Bumped by every write of endpoints or worker groups (0: none stored)."""


class Resources(NamedTuple):
    endpoints: dict[str, bytes]
    groups: dict[str, bytes]
    version: int


class SharedState(Protocol):
    """Every method raises StateUnavailable when the store does not answer in time."""

    async def reserve_reqnums(self, sizes: Mapping[str, int], floor: int) -> dict[str, int]:
        """Per worker id, the last number of a block of `sizes[id]` reqnums that no other
        caller ever gets: the block is `(last - size, last]`. A worker's counter starts at
        `floor` (now, in microseconds) when the store has none: a store that lost its data
        starts above every number issued before, as long as fewer than a million reqnums a
        second were reserved for the worker and the clocks did not go back."""
        ...

    async def exchange(
        self,
        router: str,
        reports: Mapping[str, SeenReport],
        loads: Mapping[str, float],
        *,
        report_ttl_s: float,
        load_ttl_s: float,
    ) -> Exchange:
        """Publish this router's new reports (each kept `report_ttl_s`) and its in-flight cost
        per worker (replacing its last, kept `load_ttl_s`: a router that dies stops counting),
        and take in what every router published."""
        ...

    async def get_ring(self) -> tuple[int, bytes] | None:
        """The stored key ring and its version, or None."""
        ...

    async def put_ring(self, ring: bytes, *, only_if_absent: bool = False) -> bool:
        """Store the key ring (bumping its version); with `only_if_absent`, only when none is
        stored. Whether it was stored."""
        ...

    async def get_resources(self) -> Resources:
        """Every stored endpoint and worker group, by name, and their version."""
        ...

    async def put_resources(
        self,
        endpoints: Mapping[str, bytes | None],
        groups: Mapping[str, bytes | None],
        *,
        only_if_absent: bool = False,
    ) -> None:
        """Store these endpoints and groups by name (None: delete it), bumping the version;
        with `only_if_absent`, only names not stored (a store that lost its data, refilled)."""
        ...

    async def hold_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        """Take the lease `name` for `ttl_s`, or renew it if `holder` holds it: whether
        `holder` holds it now. One holder at a time; it lapses unless renewed."""
        ...

    async def close(self) -> None: ...
