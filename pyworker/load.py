"""Load accounting: what this worker has in flight, and what it served recently.

Every admitted request is counted in with `begin()` and out with exactly one `finish()`, on
every exit path (success, error, cancellation), so counters cannot leak. `RequestSlot` as a
context manager guarantees that.

The tracker also counts the requests being served, from when one passes the relay's gate
(`start_serving()`) to its end, and keeps two integrals over time: `serving_seconds` (requests
at the backend) and `request_seconds` (requests in flight, queued ones too). From them each
finished request knows how many were served beside it on average (a request queued in front of
the relay's limit makes no progress, so it is not counted beside) and whether demand kept the
worker saturated meanwhile; that, its serving time and its tokens are what `capacity` (the live
`max_perf`) learns from.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from types import TracebackType

from pyworker.capacity import CapacityEstimator, ServedRequest

__all__ = ["LoadTracker", "Outcome", "RequestSlot", "Serving"]


class Outcome(Enum):
    SUCCESS = "success"
    ERROR = "error"  # the backend failed or answered 5xx
    CANCELLED = "cancelled"  # the client went away


@dataclass(frozen=True)
class Serving:
    """When a request reached the backend: the tracker's clock, `serving_seconds` and
    `request_seconds` then."""

    at: float
    serving_seconds: float
    request_seconds: float


@dataclass
class LoadTracker:
    clock: Callable[[], float]
    perf_window_s: float = 30.0
    in_flight_workload: float = 0.0
    requests_working: int = 0
    requests_serving: int = 0  # of requests_working, those past the relay's gate
    requests_received: int = 0
    outcomes: Counter[Outcome] = field(default_factory=Counter)
    tokens_served_total: float = 0.0  # every request's tokens_served, since start
    idle: asyncio.Event = field(default_factory=asyncio.Event)  # set while nothing is in flight
    capacity: CapacityEstimator = field(default_factory=CapacityEstimator)
    _served: deque[tuple[float, float]] = field(default_factory=deque)
    _serving_seconds: float = 0.0  # the integral of requests_serving, up to _counted_at
    _request_seconds: float = 0.0  # the integral of requests_working, up to _counted_at
    _counted_at: float = 0.0

    def __post_init__(self) -> None:
        self.idle.set()
        self._counted_at = self.clock()

    def begin(self, workload: float) -> None:
        """Count a request in. A workload that has no float (OverflowError) changes nothing."""
        in_flight = self.in_flight_workload + float(workload)
        self._advance()
        self.idle.clear()
        self.in_flight_workload = in_flight
        self.requests_working += 1
        self.requests_received += 1

    def start_serving(self) -> Serving:
        """Count a request in (`begin()`) as reaching the backend now."""
        now = self._advance()
        self.requests_serving += 1
        return Serving(now, self._serving_seconds, self._request_seconds)

    def finish(
        self,
        workload: float,
        outcome: Outcome,
        tokens_served: float = 0.0,
        serving: Serving | None = None,
    ) -> None:
        """Count a request out; one that reached the backend (`serving`, from `start_serving()`)
        is counted out of it too, and its tokens teach `capacity`."""
        now = self._advance()
        if serving is not None:
            self.requests_serving = max(0, self.requests_serving - 1)
        self.in_flight_workload = max(0.0, self.in_flight_workload - workload)
        self.requests_working = max(0, self.requests_working - 1)
        if self.requests_working == 0:
            self.in_flight_workload = 0.0  # no float residue once idle
            self.idle.set()
        self.outcomes[outcome] += 1
        if tokens_served > 0:
            self.tokens_served_total += tokens_served
            self._served.append((now, tokens_served))
            if serving is not None:
                self._learn(tokens_served, serving, now)

    @property
    def request_seconds(self) -> float:
        """The integral over time of the requests in flight, since the tracker was made."""
        return self._request_seconds + self.requests_working * (self.clock() - self._counted_at)

    @property
    def serving_seconds(self) -> float:
        """The integral over time of the requests at the backend, since the tracker was made."""
        return self._serving_seconds + self.requests_serving * (self.clock() - self._counted_at)

    def _advance(self) -> float:
        now = self.clock()
        elapsed = max(0.0, now - self._counted_at)
        self._serving_seconds += self.requests_serving * elapsed
        self._request_seconds += self.requests_working * elapsed
        self._counted_at = now
        return now

    def _learn(self, tokens: float, serving: Serving, now: float) -> None:
        duration = now - serving.at
        if duration <= 0:
            return
        mean_served = max(1.0, (self._serving_seconds - serving.serving_seconds) / duration)
        mean_in_flight = (self._request_seconds - serving.request_seconds) / duration
        served = ServedRequest(tokens, duration, mean_served, max(mean_served, mean_in_flight))
        self.capacity.observe(served)

    def recent_perf(self) -> float:
        """Tokens per second served over the last `perf_window_s`."""
        horizon = self.clock() - self.perf_window_s
        while self._served and self._served[0][0] < horizon:
            self._served.popleft()
        return sum(tokens for _, tokens in self._served) / self.perf_window_s

    def slot(self, workload: float) -> RequestSlot:
        return RequestSlot(self, workload)


class RequestSlot:
    """Counts one request in flight for the duration of a `with` block.

    The outcome defaults to ERROR on an exception, CANCELLED on cancellation, else SUCCESS;
    the handler may set `outcome` and `tokens_served` explicitly before leaving the block.
    """

    def __init__(self, tracker: LoadTracker, workload: float) -> None:
        self._tracker = tracker
        self._workload = workload
        self.outcome: Outcome | None = None
        self.tokens_served = 0.0
        self.started_at = time.perf_counter()
        self.first_byte_at: float | None = None  # when the backend's answer began
        self.relay_error: str | None = None  # what went wrong mid-relay, for the metrics
        self._serving: Serving | None = None

    def __enter__(self) -> RequestSlot:
        self._tracker.begin(self._workload)
        return self

    def start_serving(self) -> None:
        """The request passed the relay's gate: from now on it is at the backend."""
        if self._serving is None:
            self._serving = self._tracker.start_serving()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        outcome = self.outcome or _outcome_of(exc)
        self._tracker.finish(self._workload, outcome, self.tokens_served, self._serving)


def _outcome_of(exc: BaseException | None) -> Outcome:
    if exc is None:
        return Outcome.SUCCESS
    if isinstance(exc, asyncio.CancelledError | ConnectionResetError | GeneratorExit):
        return Outcome.CANCELLED
    return Outcome.ERROR
