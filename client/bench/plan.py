"""A load plan (what to send, when) and how it splits across client processes. Pure."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Literal

from client.bench.arrivals import Phase, schedule

__all__ = ["LoadPlan"]


@dataclass(frozen=True)
class LoadPlan:
    """`open`: arrivals per `phases`; `closed`: `users` back to back for `seconds`;
    `cold`: one request alone first (scale from zero), then the open-loop phases."""

    kind: Literal["open", "closed", "cold"]
    phases: tuple[Phase, ...] = ()
    burstiness: float = 1.0
    users: int = 1
    seconds: float = 0.0
    seed: int = 0
    ramp: float = 0.0
    """Closed loops: seconds over which the users start, evenly spread."""
    arrivals: tuple[float, ...] = ()
    """Open loops: given arrival times (a replayed trace) instead of drawn ones."""

    @property
    def duration(self) -> float:
        return self.seconds if self.kind == "closed" else sum(p.seconds for p in self.phases)

    def phase_windows(self) -> list[tuple[float, float]]:
        """(start, end) of each phase on the run's clock (one window for closed loops)."""
        if self.kind == "closed":
            return [(0.0, self.seconds)]
        windows, start = [], 0.0
        for phase in self.phases:
            windows.append((start, start + phase.seconds))
            start += phase.seconds
        return windows

    def offsets(self, rng: random.Random) -> list[float]:
        if self.arrivals:
            return list(self.arrivals)
        return schedule(self.phases, self.burstiness, rng)

    def shard(self, index: int, count: int) -> LoadPlan:
        """This process's part of the plan when `count` processes share it."""
        seed = self.seed * 1000 + index
        if self.kind == "closed":
            users = self.users // count + (1 if index < self.users % count else 0)
            return replace(self, users=users, seed=seed)
        phases = tuple(Phase(p.rate / count, p.seconds) for p in self.phases)
        return replace(self, phases=phases, seed=seed, arrivals=self.arrivals[index::count])
