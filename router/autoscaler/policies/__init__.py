"""The policies by name: `default` (ours) and the baselines `vast`, `kpa` and `skypilot`."""

from router.autoscaler.policies.registry import POLICIES, PolicyHints, make_policy, policy_names

__all__ = ["POLICIES", "PolicyHints", "make_policy", "policy_names"]
