"""The backend's Prometheus metrics, under TGI's `tgi_` names, in a registry of its own.

The HTTP edge records each request's outcome and timings; the queue and batch gauges, the
batch counters (forward passes by method, joins by reason) and the per-batch histograms (phase
durations by method, new batch sizes, join time; see `scheduler.timings`) are read from the
scheduler's stats when `/metrics` is scraped. Duration histograms use TGI's 35 geometric buckets
(0.00015 s x 1.5^k). `tgi_request_skipped_tokens` (prompt tokens a prefix cache let TGI skip) is
observed as 0 for every request: this backend has no prefix cache.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import cast

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.utils import floatToGoString as _untyped_go_float

from tgi_server.generation.events import Completion
from tgi_server.scheduler.base import SchedulerStats
from tgi_server.scheduler.timings import (
    BATCH_DURATIONS,
    DURATION_BUCKETS,
    METHODS,
    CumulativeHistogram,
)

__all__ = ["BackendMetrics"]


def _length_buckets(limit: int) -> tuple[float, ...]:
    step = max(limit // 100, 1)
    return tuple(float(step * k) for k in range(1, 101))


class BackendMetrics:
    """Everything `/metrics` exposes."""

    def __init__(
        self, max_input_tokens: int, max_total_tokens: int, max_batch_total_tokens: int = 0
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self._max_batch_total_tokens = max_batch_total_tokens
        self.requests = Counter("tgi_request_count", "Requests received", registry=registry)
        self.successes = Counter("tgi_request_success", "Requests served", registry=registry)
        self.failures = Counter(
            "tgi_request_failure", "Requests failed", ["err"], registry=registry
        )
        self.duration = self._seconds("tgi_request_duration", "End-to-end request time")
        self.validation = self._seconds("tgi_request_validation_duration", "Validation time")
        self.queue = self._seconds("tgi_request_queue_duration", "Time spent queued")
        self.inference = self._seconds("tgi_request_inference_duration", "Time on the model")
        self.per_token = self._seconds(
            "tgi_request_mean_time_per_token_duration", "Inference time per generated token"
        )
        self.input_length = self._tokens(
            "tgi_request_input_length", "Prompt tokens", max_input_tokens
        )
        self.generated_tokens = self._tokens(
            "tgi_request_generated_tokens", "Generated tokens", max_total_tokens
        )
        self.max_new_tokens = self._tokens(
            "tgi_request_max_new_tokens", "New-token budget", max_total_tokens
        )
        self.skipped_tokens = self._tokens(
            "tgi_request_skipped_tokens",
            "Prompt tokens skipped thanks to a prefix cache (none here)",
            max_input_tokens,
        )
        self.queue_size = Gauge("tgi_queue_size", "Requests waiting", registry=registry)
        self.batch_size = Gauge(
            "tgi_batch_current_size", "Requests in the batch", registry=registry
        )

    def _seconds(self, name: str, text: str) -> Histogram:
        return Histogram(name, text, buckets=DURATION_BUCKETS, registry=self.registry)

    def _tokens(self, name: str, text: str, limit: int) -> Histogram:
        return Histogram(name, text, buckets=_length_buckets(limit), registry=self.registry)

    def received(self) -> None:
        self.requests.inc()

    def failed(self, error_type: str) -> None:
        self.failures.labels(err=error_type).inc()

    def dropped(self) -> None:
        """Record a request whose client went away before it was served (`err="dropped"`)."""
        self.failed("dropped")

    def served(self, completion: Completion, received_at: float, validated_at: float) -> None:
        """Record a finished request (`time.monotonic()` stamps, as in the completion)."""
        self.successes.inc()
        self.duration.observe(max(completion.finished_at - received_at, 0.0))
        self.validation.observe(max(validated_at - received_at, 0.0))
        self.queue.observe(max(completion.started_at - completion.queued_at, 0.0))
        inference = max(completion.finished_at - completion.started_at, 0.0)
        self.inference.observe(inference)
        self.per_token.observe(inference / max(completion.generated_tokens, 1))
        self.input_length.observe(completion.input_length)
        self.generated_tokens.observe(completion.generated_tokens)
        self.max_new_tokens.observe(completion.max_new_tokens)
        self.skipped_tokens.observe(0)

    def render(self, stats: SchedulerStats) -> bytes:
        """The exposition text, with the gauges read from `stats` now."""
        self.queue_size.set(stats.queue_size)
        self.batch_size.set(stats.batch_size)
        batches = _batch_text(stats, self._max_batch_total_tokens)
        return batches.encode() + generate_latest(self.registry)


_go_float = cast(Callable[[float], str], _untyped_go_float)
"""A float as Go (and so Prometheus' own text format) writes it."""


def _count(value: int) -> str:
    """`_go_float(value)`, quickly for the usual counts: Go keeps up to six integer digits."""
    return repr(float(value)) if 0 <= value < 1_000_000 else _go_float(value)


def _batch_text(stats: SchedulerStats, max_batch_total_tokens: int) -> str:
    """The batch counters, gauges and per-batch histograms in Prometheus' text format, as
    prometheus_client writes them (a test compares the two byte for byte), ~20 times faster:
    `tgi_batch_next_size` alone has 1 024 buckets, and the library's generic writer held the
    event loop for milliseconds at every scrape."""
    lines: list[str] = []
    forwards, failed = stats.forwards, stats.failed_forwards
    _counter(lines, "tgi_batch_inference_count", "Forward passes", "method", forwards)
    succeeded = {m: total - failed.get(m, 0) for m, total in forwards.items()}
    _counter(
        lines, "tgi_batch_inference_success", "Forward passes that succeeded", "method", succeeded
    )
    failures = {m: failed.get(m, 0) for m in forwards}
    _counter(lines, "tgi_batch_inference_failure", "Forward passes that failed", "method", failures)
    _counter(
        lines, "tgi_batch_concat", "New requests joined to a running batch", "reason", stats.concats
    )
    _gauge(
        lines,
        "tgi_batch_current_max_tokens",
        "Most tokens the running batch may come to hold",
        stats.batch_max_tokens,
    )
    _gauge(
        lines,
        "tgi_batch_max_total_tokens",
        "Token budget of the running batch",
        max_batch_total_tokens,
    )
    timings = stats.timings
    for phase in BATCH_DURATIONS:
        name = f"tgi_batch_{phase}_duration"
        _header(lines, name, DURATION_HELP[phase], "histogram")
        for method in METHODS:
            _histogram(lines, name, timings.durations[(phase, method)], f'method="{method}"')
    _header(lines, "tgi_batch_next_size", "Requests in each new batch", "histogram")
    _histogram(lines, "tgi_batch_next_size", timings.next_size, "")
    name = "tgi_batch_concat_duration"
    _header(lines, name, "Time joining a new batch to the running one", "histogram")
    _histogram(lines, name, timings.concat, 'method="decode"')
    return "".join(lines)


def _header(lines: list[str], name: str, text: str, kind: str) -> None:
    lines.append(f"# HELP {name} {text}\n# TYPE {name} {kind}\n")


def _counter(lines: list[str], name: str, text: str, label: str, values: Mapping[str, int]) -> None:
    _header(lines, f"{name}_total", text, "counter")
    for key, value in values.items():
        lines.append(f'{name}_total{{{label}="{key}"}} {_go_float(value)}\n')


def _gauge(lines: list[str], name: str, text: str, value: float) -> None:
    _header(lines, name, text, "gauge")
    lines.append(f"{name} {_go_float(value)}\n")


@functools.cache
def _bucket_prefixes(name: str, bounds: tuple[float, ...], labels: str) -> tuple[str, ...]:
    """`name_bucket{...le="bound"...} ` for each bound and +Inf (labels in sorted order: `le`
    sorts before `method`)."""
    prefixes = []
    for bound in (*bounds, math.inf):
        le = f'le="{_go_float(bound)}"'
        joined = ",".join(sorted([le, labels])) if labels else le
        prefixes.append(f"{name}_bucket{{{joined}}} ")
    return tuple(prefixes)


def _histogram(lines: list[str], name: str, histogram: CumulativeHistogram, labels: str) -> None:
    prefixes = _bucket_prefixes(name, histogram.bounds, labels)
    running = 0
    for prefix, count in zip(prefixes, histogram.counts, strict=False):
        running += count
        lines.append(f"{prefix}{_count(running)}\n")
    lines.append(f"{prefixes[-1]}{_count(histogram.count)}\n")
    suffix = f"{{{labels}}}" if labels else ""
    lines.append(f"{name}_count{suffix} {_count(histogram.count)}\n")
    lines.append(f"{name}_sum{suffix} {_go_float(histogram.total)}\n")


DURATION_HELP = {
    "forward": "Time of the model's forward pass",
    "decode": "Time choosing and detokenizing the next tokens",
    "filter": "Time removing finished requests from the batch",
    "inference": "Time of a whole batch step",
}
