"""The figures of a run, from its records: pure functions, no I/O.

Latency percentiles use the requests whose intended start lies in the measurement window
(warm-up and cool-down excluded); TTFT, inter-token and end-to-end latency come from successful
requests; every failed request still counts against goodput and SLO attainment. Request
throughput counts successes that ended in the window, and goodput those of them that met every
SLO (so goodput never exceeds throughput); SLO attainment is the share of the requests meant to
start in the window that succeeded within every SLO. Token throughput counts the tokens that
arrived in the window. 429/503 answers are counted apart from other failures.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from client.bench.records import RequestRecord
from client.bench.summary import (
    Figures,
    Goodput,
    Latency,
    RequestCounts,
    SloBounds,
    Throughput,
    TokenCounts,
)

__all__ = ["PERCENTILES", "Slo", "Window", "latency_summary", "percentile", "summarize"]

PERCENTILES = (50, 90, 95, 99)


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile with linear interpolation between closest ranks; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_summary(values: Sequence[float]) -> Latency:
    """Milliseconds: mean and p50/p90/p95/p99 (None when there are no values), and the count."""
    if not values:
        return Latency(count=0, mean_ms=None, p50_ms=None, p90_ms=None, p95_ms=None, p99_ms=None)
    p50, p90, p95, p99 = (round(1000 * percentile(values, p), 3) for p in PERCENTILES)
    mean = round(1000 * sum(values) / len(values), 3)
    return Latency(count=len(values), mean_ms=mean, p50_ms=p50, p90_ms=p90, p95_ms=p95, p99_ms=p99)


@dataclass(frozen=True)
class Window:
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return max(self.end - self.start, 1e-9)

    def holds(self, t: float | None) -> bool:
        return t is not None and self.start <= t < self.end


@dataclass(frozen=True)
class Slo:
    """Upper bounds in seconds; None means no bound."""

    ttft: float | None = None
    itl: float | None = None
    e2e: float | None = None

    def met_by(self, record: RequestRecord) -> bool:
        if record.outcome != "ok":
            return False
        worst_gap = max(record.gaps(), default=0.0)
        checks = ((self.ttft, record.ttft), (self.itl, worst_gap), (self.e2e, record.e2e))
        return all(bound is None or (v is not None and v <= bound) for bound, v in checks)

    def bounds(self) -> SloBounds:
        """The bounds in milliseconds, as the summary shows them."""
        return SloBounds(ttft_ms=_ms(self.ttft), itl_ms=_ms(self.itl), e2e_ms=_ms(self.e2e))


def summarize(records: Sequence[RequestRecord], window: Window, slo: Slo) -> Figures:
    measured = [r for r in records if window.holds(r.intended)]
    ok = [r for r in measured if r.outcome == "ok"]
    ttft = [r.ttft for r in ok if r.ttft is not None]
    e2e = [r.e2e for r in ok if r.e2e is not None]
    gaps = [gap for r in ok for gap in r.gaps()]
    tpot = [t for r in ok if (t := r.tpot()) is not None]
    dispatch = [d for r in measured if (d := r.dispatch_delay) is not None]
    routes = [t for r in measured if (t := r.route_time) is not None]
    headers = [t for r in measured if (t := r.time_to_headers) is not None]
    good = [r for r in measured if slo.met_by(r)]
    ended_ok = [r for r in records if r.outcome == "ok" and window.holds(r.end)]
    ended_good = sum(1 for r in ended_ok if slo.met_by(r))
    tokens = sum(1 for r in records for t in r.tokens if window.holds(t))
    server_tokens = [r.output_tokens for r in ok if r.output_tokens is not None]
    return Figures(
        window_s=round(window.seconds, 3),
        requests=_counts(measured),
        ttft=latency_summary(ttft),
        itl=latency_summary(gaps),
        tpot=latency_summary(tpot),
        e2e=latency_summary(e2e),
        dispatch_delay=latency_summary(dispatch),
        route_time=latency_summary(routes),
        time_to_headers=latency_summary(headers),
        throughput=Throughput(
            requests_per_s=round(len(ended_ok) / window.seconds, 3),
            output_tokens_per_s=round(tokens / window.seconds, 3),
            sent_per_s=round(len(dispatch) / window.seconds, 3),
        ),
        tokens=TokenCounts(
            server_counted=len(server_tokens),
            events_counted=len(ok) - len(server_tokens),
            mean_output_tokens=_mean(server_tokens),
        ),
        goodput=Goodput(
            slo=slo.bounds(),
            requests_per_s=round(ended_good / window.seconds, 3),
            attainment=round(len(good) / len(measured), 4) if measured else None,
        ),
    )


def _counts(measured: Sequence[RequestRecord]) -> RequestCounts:
    outcomes = Counter(r.outcome for r in measured)
    statuses = Counter(str(r.status) for r in measured if r.outcome != "ok")
    return RequestCounts(
        total=len(measured),
        ok=outcomes["ok"],
        overloaded=outcomes["overloaded"],
        failed=len(measured) - outcomes["ok"] - outcomes["overloaded"],
        by_outcome=dict(sorted(outcomes.items())),
        failed_by_status=dict(sorted(statuses.items())),
    )


def _mean(values: Sequence[int]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000
