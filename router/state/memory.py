"""`SharedState` in one process: several routers in one test share it as they would share
Redis. Nothing expires on its own: `now` (injected) decides what has."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from router.state.shared import Exchange, Resources, SeenReport

__all__ = ["MemoryState"]


class MemoryState:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._counters: dict[str, int] = {}
        self._reports: dict[str, tuple[SeenReport, float]] = {}
        self._loads: dict[str, tuple[dict[str, float], float]] = {}
        self._ring: bytes | None = None
        self._ring_version = 0
        self._endpoints: dict[str, bytes] = {}
        self._groups: dict[str, bytes] = {}
        self._resources_version = 0
        self._leases: dict[str, tuple[str, float]] = {}

    async def reserve_reqnums(self, sizes: Mapping[str, int], floor: int) -> dict[str, int]:
        reserved = {}
        for worker_id, size in sizes.items():
            last = self._counters.get(worker_id, floor) + size
            self._counters[worker_id] = reserved[worker_id] = last
        return reserved

    async def exchange(
        self,
        router: str,
        reports: Mapping[str, SeenReport],
        loads: Mapping[str, float],
        *,
        report_ttl_s: float,
        load_ttl_s: float,
    ) -> Exchange:
        now = self._clock()
        for worker_id, seen in reports.items():
            self._reports[worker_id] = (seen, now + report_ttl_s)
        self._loads[router] = (dict(loads), now + load_ttl_s)
        others: dict[str, float] = {}
        for other, (other_loads, until) in self._loads.items():
            if other != router and until > now:
                for worker_id, load in other_loads.items():
                    others[worker_id] = others.get(worker_id, 0.0) + load
        current = {wid: seen for wid, (seen, until) in self._reports.items() if until > now}
        return Exchange(current, others, self._ring_version, self._resources_version)

    async def get_ring(self) -> tuple[int, bytes] | None:
        return None if self._ring is None else (self._ring_version, self._ring)

    async def put_ring(self, ring: bytes, *, only_if_absent: bool = False) -> bool:
        if only_if_absent and self._ring is not None:
            return False
        self._ring = ring
        self._ring_version += 1
        return True

    async def get_resources(self) -> Resources:
        return Resources(dict(self._endpoints), dict(self._groups), self._resources_version)

    async def put_resources(
        self,
        endpoints: Mapping[str, bytes | None],
        groups: Mapping[str, bytes | None],
        *,
        only_if_absent: bool = False,
    ) -> None:
        for stored, changes in ((self._endpoints, endpoints), (self._groups, groups)):
            for name, value in changes.items():
                if only_if_absent and name in stored:
                    continue
                if value is None:
                    stored.pop(name, None)
                else:
                    stored[name] = value
        self._resources_version += 1

    async def hold_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        now = self._clock()
        current = self._leases.get(name)
        if current is None or current[0] == holder or current[1] <= now:
            self._leases[name] = (holder, now + ttl_s)
            return True
        return False

    async def close(self) -> None:
        return None
