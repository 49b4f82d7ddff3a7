"""The backend's Prometheus metrics, under TGI's `tgi_` names, in a registry of its own.

The HTTP edge records each request's outcome and timings; the queue and batch gauges, the
batch counters (forward passes by method, joins by reason) and the per-batch histograms (phase
durations by method, new batch sizes, join time; see `batch_timings`) are read from the
scheduler's stats when `/metrics` is scraped. Duration histograms use TGI's 35 geometric buckets
(0.00015 s x 1.5^k). `tgi_request_skipped_tokens` (prompt tokens a prefix cache let TGI skip) is
observed as 0 for every request: this backend has no prefix cache.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from tgi_server.batch_timings import (
    BATCH_DURATIONS,
    DURATION_BUCKETS,
    METHODS,
    BatchTimings,
    CumulativeHistogram,
)
from tgi_server.events import Completion
from tgi_server.scheduler import SchedulerStats

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
        self._batches = _BatchCollector(max_batch_total_tokens)
        registry.register(self._batches)
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
        self.input_length = Histogram(
            "tgi_request_input_length",
            "Prompt tokens",
            buckets=_length_buckets(max_input_tokens),
            registry=registry,
        )
        self.generated_tokens = Histogram(
            "tgi_request_generated_tokens",
            "Generated tokens",
            buckets=_length_buckets(max_total_tokens),
            registry=registry,
        )
        self.max_new_tokens = Histogram(
            "tgi_request_max_new_tokens",
            "New-token budget",
            buckets=_length_buckets(max_total_tokens),
            registry=registry,
        )
        self.skipped_tokens = Histogram(
            "tgi_request_skipped_tokens",
            "Prompt tokens skipped thanks to a prefix cache (none here)",
            buckets=_length_buckets(max_input_tokens),
            registry=registry,
        )
        self.queue_size = Gauge("tgi_queue_size", "Requests waiting", registry=registry)
        self.batch_size = Gauge(
            "tgi_batch_current_size", "Requests in the batch", registry=registry
        )

    def _seconds(self, name: str, text: str) -> Histogram:
        return Histogram(name, text, buckets=DURATION_BUCKETS, registry=self.registry)

    def received(self) -> None:
        self.requests.inc()

    def failed(self, error_type: str) -> None:
        self.failures.labels(err=error_type).inc()

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
        self._batches.stats = stats
        return generate_latest(self.registry)


class _BatchCollector:
    """The batch counters and gauges, read from the scheduler's stats at each scrape."""

    def __init__(self, max_batch_total_tokens: int) -> None:
        self.stats = SchedulerStats()
        self._max_batch_total_tokens = max_batch_total_tokens

    def collect(self) -> Iterator[Metric]:
        stats = self.stats
        count = CounterMetricFamily(
            "tgi_batch_inference_count", "Forward passes", labels=["method"]
        )
        success = CounterMetricFamily(
            "tgi_batch_inference_success", "Forward passes that succeeded", labels=["method"]
        )
        failure = CounterMetricFamily(
            "tgi_batch_inference_failure", "Forward passes that failed", labels=["method"]
        )
        for method, total in stats.forwards.items():
            failed = stats.failed_forwards.get(method, 0)
            count.add_metric([method], total)
            success.add_metric([method], total - failed)
            failure.add_metric([method], failed)
        concat = CounterMetricFamily(
            "tgi_batch_concat", "New requests joined to a running batch", labels=["reason"]
        )
        for reason, total in stats.concats.items():
            concat.add_metric([reason], total)
        yield from (count, success, failure, concat)
        yield GaugeMetricFamily(
            "tgi_batch_current_max_tokens",
            "Most tokens the running batch may come to hold",
            value=stats.batch_max_tokens,
        )
        yield GaugeMetricFamily(
            "tgi_batch_max_total_tokens",
            "Token budget of the running batch",
            value=self._max_batch_total_tokens,
        )
        yield from _timing_families(stats.timings)


DURATION_HELP = {
    "forward": "Time of the model's forward pass",
    "decode": "Time choosing and detokenizing the next tokens",
    "filter": "Time removing finished requests from the batch",
    "inference": "Time of a whole batch step",
}


def _timing_families(timings: BatchTimings) -> Iterator[Metric]:
    for phase in BATCH_DURATIONS:
        family = HistogramMetricFamily(
            f"tgi_batch_{phase}_duration", DURATION_HELP[phase], labels=["method"]
        )
        for method in METHODS:
            _add(family, timings.durations[(phase, method)], [method])
        yield family
    next_size = HistogramMetricFamily("tgi_batch_next_size", "Requests in each new batch")
    _add(next_size, timings.next_size, [])
    yield next_size
    concat = HistogramMetricFamily(
        "tgi_batch_concat_duration",
        "Time joining a new batch to the running one",
        labels=["method"],
    )
    _add(concat, timings.concat, ["decode"])
    yield concat


def _add(family: HistogramMetricFamily, histogram: CumulativeHistogram, labels: list[str]) -> None:
    family.add_metric(labels, histogram.cumulative(), sum_value=histogram.total)
