"""The router's Prometheus metrics, on `GET /metrics`.

Counted as they happen: routes by endpoint and outcome, and route latency. Read at scrape time
from the registry and the waiting queue: requests waiting, in-flight load per endpoint
(reported by workers plus tickets not yet in a report), and workers by endpoint and state.
Labels only take names the router knows (an unknown endpoint counts as `endpoint=""`), so a
client cannot grow the label set.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client import Counter as PromCounter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from router.registry import WorkerRegistry
from router.waiting import WaitQueue

__all__ = ["CONTENT_TYPE", "RouterMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4"

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60)


class RouterMetrics:
    def __init__(
        self, registry: WorkerRegistry, queue: WaitQueue, clock: Callable[[], float]
    ) -> None:
        self.prometheus = CollectorRegistry(auto_describe=True)
        self.routes = PromCounter(
            "tgis_router_routes",
            "Route requests by endpoint and outcome (ticket, waiting, or the error type)",
            ["endpoint", "outcome"],
            registry=self.prometheus,
        )
        self.route_seconds = Histogram(
            "tgis_router_route_duration_seconds",
            "Time to answer POST /route/, waiting for a worker included",
            buckets=LATENCY_BUCKETS,
            registry=self.prometheus,
        )
        self.prometheus.register(_FleetCollector(registry, queue, clock))
        self._route_counters: dict[tuple[str, str], Any] = {}

    def route_done(self, endpoint: str, outcome: str, seconds: float) -> None:
        counter = self._route_counters.get((endpoint, outcome))
        if counter is None:  # few: known endpoints times outcomes
            counter = self._route_counters[(endpoint, outcome)] = self.routes.labels(
                endpoint, outcome
            )
        counter.inc()
        self.route_seconds.observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.prometheus)


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
