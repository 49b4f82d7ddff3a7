"""When each request of an open-loop run is meant to start, as offsets in seconds from the start.

Inter-arrival gaps are gamma-distributed with shape `burstiness` and mean 1/rate: 1 is a Poisson
process, below 1 burstier, above 1 more regular, infinity evenly spaced. A phase's gaps are then
rescaled so that its arrivals span exactly count/rate seconds (as vLLM does): the achieved rate
over a phase is the asked one, whatever the seed. A schedule is a list of phases (rate, seconds),
so a step load or an idle-then-burst run is just several phases.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from client.bench.errors import BenchInputError

__all__ = ["MAX_RATE", "Phase", "parse_phases", "schedule"]

MAX_RATE = 100_000.0


@dataclass(frozen=True)
class Phase:
    """`rate` requests/s (0 = idle) for `seconds`."""

    rate: float
    seconds: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate) and 0 <= self.rate <= MAX_RATE):
            raise BenchInputError(f"a rate must be between 0 and {MAX_RATE:g} requests/s")
        if not (math.isfinite(self.seconds) and self.seconds > 0):
            raise BenchInputError("a phase must last more than 0 seconds")


def parse_phases(text: str) -> tuple[Phase, ...]:
    """Phases from "RATE:SECONDS,RATE:SECONDS,..." (for example "0:30,20:10")."""
    phases = []
    for item in text.split(","):
        rate, _, seconds = item.strip().partition(":")
        try:
            phases.append(Phase(float(rate), float(seconds)))
        except ValueError:
            raise BenchInputError(
                f"phase {item.strip()!r} is not RATE:SECONDS (for example 5:30)"
            ) from None
    return tuple(phases)


def schedule(phases: Sequence[Phase], burstiness: float, rng: random.Random) -> list[float]:
    """Intended start offsets (seconds, sorted) for all phases, one after the other."""
    if not (burstiness > 0 and not math.isnan(burstiness)):
        raise BenchInputError("burstiness must be a number > 0 (1 = Poisson, inf = even)")
    offsets: list[float] = []
    start = 0.0
    for phase in phases:
        offsets.extend(start + t for t in _phase_offsets(phase, burstiness, rng))
        start += phase.seconds
    return offsets


def _phase_offsets(phase: Phase, burstiness: float, rng: random.Random) -> list[float]:
    count = math.floor(phase.rate * phase.seconds)
    if count == 0:
        return []
    if math.isinf(burstiness):
        gaps = [1.0] * count
    else:
        gaps = [rng.gammavariate(burstiness, 1.0 / burstiness) for _ in range(count)]
    scale = (count / phase.rate) / sum(gaps)
    offsets, t = [], 0.0
    for gap in gaps:
        offsets.append(t)
        t += gap * scale
    return offsets
