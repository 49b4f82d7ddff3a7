"""`bench compare A.json B.json`: is B worse than A beyond a threshold? Pure.

Latency percentiles regress when they grow, throughput and goodput when they shrink, both by
more than `threshold` (relative) and, for latencies, by more than `min_ms` (absolute, so that
sub-millisecond noise never fails a CI job).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from client.bench.summary import Figures

__all__ = ["METRICS", "Change", "Metric", "compare"]


@dataclass(frozen=True)
class Metric:
    name: str
    """As `bench compare` prints it: the summary's section and field."""
    read: Callable[[Figures], float | None]
    lower_is_better: bool


METRICS: tuple[Metric, ...] = (  # name, how to read it, lower is better
    Metric("ttft.p50_ms", lambda f: f.ttft.p50_ms, True),
    Metric("ttft.p99_ms", lambda f: f.ttft.p99_ms, True),
    Metric("itl.p50_ms", lambda f: f.itl.p50_ms, True),
    Metric("itl.p99_ms", lambda f: f.itl.p99_ms, True),
    Metric("e2e.p50_ms", lambda f: f.e2e.p50_ms, True),
    Metric("e2e.p99_ms", lambda f: f.e2e.p99_ms, True),
    Metric("throughput.requests_per_s", lambda f: f.throughput.requests_per_s, False),
    Metric("throughput.output_tokens_per_s", lambda f: f.throughput.output_tokens_per_s, False),
    Metric("goodput.requests_per_s", lambda f: f.goodput.requests_per_s, False),
)


@dataclass(frozen=True)
class Change:
    metric: str
    before: float | None
    after: float | None
    relative: float | None
    regression: bool

    def line(self) -> str:
        if self.before is None or self.after is None or self.relative is None:
            return f"  {self.metric:<34} {_fmt(self.before):>12} -> {_fmt(self.after):>12}  (n/a)"
        mark = "REGRESSION" if self.regression else ""
        return (
            f"  {self.metric:<34} {self.before:>12.3f} -> {self.after:>12.3f}  "
            f"{self.relative:+8.1%}  {mark}"
        )


def compare(before: Figures, after: Figures, threshold: float, min_ms: float = 1.0) -> list[Change]:
    """Each metric of `METRICS`, from the run `before` to the run `after`; a figure that one of
    them lacks (no request to measure) is no regression."""
    return [
        _change(
            metric.name,
            metric.read(before),
            metric.read(after),
            metric.lower_is_better,
            threshold,
            min_ms,
        )
        for metric in METRICS
    ]


def _change(
    metric: str,
    before: float | None,
    after: float | None,
    lower_better: bool,
    threshold: float,
    min_ms: float,
) -> Change:
    if before is None or after is None:
        return Change(metric, before, after, None, False)
    relative = (after - before) / before if before else (0.0 if after == before else float("inf"))
    worse = relative > threshold if lower_better else relative < -threshold
    if lower_better and abs(after - before) < min_ms:
        worse = False
    return Change(metric, before, after, relative, worse)


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"
