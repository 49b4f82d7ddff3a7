"""Synthetic traces: steady, diurnal, bursty on/off and spike-from-zero Poisson arrivals.

Deterministic for a seed. Token counts are log-normal (clipped), roughly like chat traffic.
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Callable
from pathlib import Path

from common.trace import COLUMNS

__all__ = ["SHAPES", "synthesise", "write_trace"]

RateFn = Callable[[float], float]


def _steady(t: float) -> float:
    return 4.0


def _diurnal(t: float) -> float:
    """One compressed 'day' per hour: from 0.5 to 8 requests/s and back."""
    return 0.5 + 7.5 * (1 - math.cos(2 * math.pi * t / 3600.0)) / 2


def _bursty(t: float) -> float:
    """60 s on at 12 requests/s, then 240 s nearly off."""
    return 12.0 if t % 300.0 < 60.0 else 0.2


def _spike(t: float) -> float:
    """Silence, then a sudden spike, a tail, silence again, and a second spike."""
    if 600.0 <= t < 630.0 or 2400.0 <= t < 2430.0:
        return 16.0
    if 630.0 <= t < 900.0:
        return 2.0
    return 0.0


SHAPES: dict[str, tuple[RateFn, float, float]] = {
    # name: (requests/s at t, duration s, the largest rate, for thinning)
    "steady": (_steady, 1800.0, 4.0),
    "diurnal": (_diurnal, 3600.0, 8.0),
    "bursty": (_bursty, 1800.0, 12.0),
    "spike": (_spike, 3000.0, 16.0),
}


def synthesise(shape: str, seed: int = 7) -> list[tuple[float, int, int]]:
    """(arrival_s, input_tokens, output_tokens) rows of a non-homogeneous Poisson process."""
    rate, duration, peak = SHAPES[shape]
    rng = random.Random(seed)
    rows: list[tuple[float, int, int]] = []
    t = 0.0
    while True:
        t += rng.expovariate(peak)
        if t >= duration:
            return rows
        if rng.random() * peak < rate(t):
            rows.append((round(t, 3), _tokens(rng, 6.0, 1.0, 8000), _tokens(rng, 4.9, 0.8, 1000)))


def _tokens(rng: random.Random, mu: float, sigma: float, cap: int) -> int:
    return max(1, min(cap, round(rng.lognormvariate(mu, sigma))))


def write_trace(path: Path, rows: list[tuple[float, int, int]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows)
