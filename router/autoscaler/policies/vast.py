"""A Vast-like baseline: predicted load over several horizons, target_util, a cold pool.

As Vast documents its engine (reference: vast_pyworker.md §6.2): the load to plan for is the
largest over time horizons (here 10 s, 60 s and 10 min), active capacity is that load over
target_util (never under min_load), and a cold pool of cold_mult x that capacity (at least
cold_workers; planned over the last hour) is kept stopped with the model loaded and resumed
first. It decides every 5 s,
scales up at once and down as soon as the planned load falls, and goes to zero only after
inactivity_timeout. It has no panic window and does not look at queues.
"""

from __future__ import annotations

from router.autoscaler import policy
from router.autoscaler.breach import BreachTimer
from router.autoscaler.decision import Decision
from router.autoscaler.observation import Observation
from router.autoscaler.params import EndpointParams
from router.autoscaler.window import RunningMax, SlidingWindow

__all__ = ["VastPolicy"]

HORIZONS_S = (10.0, 60.0, 600.0)
TICK_S = 5.0


class VastPolicy:
    name = "vast"

    def __init__(self, params: EndpointParams) -> None:
        self.params = params
        self._windows = [SlidingWindow(h) for h in HORIZONS_S]
        self._idle = BreachTimer(params.inactivity_timeout, 0.0)
        self._next_at: float | None = None
        self._cold_plan = RunningMax(policy.COLD_PLAN_S)
        self._target = 0
        self._cold = 0

    def at_rest(self) -> tuple[int, int]:
        return policy.at_rest(self.params, cold_pool=True)

    def decide(self, obs: Observation) -> Decision:
        p, now = self.params, obs.now
        for window in self._windows:
            window.add(now, obs.arrived_tokens)
        rates = [window.rate(now, obs.interval_s) for window in self._windows]
        idle = self._idle.update(now, rates[0] == 0 and obs.in_flight_requests() == 0)
        if self._next_at is None:
            self._next_at, self._target = now, obs.active
        reason = "holding until the next decision"
        if now >= self._next_at or (obs.waiting_requests and obs.ready == 0):
            self._next_at = now + TICK_S
            unit = obs.mean_perf(p.assumed_max_perf) * p.target_util
            target = max(policy.active_floor(p, unit), policy.workers_for(max(rates), unit))
            if target == 0 and not idle and obs.waiting_requests + obs.in_flight_requests():
                target = 1
            if target == 0 and not idle:
                target = min(self._target, 1)
            self._target = min(target, p.max_workers)
            self._cold = int(self._cold_plan.add(now, policy.cold_target(p, self._target)))
            reason = "planned load over the longest horizon"
        inputs = {f"rate_{int(h)}s": r for h, r in zip(HORIZONS_S, rates, strict=True)}
        return policy.decision(self, obs, self._target, self._cold, reason, inputs=inputs)
