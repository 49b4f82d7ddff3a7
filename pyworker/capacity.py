"""How many tokens per second this worker can serve: measured at start-up, then while serving.

The start-up benchmark gives a first figure (`startup_perf`). It is one short measurement, taken
while other workers on the same machine may be benchmarking too, so it can be far off. From then
on every request the worker serves is a sample of what its backend sustains, and the figure it
reports (`max_perf`) becomes the live one as soon as enough of them back it.

A sample is a request from when it reached the backend (past the relay's limit) to its last
byte: it generated `tokens` in `duration_s`, with `mean_served` requests at the backend beside it
on average (itself included). It held a `duration_s / mean_served` share of the serving time, and
the live figure is the tokens served over the serving time they took:

    live_perf = sum(tokens) / sum(duration_s / mean_served)

with older samples weighing less, exponentially in serving time (busy wall time: an idle worker
keeps its figure). Requests that ran side by side for a span split it among them, so a span of
`L` seconds at a steady concurrency counts `L` seconds, and the estimate is exactly the tokens
generated in it over `L`. It always lies between the smallest and the largest sample's own
throughput (`tokens * mean_served / duration_s`, Little's law). Requests queued in front of the
relay's limit are not counted beside: they make no progress, and a queue that builds up would
otherwise read as throughput.

Only requests served at saturation teach the live figure: those during which, on average, at
least `saturation_requests` requests were in flight on the worker (`mean_in_flight`, queued ones
included), so that throughput was limited by capacity and not by demand.

Serving below saturation says less, but it must still count: the router sends a worker load in
proportion to its figure, so a worker whose figure is too low draws too little load to saturate
it, and with saturated samples alone its figure would stay low for good (seen: 350 and 91
tokens/s for two identical workers after 30 s of load). So every request also feeds a second
estimate (`extrapolated_perf`), of the same form over all samples, in which a request that ran
below saturation counts its tokens scaled up to it:

    extrapolated_perf = sum(tokens * max(1, saturation_requests / mean_served))
                        / sum(duration_s / mean_served)

that is, what the worker would have served had each request kept its speed beside enough others
to saturate it. A batching backend slows each request as the batch grows, so below saturation
this is an over-estimate, and the reported figure is never below it. The error is the safe one:
an over-rated worker draws load, saturates, and its saturated samples (in both sums) bring the
extrapolation down to the live figure, while an under-rated one is lifted by what it serves. Both
sums decay with the same serving time, so a starved worker's figure moves as fast as a busy one's.

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
    """One request, from when it reached the backend to its last byte."""

    tokens: float
    """Tokens it generated."""
    duration_s: float
    mean_served: float
    """Requests at the backend during it, on average over its duration (itself included, so at
    least 1)."""
    mean_in_flight: float
    """Requests in flight on the worker during it, queued ones included (at least
    `mean_served`): above the backend's saturation, demand exceeded what it could take."""

    @property
    def serving_s(self) -> float:
        """Its share of the serving time: the time it ran, split among those it ran beside."""
        return self.duration_s / self.mean_served

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
        self._extrapolated = _Served()  # every sample, scaled up to saturation: the floor

    def start_from(self, startup_perf: float, saturation_requests: int) -> None:
        """A new start-up benchmark: its figure, and the concurrency from which the backend
        counts as saturated. Forgets what was measured before (the backend may have changed)."""
        if startup_perf < 0 or not math.isfinite(startup_perf):
            raise ValueError(f"startup_perf must be a finite number >= 0, not {startup_perf}")
        self.startup_perf = startup_perf
        self.saturation_requests = max(1, saturation_requests)
        self._saturated, self._extrapolated = _Served(), _Served()

    def observe(self, served: ServedRequest) -> None:
        """Take one finished request into account: every one feeds the extrapolated floor, those
        that ran at saturation also teach the live figure."""
        if served.tokens <= 0 or served.duration_s <= 0:
            return
        if served.mean_in_flight >= self.saturation_requests * _ROUNDING:
            self._extrapolated.add(served, self._time_constant_s)
            self._saturated.add(served, self._time_constant_s)
            return
        scale = max(1.0, self.saturation_requests / served.mean_served)
        self._extrapolated.add(served, self._time_constant_s, scale)

    @property
    def live_perf(self) -> float | None:
        """Tokens/s measured while serving; None until `min_evidence_s` of saturated serving."""
        return self._saturated.perf(self._min_evidence_s)

    @property
    def extrapolated_perf(self) -> float | None:
        """Tokens/s over every request, those below saturation scaled up to it: an over-estimate
        that keeps a starved worker's figure from staying low; None until `min_evidence_s` of
        serving."""
        return self._extrapolated.perf(self._min_evidence_s)

    @property
    def max_perf(self) -> float:
        """The figure to route and scale on: the live one once measured, else the start-up one,
        and never below the extrapolation of what serving has shown."""
        live = self.live_perf
        figure = self.startup_perf if live is None else live
        return max(figure, self.extrapolated_perf or 0.0)


@dataclass
class _Served:
    """Sums over samples, older ones decayed exponentially in serving time."""

    tokens: float = 0.0
    serving_s: float = 0.0
    evidence_s: float = 0.0
    """Serving time seen since the start, not decayed."""

    def add(self, served: ServedRequest, time_constant_s: float, scale: float = 1.0) -> None:
        share = served.serving_s
        keep = math.exp(-share / time_constant_s)
        self.tokens = self.tokens * keep + served.tokens * scale
        self.serving_s = self.serving_s * keep + share
        self.evidence_s += share

    def perf(self, min_evidence_s: float) -> float | None:
        if self.evidence_s < min_evidence_s or self.serving_s <= 0:
            return None
        return self.tokens / self.serving_s
