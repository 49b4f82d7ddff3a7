"""What the gateway counts, served on the router's `/metrics`: each worker that failed one of
its requests, once, by why.

    tgis_gateway_worker_failures_total{endpoint, kind}

`kind` is one of `FailureKind`: before the first byte reached the client (the gateway then
tries another worker) `timeout` (no answer, or no whole answer, within
`gateway_first_byte_timeout_s`), `connection` (refused, reset, closed), `address` (the worker's
address is one the gateway may not reach), `status` (429, 502, 503, 504), `redirect`,
`too_large` (over `gateway_max_answer_bytes`), `no_event` (a stream that ended before its first
event); after it (the stream ends with TGI's error event) `idle_timeout` (silent past
`gateway_idle_timeout_s`) and `broken` (reset, or ended inside an event). A client that leaves
is nobody's failure and is not counted. Endpoints are the router's own names, so a client
cannot grow the label set.
"""

from __future__ import annotations

from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter

__all__ = ["FailureKind", "GatewayMetrics"]


class FailureKind(StrEnum):
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    ADDRESS = "address"
    STATUS = "status"
    REDIRECT = "redirect"
    TOO_LARGE = "too_large"
    NO_EVENT = "no_event"
    IDLE_TIMEOUT = "idle_timeout"
    BROKEN = "broken"


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._failures = Counter(
            "tgis_gateway_worker_failures",
            "Workers that failed a gateway request, by endpoint and why (docs/errors.md)",
            ["endpoint", "kind"],
            registry=self.registry,
        )

    def worker_failed(self, endpoint: str, kind: FailureKind) -> None:
        self._failures.labels(endpoint, kind.value).inc()
