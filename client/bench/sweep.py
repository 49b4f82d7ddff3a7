"""The sweep policy, pure: from one request at a time to saturation, stopping by itself.

Step 0 is a closed loop with one user: its request rate is the baseline. Then open-loop steps
at baseline x factor^k. A step is overloaded when the target completed clearly less than it was
offered, when failures (429/503 included) passed `max_failure_share` (at least `min_failures`
of them), or when median TTFT grew past `ttft_growth` times the baseline's (a queue is
building). The sweep stops after the first overloaded step, or after `max_steps`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from client.bench.summary import Figures

__all__ = ["SweepPolicy", "overload_reasons"]


@dataclass(frozen=True)
class SweepPolicy:
    factor: float = 2.0
    max_steps: int = 8
    min_completion: float = 0.8
    max_failure_share: float = 0.05
    min_failures: int = 2
    """A single failed request in a short step is not yet a trend."""
    ttft_growth: float = 5.0

    def rate(self, baseline_rate: float, step: int) -> float:
        """The open-loop rate of step `step` (1-based)."""
        return baseline_rate * self.factor ** (step - 1)


def overload_reasons(
    figures: Figures, offered_rate: float, baseline_ttft_ms: float, policy: SweepPolicy
) -> list[str]:
    """Why a step's figures show the target overloaded; empty when it kept up."""
    reasons = []
    completed = figures.throughput.requests_per_s
    if completed < policy.min_completion * offered_rate:
        reasons.append(f"completed {completed:.2f} req/s of {offered_rate:.2f} offered")
    counts = figures.requests
    failures = counts.total - counts.ok
    if failures >= policy.min_failures and failures / counts.total > policy.max_failure_share:
        reasons.append(f"{failures} of {counts.total} requests failed")
    ttft = figures.ttft.p50_ms
    limit = policy.ttft_growth * baseline_ttft_ms
    if ttft is not None and math.isfinite(limit) and ttft > limit:
        reasons.append(f"median TTFT {ttft:.0f} ms > {policy.ttft_growth:g}x baseline")
    return reasons
