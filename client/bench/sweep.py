"""The sweep policy, pure: from one request at a time to saturation, stopping by itself.

Step 0 is a closed loop with one user: its request rate is the baseline. Then open-loop steps
at baseline x factor^k. A step is overloaded when the target completed clearly less than it was
offered, when failures (429/503 included) passed `max_failure_share` (at least `min_failures`
of them), or when median TTFT grew past `ttft_growth` times the baseline's (a queue is
building). The sweep stops after the first overloaded step, or after `max_steps`.

A doubling sweep knows the target's limit only within a factor of 2: it lies between the last
step that kept up and the first that did not. `refine` more steps halve that interval each (on a
log scale, at the geometric mean of its ends), so that the highest rate kept up (`sustained`) is
within a factor of `factor ** (1 / 2 ** refine)` of the limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from client.bench.summary import Figures

__all__ = ["SweepPolicy", "between", "overload_reasons"]


@dataclass(frozen=True)
class SweepPolicy:
    factor: float = 2.0
    max_steps: int = 8
    min_completion: float = 0.8
    max_failure_share: float = 0.05
    min_failures: int = 2
    """A single failed request in a short step is not yet a trend."""
    ttft_growth: float = 5.0
    refine: int = 0
    """Steps after the first overloaded one, each between the highest rate kept up and the
    lowest overloaded one."""

    def rate(self, baseline_rate: float, step: int) -> float:
        """The open-loop rate of step `step` (1-based)."""
        return baseline_rate * self.factor ** (step - 1)


def between(kept_up_rate: float, overloaded_rate: float) -> float:
    """The next refining step's rate: the geometric mean of the interval's ends (they differ by
    a factor, so halving the interval on a log scale halves that factor's exponent)."""
    return math.sqrt(kept_up_rate * overloaded_rate)


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
