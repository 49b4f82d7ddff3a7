"""`bench compare A.json B.json`: is B worse than A beyond a threshold? Pure.

Latency percentiles regress when they grow, throughput and goodput when they shrink, both by
more than `threshold` (relative) and, for latencies, by more than `min_ms` (absolute, so that
sub-millisecond noise never fails a CI job).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["METRICS", "Change", "compare"]

METRICS: tuple[tuple[str, str, bool], ...] = (
    ("ttft", "p50_ms", True),
    ("ttft", "p99_ms", True),
    ("itl", "p50_ms", True),
    ("itl", "p99_ms", True),
    ("e2e", "p50_ms", True),
    ("e2e", "p99_ms", True),
    ("throughput", "requests_per_s", False),
    ("throughput", "output_tokens_per_s", False),
    ("goodput", "requests_per_s", False),
)
"""(section, field, lower is better)."""


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


def compare(
    a: dict[str, Any], b: dict[str, Any], threshold: float, min_ms: float = 1.0
) -> list[Change]:
    changes = []
    for section, name, lower_better in METRICS:
        before = _get(a, section, name)
        after = _get(b, section, name)
        changes.append(_change(f"{section}.{name}", before, after, lower_better, threshold, min_ms))
    return changes


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


def _get(document: dict[str, Any], section: str, name: str) -> float | None:
    value = document.get("summary", {}).get(section, {}).get(name)
    return float(value) if isinstance(value, int | float) else None


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"
