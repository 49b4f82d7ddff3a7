"""`GET /metrics` in Prometheus' text format, from one registry per application.

Counters that the request path already keeps (outcomes in the load tracker, rejections by
reason) are read at scrape time, so a relayed request pays only for its two histogram
observations: time spent queued for admission, and time to the backend's first byte.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from protocol import WorkerState
from pyworker.admission import FifoGate
from pyworker.lifecycle import Lifecycle
from pyworker.load import LoadTracker

__all__ = ["CONTENT_TYPE", "WorkerMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class WorkerMetrics:
    def __init__(
        self, load: LoadTracker, lifecycle: Lifecycle, gate: Callable[[], FifoGate | None]
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.rejections: Counter[str] = Counter()  # requests refused before relaying, by type
        self.ticket_rejections: Counter[str] = Counter()  # by the check that failed
        self.relay_errors: Counter[str] = Counter()  # by kind
        self.queue_time = Histogram(
            "tgis_worker_queue_time_seconds",
            "Time a request waited for a relay slot",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.time_to_first_byte = Histogram(
            "tgis_worker_time_to_first_byte_seconds",
            "From a request's arrival to the backend's first byte (first token when streaming)",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_StateCollector(self, load, lifecycle, gate))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StateCollector(Collector):
    def __init__(
        self,
        metrics: WorkerMetrics,
        load: LoadTracker,
        lifecycle: Lifecycle,
        gate: Callable[[], FifoGate | None],
    ) -> None:
        self._metrics = metrics
        self._load = load
        self._lifecycle = lifecycle
        self._gate = gate

    def collect(self) -> Iterator[Metric]:
        yield from self._counters()
        yield from self._gauges()

    def _counters(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "tgis_worker_requests", "Requests by outcome", labels=["outcome"]
        )
        for outcome, count in self._load.outcomes.items():
            requests.add_metric([outcome.value], count)
        for error_type, count in self._metrics.rejections.items():
            requests.add_metric([f"rejected_{error_type}"], count)
        yield requests
        yield CounterMetricFamily(
            "tgis_worker_generated_tokens",
            "Tokens the backend generated for relayed requests (its x-generated-tokens header, "
            "or a stream's token events)",
            value=self._load.tokens_served_total,
        )
        yield _labelled_counter(
            "tgis_worker_ticket_rejections",
            "Tickets refused, by reason",
            "reason",
            self._metrics.ticket_rejections,
        )
        yield _labelled_counter(
            "tgis_worker_relay_errors",
            "Relay failures, by kind",
            "kind",
            self._metrics.relay_errors,
        )

    def _gauges(self) -> Iterator[Metric]:
        load, lifecycle, gate = self._load, self._lifecycle, self._gate()
        yield GaugeMetricFamily(
            "tgis_worker_in_flight_workload", "Tokens in flight", value=load.in_flight_workload
        )
        yield GaugeMetricFamily(
            "tgis_worker_requests_in_flight", "Requests in flight", value=load.requests_working
        )
        yield GaugeMetricFamily(
            "tgis_worker_requests_queued",
            "Requests waiting for a relay slot",
            value=gate.waiting if gate else 0,
        )
        yield GaugeMetricFamily(
            "tgis_worker_max_perf",
            "Tokens/s at saturation: measured while serving, the start-up benchmark's until then",
            value=load.capacity.max_perf,
        )
        yield GaugeMetricFamily(
            "tgis_worker_startup_perf",
            "Tokens/s the start-up benchmark measured",
            value=load.capacity.startup_perf,
        )
        state = GaugeMetricFamily("tgis_worker_state", "1 for the current state", labels=["state"])
        for candidate in WorkerState:
            current = lifecycle.reported_state
            state.add_metric([candidate.value], 1.0 if candidate is current else 0.0)
        yield state


def _labelled_counter(name: str, doc: str, label: str, counts: Counter[str]) -> Metric:
    family = CounterMetricFamily(name, doc, labels=[label])
    for value, count in counts.items():
        family.add_metric([value], count)
    return family
