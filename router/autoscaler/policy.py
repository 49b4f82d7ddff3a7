"""What every policy is: `decide(observation) -> Decision`, deterministic, no I/O, no clock.

A policy keeps its own windows and timers between ticks (time comes in with each observation),
so replaying the same observations gives the same decisions. Shared here: the floors the
parameters ask for, Vast's cold-pool target, and turning targets into a Decision.
"""

from __future__ import annotations

import math
from typing import Protocol

from router.autoscaler.decision import Decision
from router.autoscaler.observation import Observation
from router.autoscaler.params import EndpointParams
from router.autoscaler.plan import clamp_targets, plan_actions

__all__ = [
    "COLD_PLAN_S",
    "Policy",
    "active_floor",
    "at_rest",
    "cold_target",
    "decision",
    "workers_for",
]


COLD_PLAN_S = 3600.0
"""Vast plans cold capacity over an hour or more: the cold target is its maximum over this."""


class Policy(Protocol):
    name: str
    params: EndpointParams

    def decide(self, obs: Observation) -> Decision: ...

    def at_rest(self) -> tuple[int, int]:
        """(active, cold) workers this policy keeps with no traffic at all."""
        ...


def workers_for(tokens_per_s: float, per_worker: float) -> int:
    """Workers needed to carry a load, each worth `per_worker` tokens/s (tiny excess ignored)."""
    if tokens_per_s <= 0:
        return 0
    return math.ceil(tokens_per_s / per_worker - 1e-9)


def active_floor(params: EndpointParams, per_worker: float) -> int:
    """The active workers the parameters ask for at least: min_workers and min_load."""
    return max(params.min_workers, workers_for(params.min_load, per_worker))


def cold_target(params: EndpointParams, active: int) -> int:
    """Vast's cold pool: ready-quick capacity of cold_mult x the active target, and at least
    cold_workers ready-quick workers in all (serving ones count toward both)."""
    by_mult = math.ceil(params.cold_mult * active - 1e-9) - active
    return max(0, by_mult, params.cold_workers - active)


def at_rest(params: EndpointParams, *, cold_pool: bool) -> tuple[int, int]:
    active = active_floor(params, params.assumed_max_perf * params.target_util)
    return active, cold_target(params, active) if cold_pool else 0


def decision(
    policy: Policy,
    obs: Observation,
    active: int,
    cold: int,
    reason: str,
    *,
    panic: bool = False,
    inputs: dict[str, float] | None = None,
    create_cold_to: int | None = None,
) -> Decision:
    active, cold = clamp_targets(active, cold, policy.params)
    actions = plan_actions(obs, active, cold, policy.params, create_cold_to=create_cold_to)
    return Decision(
        now=obs.now,
        policy=policy.name,
        desired_active=active,
        desired_cold=cold,
        actions=tuple(actions),
        reason=reason,
        panic=panic,
        inputs={
            "active": float(obs.active),
            "ready": float(obs.ready),
            "cold_pool": float(obs.cold_pool),
            "total": float(obs.total),
            "waiting_requests": float(obs.waiting_requests),
            **(inputs or {}),
        },
    )
