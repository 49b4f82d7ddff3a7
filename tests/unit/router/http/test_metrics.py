"""The route counters and latency histogram, as a scrape shows them."""

from __future__ import annotations

import re

from router.autoscaler.params import EndpointParams
from router.endpoints.models import Endpoint
from router.http.metrics import LATENCY_BUCKETS, RouterMetrics
from router.routing.registry import WorkerRegistry
from router.routing.waiting import WaitQueue


def scrape(metrics: RouterMetrics) -> dict[str, float]:
    samples = {}
    for line in metrics.exposition().decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def new_metrics() -> RouterMetrics:
    return RouterMetrics(
        WorkerRegistry(stale_after_s=10.0, settle_s=1.0), WaitQueue(4), lambda: 0.0
    )


def test_routes_are_counted_by_endpoint_and_outcome() -> None:
    metrics = new_metrics()
    for _ in range(3):
        metrics.route_done("default", "ticket", 0.001)
    metrics.route_done("", "endpoint_not_found", 0.001)
    samples = scrape(metrics)
    assert samples['tgis_router_routes_total{endpoint="default",outcome="ticket"}'] == 3
    assert samples['tgis_router_routes_total{endpoint="",outcome="endpoint_not_found"}'] == 1


def test_latency_buckets_are_cumulative_and_include_their_bound() -> None:
    metrics = new_metrics()
    for seconds in (0.0005, 0.0006, 0.003, 120.0):
        metrics.route_done("default", "ticket", seconds)
    samples = scrape(metrics)
    bucket = 'tgis_router_route_duration_seconds_bucket{{le="{}"}}'.format
    assert samples[bucket("0.0005")] == 1  # le: a bound is inside its bucket
    assert samples[bucket("0.001")] == 2
    assert samples[bucket("0.005")] == 3
    assert samples[bucket("60.0")] == 3
    assert samples[bucket("+Inf")] == 4
    assert samples["tgis_router_route_duration_seconds_count"] == 4
    assert samples["tgis_router_route_duration_seconds_sum"] == sum((0.0005, 0.0006, 0.003, 120.0))
    bounds = [k for k in samples if re.match(r"tgis_router_route_duration_seconds_bucket", k)]
    assert len(bounds) == len(LATENCY_BUCKETS) + 1


def test_each_endpoints_worker_bounds_are_read_at_scrape_time() -> None:
    endpoints = {"chat": Endpoint(name="chat", params=EndpointParams(min_workers=2, max_workers=3))}
    metrics = RouterMetrics(
        WorkerRegistry(stale_after_s=10.0, settle_s=1.0), WaitQueue(4), lambda: 0.0, endpoints
    )
    bound = 'tgis_router_endpoint_workers{{bound="{}",endpoint="chat"}}'.format
    assert scrape(metrics)[bound("min_workers")] == 2
    endpoints["chat"] = Endpoint(name="chat", params=EndpointParams(min_workers=3, max_workers=3))
    samples = scrape(metrics)
    assert (samples[bound("min_workers")], samples[bound("max_workers")]) == (3, 3)
    assert samples[bound("cold_workers")] == 3  # left unset, the cold pool fits max_workers
