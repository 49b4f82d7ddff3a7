"""Policies by name. Baselines that count requests rather than tokens get their per-worker
target from `PolicyHints` (what a user would tune them to for the workload at hand)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from router.autoscaler.params import EndpointParams
from router.autoscaler.policies.default import DefaultPolicy
from router.autoscaler.policies.kpa import KpaPolicy
from router.autoscaler.policies.skypilot import SkyPilotPolicy
from router.autoscaler.policies.vast import VastPolicy
from router.autoscaler.policy import Policy

__all__ = ["POLICIES", "PolicyHints", "UnknownPolicy", "make_policy", "policy_names"]


class UnknownPolicy(ValueError):
    """No policy by that name."""


@dataclass(frozen=True)
class PolicyHints:
    mean_request_tokens: float = 200.0  # mean cost of a request, tokens
    worker_concurrency: int = 8  # requests a worker serves at once

    def target_qps(self, params: EndpointParams) -> float:
        return params.assumed_max_perf * params.target_util / max(self.mean_request_tokens, 1.0)

    def target_concurrency(self) -> float:
        return 0.7 * self.worker_concurrency  # Knative's 70 % of containerConcurrency


PolicyFactory = Callable[[EndpointParams, PolicyHints], Policy]

POLICIES: dict[str, PolicyFactory] = {
    "default": lambda params, hints: DefaultPolicy(params),
    "vast": lambda params, hints: VastPolicy(params),
    "kpa": lambda params, hints: KpaPolicy(params, target_concurrency=hints.target_concurrency()),
    "skypilot": lambda params, hints: SkyPilotPolicy(params, target_qps=hints.target_qps(params)),
}


def policy_names() -> list[str]:
    return list(POLICIES)


def make_policy(name: str, params: EndpointParams, hints: PolicyHints | None = None) -> Policy:
    factory = POLICIES.get(name)
    if factory is None:
        raise UnknownPolicy(f"no policy named {name!r}; choose one of {', '.join(POLICIES)}")
    return factory(params, hints or PolicyHints())
