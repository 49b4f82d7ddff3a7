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
        self._tokens = 0.0  # decayed sum of the samples' tokens
        self._serving_s = 0.0  # decayed sum of their serving time
        self._evidence_s = 0.0  # saturated serving time seen since the start (not decayed)

    def start_from(self, startup_perf: float, saturation_requests: int) -> None:
        """A new start-up benchmark: its figure, and the concurrency from which the backend
        counts as saturated. Forgets what was measured before (the backend may have changed)."""
        if startup_perf < 0 or not math.isfinite(startup_perf):
            raise ValueError(f"startup_perf must be a finite number >= 0, not {startup_perf}")
        self.startup_perf = startup_perf
        self.saturation_requests = max(1, saturation_requests)
        self._tokens = self._serving_s = self._evidence_s = 0.0

    def observe(self, served: ServedRequest) -> None:
        """Take one finished request into account (ignored unless it ran at saturation)."""
        if served.tokens <= 0 or served.duration_s <= 0:
            return
        if served.mean_in_flight < self.saturation_requests * _ROUNDING:
            return
        share = served.serving_s
        keep = math.exp(-share / self._time_constant_s)
        self._tokens = self._tokens * keep + served.tokens
        self._serving_s = self._serving_s * keep + share
        self._evidence_s += share

    @property
    def live_perf(self) -> float | None:
        """Tokens/s measured while serving; None until `min_evidence_s` of saturated serving."""
        if self._evidence_s < self._min_evidence_s or self._serving_s <= 0:
            return None
        return self._tokens / self._serving_s

    @property
    def max_perf(self) -> float:
        """The figure to route and scale on: the live one once measured, else the start-up one."""
        live = self.live_perf
        return self.startup_perf if live is None else live
