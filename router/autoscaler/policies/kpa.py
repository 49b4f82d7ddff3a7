"""A Knative-KPA-like baseline: a concurrency target, 60 s stable and 6 s panic windows.

As Knative's autoscaler works (reference: peers.md §2.2): every 2 s it averages the requests in
flight (at the workers, plus those held waiting, as the activator holds them) over a 60 s
stable window and a 6 s panic window, and wants ceil(concurrency / target) pods for each. It
panics when the panic window wants at least twice the ready pods (counted as at least one, as
Knative does, so a burst onto a fleet with nothing ready panics too); while panicking (and for a
stable window after) it never scales down. Scale-down is at most halving the ready pods per
tick; scale to zero after a 30 s grace with nothing in flight. It keeps no cold pool.
"""

from __future__ import annotations

import math

from router.autoscaler.breach import BreachTimer
from router.autoscaler.decision import Decision
from router.autoscaler.observation import Observation
from router.autoscaler.params import EndpointParams
from router.autoscaler.policy import active_floor, at_rest, decision
from router.autoscaler.window import SlidingWindow

__all__ = ["KpaPolicy"]

STABLE_S = 60.0
PANIC_S = 6.0
TICK_S = 2.0
PANIC_THRESHOLD = 2.0
MAX_SCALE_DOWN_RATE = 2.0
TO_ZERO_GRACE_S = 30.0


class KpaPolicy:
    name = "kpa"

    def __init__(self, params: EndpointParams, *, target_concurrency: float) -> None:
        self.params = params
        self.target = target_concurrency
        self._stable = SlidingWindow(STABLE_S)
        self._panic = SlidingWindow(PANIC_S)
        self._to_zero = BreachTimer(TO_ZERO_GRACE_S, 0.0)
        self._panic_until = -math.inf
        self._next_at: float | None = None
        self._desired = 0

    def at_rest(self) -> tuple[int, int]:
        return at_rest(self.params, cold_pool=False)

    def decide(self, obs: Observation) -> Decision:
        now = obs.now
        concurrency = float(obs.in_flight_requests())
        self._stable.add(now, concurrency)
        self._panic.add(now, concurrency)
        if self._next_at is None:
            self._next_at, self._desired = now, obs.active
        reason, stable_want, panic_want = "holding until the next tick", 0, 0
        if now >= self._next_at or (obs.waiting_requests and obs.active == 0):
            self._next_at = now + TICK_S
            stable_want = math.ceil(self._stable.mean(now) / self.target)
            panic_want = math.ceil(self._panic.mean(now) / self.target)
            reason = self._update(obs, stable_want, panic_want)
        inputs = {
            "stable_concurrency": self._stable.mean(now),
            "panic_concurrency": self._panic.mean(now),
            "target_concurrency": self.target,
        }
        panic = now < self._panic_until
        return decision(self, obs, self._desired, 0, reason, panic=panic, inputs=inputs)

    def _update(self, obs: Observation, stable_want: int, panic_want: int) -> str:
        now, ready = obs.now, max(1, obs.ready)
        floor = active_floor(self.params, obs.mean_perf(self.params.assumed_max_perf))
        if panic_want / ready >= PANIC_THRESHOLD:
            self._panic_until = now + STABLE_S
        if now < self._panic_until:
            self._desired = max(self._desired, panic_want, floor)
            return "panic: never scale down"
        want = max(stable_want, floor)
        if obs.waiting_requests and want == 0:
            want = 1  # the activator holds a request: wake one pod
        if want == 0 and not self._to_zero.update(now, obs.in_flight_requests() == 0):
            want = min(self._desired, 1)
        limit = math.floor(ready / MAX_SCALE_DOWN_RATE)
        self._desired = min(max(want, limit), self.params.max_workers)
        return "stable window"
