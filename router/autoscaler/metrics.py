"""Prometheus metrics of the autoscaler: desired vs actual workers by phase, the cold pool,
every decision counted by its reason, and provider failures in a row. Kept in their own
registry, exposed by `up`."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from router.autoscaler.decision import Decision
from router.autoscaler.observation import Observation, WorkerPhase

__all__ = ["AutoscalerMetrics"]


class AutoscalerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.desired = Gauge(
            "tgis_autoscaler_desired_workers",
            "Workers the policy wants, serving (active) or in the cold pool (cold)",
            ["pool"],
            registry=self.registry,
        )
        self.actual = Gauge(
            "tgis_autoscaler_workers",
            "Workers by phase, as the autoscaler sees them",
            ["phase"],
            registry=self.registry,
        )
        self.cold_pool = Gauge(
            "tgis_autoscaler_cold_pool",
            "Workers stopped with the model loaded",
            registry=self.registry,
        )
        self.decisions = Counter(
            "tgis_autoscaler_decisions",
            "Decisions that changed the fleet, by policy and reason",
            ["policy", "reason"],
            registry=self.registry,
        )
        self.panic = Gauge("tgis_autoscaler_panic", "1 while panicking", registry=self.registry)
        self.provider_failures = Gauge(
            "tgis_autoscaler_provider_failures",
            "Provider calls that failed in a row (0 when the provider answers)",
            registry=self.registry,
        )

    def record(self, obs: Observation, decision: Decision) -> None:
        self.desired.labels(pool="active").set(decision.desired_active)
        self.desired.labels(pool="cold").set(decision.desired_cold)
        for phase in WorkerPhase:
            self.actual.labels(phase=phase.value).set(obs.count(phase))
        self.cold_pool.set(obs.count(WorkerPhase.COLD))
        self.panic.set(1.0 if decision.panic else 0.0)
        if decision.changes:
            self.decisions.labels(policy=decision.policy, reason=decision.reason).inc()

    def exposition(self) -> bytes:
        return bytes(generate_latest(self.registry))
