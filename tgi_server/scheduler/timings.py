"""Per-batch timings as TGI reports them: cumulative histograms the engine thread fills.

TGI's router records, for each forward pass, how long the model call took (`forward`), how long
choosing and detokenizing the next tokens took (`decode`), how long dropping finished rows took
(`filter`) and the whole step (`inference`), each with a `method` label, `prefill` or `decode`;
plus the size of every new batch (`tgi_batch_next_size`) and the time spent joining a new batch
to the running one (`tgi_batch_concat_duration`, labelled `decode` as in TGI, whose shard joins
batches during the decode call). The engine thread only adds to plain counters here; `/metrics`
reads them at each scrape. Pure: no clock, no I/O.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

__all__ = [
    "BATCH_DURATIONS",
    "DURATION_BUCKETS",
    "METHODS",
    "NEXT_SIZE_BUCKETS",
    "BatchTimings",
    "CumulativeHistogram",
]

DURATION_BUCKETS = tuple(0.00015 * 1.5**k for k in range(35))
"""TGI's buckets for every `*_duration` histogram, in seconds."""

NEXT_SIZE_BUCKETS = tuple(float(size) for size in range(1, 1025))
"""TGI's buckets for `tgi_batch_next_size`: 1 to 1024."""

METHODS = ("prefill", "decode")
BATCH_DURATIONS = ("forward", "decode", "filter", "inference")
"""The phases of a step, as in `tgi_batch_<phase>_duration`."""


@dataclass
class CumulativeHistogram:
    """Prometheus-style histogram state: a count per upper bound, the sum and the count."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.bounds)

    def observe(self, value: float) -> None:
        index = bisect.bisect_left(self.bounds, value)
        if index < len(self.counts):
            self.counts[index] += 1
        self.total += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """(`le` label, observations at or below it), ending with `+Inf`."""
        running, buckets = 0, []
        for bound, count in zip(self.bounds, self.counts, strict=True):
            running += count
            buckets.append((_float_label(bound), running))
        buckets.append(("+Inf", self.count))
        return buckets


def _float_label(value: float) -> str:
    return repr(float(value))


def _durations() -> dict[tuple[str, str], CumulativeHistogram]:
    return {
        (phase, method): CumulativeHistogram(DURATION_BUCKETS)
        for phase in BATCH_DURATIONS
        for method in METHODS
    }


@dataclass
class BatchTimings:
    """Every per-batch histogram, keyed by (phase, method)."""

    durations: dict[tuple[str, str], CumulativeHistogram] = field(default_factory=_durations)
    next_size: CumulativeHistogram = field(
        default_factory=lambda: CumulativeHistogram(NEXT_SIZE_BUCKETS)
    )
    concat: CumulativeHistogram = field(
        default_factory=lambda: CumulativeHistogram(DURATION_BUCKETS)
    )

    def step(
        self, method: str, *, forward: float, decode: float, filter: float, inference: float
    ) -> None:
        """Record one successful forward pass's phases, in seconds."""
        for phase, seconds in (
            ("forward", forward),
            ("decode", decode),
            ("filter", filter),
            ("inference", inference),
        ):
            self.durations[(phase, method)].observe(max(seconds, 0.0))

    def new_batch(self, size: int) -> None:
        self.next_size.observe(float(size))

    def concatenated(self, seconds: float) -> None:
        self.concat.observe(max(seconds, 0.0))
