"""The router's Prometheus metrics, on `GET /metrics`.

Counted as they happen: routes by endpoint and outcome, and route latency. Read at scrape time
from the registry and the waiting queue: requests waiting, in-flight load per endpoint
(reported by workers plus tickets not yet in a report), and workers by endpoint and state; from
the endpoints: each one's worker bounds (`min_workers`, `max_workers`, `cold_workers`). Where an
autoscaler runs, its own metrics (desired vs actual workers) are served here too (`include`).
Labels only take names the router knows (an unknown endpoint counts as `endpoint=""`), so a
client cannot grow the label set.

Counting a route is on `/route/`'s hot path, so it adds to plain numbers (a dict of counts and a
bucket list found by bisection) that a collector turns into Prometheus metrics at scrape time:
the same series as prometheus_client's Counter and Histogram, without their per-sample locks.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from router.routing.registry import WorkerRegistry
from router.routing.waiting import WaitQueue

if TYPE_CHECKING:
    from router.endpoints.models import Endpoint

__all__ = ["CONTENT_TYPE", "RouterMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4"

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60)


class RouterMetrics:
    def __init__(
        self,
        registry: WorkerRegistry,
        queue: WaitQueue,
        clock: Callable[[], float],
        endpoints: Mapping[str, Endpoint] | None = None,
    ) -> None:
        """`endpoints` is read at each scrape (the store's live mapping)."""
        self.prometheus = CollectorRegistry(auto_describe=True)
        self.routes: dict[tuple[str, str], int] = {}
        """Routes by (endpoint, outcome): few keys, known endpoints times outcomes."""
        self.latency_counts = [0] * (len(LATENCY_BUCKETS) + 1)
        """Routes per latency bucket (not cumulative); the last one is over the largest bound."""
        self.latency_sum = 0.0
        self.prometheus.register(_RouteCollector(self))
        self.prometheus.register(_FleetCollector(registry, queue, clock))
        self.prometheus.register(_BoundsCollector(endpoints if endpoints is not None else {}))

    def include(self, other: CollectorRegistry) -> None:
        """Serve `other`'s metrics here too (the autoscaler's, where one runs); their names
        must not clash with ours (prometheus_client refuses a duplicate)."""
        self.prometheus.register(other)

    def route_done(self, endpoint: str, outcome: str, seconds: float) -> None:
        key = (endpoint, outcome)
        self.routes[key] = self.routes.get(key, 0) + 1
        self.latency_counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1  # le: bound inclusive
        self.latency_sum += seconds

    def exposition(self) -> bytes:
        return generate_latest(self.prometheus)


class _RouteCollector(Collector):
    def __init__(self, metrics: RouterMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        metrics = self._metrics
        routes = CounterMetricFamily(
            "tgis_router_routes",
            "Route requests by endpoint and outcome (ticket, waiting, or the error type)",
            labels=["endpoint", "outcome"],
        )
        for (endpoint, outcome), count in sorted(metrics.routes.items()):
            routes.add_metric([endpoint, outcome], count)
        buckets: list[tuple[str, float]] = []
        cumulative = 0
        for bound, count in zip(
            (*LATENCY_BUCKETS, float("inf")), metrics.latency_counts, strict=True
        ):
            cumulative += count
            buckets.append((_le(bound), cumulative))
        latency = HistogramMetricFamily(
            "tgis_router_route_duration_seconds",
            "Time to answer POST /route/, waiting for a worker included",
            buckets=buckets,
            sum_value=metrics.latency_sum,
        )
        yield routes
        yield latency


def _le(bound: float) -> str:
    """A bucket bound as Prometheus writes it: `0.0005`, `1.0`, `+Inf`."""
    return "+Inf" if bound == float("inf") else repr(float(bound))


class _FleetCollector(Collector):
    def __init__(
        self, registry: WorkerRegistry, queue: WaitQueue, clock: Callable[[], float]
    ) -> None:
        self._registry = registry
        self._queue = queue
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        now = self._clock()
        waiting = GaugeMetricFamily(
            "tgis_router_waiting_requests", "Route requests waiting for a ready worker"
        )
        waiting.add_metric([], self._queue.waiting)
        load = GaugeMetricFamily(
            "tgis_router_in_flight_load",
            "Expected in-flight workload (tokens) per endpoint: reported plus unsettled tickets",
            labels=["endpoint"],
        )
        pending = GaugeMetricFamily(
            "tgis_router_pending_ticket_cost",
            "Cost of tickets issued but not yet in a worker's report, per endpoint",
            labels=["endpoint"],
        )
        workers = GaugeMetricFamily(
            "tgis_router_workers", "Workers by endpoint and state", labels=["endpoint", "state"]
        )
        loads: dict[str, float] = defaultdict(float)
        pendings: dict[str, float] = defaultdict(float)
        states: Counter[tuple[str, str]] = Counter()
        for worker in self._registry:
            loads[worker.endpoint] += worker.expected_load
            pendings[worker.endpoint] += worker.pending_workload
            states[(worker.endpoint, self._registry.state_of(worker, now))] += 1
        for endpoint, value in sorted(loads.items()):
            load.add_metric([endpoint], value)
            pending.add_metric([endpoint], pendings[endpoint])
        for (endpoint, state), count in sorted(states.items()):
            workers.add_metric([endpoint, state], count)
        yield waiting
        yield load
        yield pending
        yield workers


WORKER_BOUNDS = ("min_workers", "max_workers", "cold_workers")


class _BoundsCollector(Collector):
    def __init__(self, endpoints: Mapping[str, Endpoint]) -> None:
        self._endpoints = endpoints

    def collect(self) -> Iterator[Metric]:
        bounds = GaugeMetricFamily(
            "tgis_router_endpoint_workers",
            "Each endpoint's worker bounds, as its parameters set them: min_workers (the floor "
            "of serving workers), max_workers, cold_workers",
            labels=["endpoint", "bound"],
        )
        for name, endpoint in sorted(self._endpoints.items()):
            for bound in WORKER_BOUNDS:
                bounds.add_metric([name, bound], getattr(endpoint.params, bound))
        yield bounds
