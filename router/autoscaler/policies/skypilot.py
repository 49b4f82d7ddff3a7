"""A SkyPilot-Serve-like baseline: a QPS target, 300 s up / 1200 s down delays.

As SkyPilot's RequestRateAutoscaler works (reference: peers.md §2.1): QPS over a 60 s window,
target replicas ceil(QPS / target_qps_per_replica) within [min, max]. It decides every 20 s
(5 s while the target is zero); the target must stay above (below) the current count for
upscale_delay (downscale_delay), counted in consecutive decision periods, any opposite
reading resetting the count. From zero it scales up at once. It keeps no cold pool.
"""

from __future__ import annotations

import math

from router.autoscaler.decision import Decision
from router.autoscaler.observation import Observation
from router.autoscaler.params import EndpointParams
from router.autoscaler.policy import active_floor, at_rest, decision
from router.autoscaler.window import SlidingWindow

__all__ = ["SkyPilotPolicy"]

QPS_WINDOW_S = 60.0
DECISION_S = 20.0
DECISION_AT_ZERO_S = 5.0
UPSCALE_DELAY_S = 300.0
DOWNSCALE_DELAY_S = 1200.0


class SkyPilotPolicy:
    name = "skypilot"

    def __init__(self, params: EndpointParams, *, target_qps: float) -> None:
        self.params = params
        self.target_qps = target_qps
        self._requests = SlidingWindow(QPS_WINDOW_S)
        self._next_at: float | None = None
        self._target = 0
        self._up_periods = 0
        self._down_periods = 0

    def at_rest(self) -> tuple[int, int]:
        return at_rest(self.params, cold_pool=False)

    def decide(self, obs: Observation) -> Decision:
        now = obs.now
        self._requests.add(now, float(obs.arrived_requests))
        qps = self._requests.rate(now, obs.interval_s)
        if self._next_at is None:
            self._next_at, self._target = now, obs.active
        reason = "holding until the next decision"
        if now >= self._next_at:
            self._next_at = now + (DECISION_AT_ZERO_S if self._target == 0 else DECISION_S)
            reason = self._update(obs, qps)
        inputs = {"qps": qps, "target_qps_per_replica": self.target_qps}
        return decision(self, obs, self._target, 0, reason, inputs=inputs)

    def _update(self, obs: Observation, qps: float) -> str:
        floor = active_floor(self.params, obs.mean_perf(self.params.assumed_max_perf))
        want = max(floor, math.ceil(qps / self.target_qps - 1e-9))
        want = min(want, self.params.max_workers)
        if self._target == 0 and want > 0:
            self._target = want
            return "from zero: scale up at once"
        if want > self._target:
            self._up_periods, self._down_periods = self._up_periods + 1, 0
            if self._up_periods * DECISION_S >= UPSCALE_DELAY_S:
                self._target, self._up_periods = want, 0
                return "above target for the upscale delay"
            return "above target, counting periods"
        if want < self._target:
            self._down_periods, self._up_periods = self._down_periods + 1, 0
            if self._down_periods * DECISION_S >= DOWNSCALE_DELAY_S:
                self._target, self._down_periods = want, 0
                return "below target for the downscale delay"
            return "below target, counting periods"
        self._up_periods = self._down_periods = 0
        return "at target"
