"""How many tokens per second this worker can serve: measured at start-up, then while serving.

The start-up benchmark gives a first figure (`startup_perf`). It is one short measurement, taken
while other workers on the same machine may be benchmarking too, so it can be far off. From then
on every request the worker serves is a sample of what its backend sustains, and the figure it
reports (`max_perf`) becomes the live one as soon as enough of them back it.

Only requests served at saturation count: those during which, on average, at least
`saturation_requests` requests were in flight (queued or relayed), so that throughput was
limited by capacity and not by demand. A request that generated `tokens` in `duration_s` with
`mean_in_flight` requests beside it (itself included) held a `duration_s / mean_in_flight` share
of the serving time; the estimate is the tokens served over the serving time they took:

    live_perf = sum(tokens) / sum(duration_s / mean_in_flight)

with older samples weighing less, exponentially in serving time (not wall time: an idle worker
keeps its figure). Requests that ran side by side for a span split it among them, so a span of
`L` seconds at a steady concurrency counts `L` seconds, and the estimate is exactly the tokens
generated in it over `L`. It always lies between the smallest and the largest sample's own
throughput (`tokens * mean_in_flight / duration_s`, Little's law).

Serving below saturation says less, but not nothing: what the worker served is a floor under
what it can serve. A start-up figure that is far too low would otherwise stay forever, because
the router sends a worker load in proportion to its figure, so an underrated worker is never
saturated. Every request therefore also feeds a second estimate of the same form over all
samples (`demonstrated_perf`), and the reported figure is never below it.

Pure: no clock, no I/O. The caller (`pyworker.load.LoadTracker`) measures durations and
concurrency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["CapacityEstimator", "ServedRequest"]

_ROUNDING = 1 - 1e-9
"""A mean concurrency computed as exactly the threshold may come out a hair below it."""


@dataclass(frozen=True)
class ServedRequest:
    """One request, from its admission to its last byte."""

    tokens: float
    """Tokens it generated."""
    duration_s: float
    mean_in_flight: float
    """Requests in flight on the worker during it, on average over its duration (itself
    included, so at least 1)."""

    @property
    def serving_s(self) -> float:
        """Its share of the serving time: the time it ran, split among those it ran beside."""
        return self.duration_s / self.mean_in_flight

    @property
    def throughput(self) -> float:
        """What the worker served while it ran, by Little's law: its rate times the requests
        that progressed beside it."""
        return self.tokens / self.serving_s


class CapacityEstimator:
    """The worker's capacity in tokens/s: the start-up figure until serving has measured it.

    `time_constant_s` is how much serving time the live figure remembers (a sample that much
    serving time old weighs 1/e of a new one); `min_evidence_s` is how much saturated serving
    time must back the live figure before it replaces the start-up one."""

    def __init__(self, *, time_constant_s: float = 20.0, min_evidence_s: float = 3.0) -> None:
        if time_constant_s <= 0 or min_evidence_s <= 0:
            raise ValueError("time_constant_s and min_evidence_s must be > 0")
        self._time_constant_s = time_constant_s
        self._min_evidence_s = min_evidence_s
        self.startup_perf = 0.0
        self.saturation_requests = 1
        self._saturated = _Served()  # the samples taken at saturation: the live figure
        self._served = _Served()  # every sample, saturated or not: the demonstrated floor

    def start_from(self, startup_perf: float, saturation_requests: int) -> None:
        """A new start-up benchmark: its figure, and the concurrency from which the backend
        counts as saturated. Forgets what was measured before (the backend may have changed)."""
        if startup_perf < 0 or not math.isfinite(startup_perf):
            raise ValueError(f"startup_perf must be a finite number >= 0, not {startup_perf}")
        self.startup_perf = startup_perf
        self.saturation_requests = max(1, saturation_requests)
        self._saturated, self._served = _Served(), _Served()

    def observe(self, served: ServedRequest) -> None:
        """Take one finished request into account: every one raises the demonstrated floor, those
        that ran at saturation also teach the live figure."""
        if served.tokens <= 0 or served.duration_s <= 0:
            return
        self._served.add(served, self._time_constant_s)
        if served.mean_in_flight < self.saturation_requests * _ROUNDING:
            return
        self._saturated.add(served, self._time_constant_s)

    @property
    def live_perf(self) -> float | None:
        """Tokens/s measured while serving; None until `min_evidence_s` of saturated serving."""
        return self._saturated.perf(self._min_evidence_s)

    @property
    def demonstrated_perf(self) -> float | None:
        """Tokens/s served over every request, at whatever concurrency came: a floor under the
        capacity; None until `min_evidence_s` of serving."""
        return self._served.perf(self._min_evidence_s)

    @property
    def max_perf(self) -> float:
        """The figure to route and scale on: the live one once measured, else the start-up one,
        and never below what serving has demonstrated."""
        live = self.live_perf
        figure = self.startup_perf if live is None else live
        return max(figure, self.demonstrated_perf or 0.0)


@dataclass
class _Served:
    """Sums over samples, older ones decayed exponentially in serving time."""

    tokens: float = 0.0
    serving_s: float = 0.0
    evidence_s: float = 0.0
    """Serving time seen since the start, not decayed."""

    def add(self, served: ServedRequest, time_constant_s: float) -> None:
        share = served.serving_s
        keep = math.exp(-share / time_constant_s)
        self.tokens = self.tokens * keep + served.tokens
        self.serving_s = self.serving_s * keep + share
        self.evidence_s += share

    def perf(self, min_evidence_s: float) -> float | None:
        if self.evidence_s < min_evidence_s or self.serving_s <= 0:
            return None
        return self.tokens / self.serving_s
