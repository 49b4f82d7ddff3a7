"""Our policy: token load against max_perf, a stable and a panic window, queue-time guard rail.

Every tick it measures the arrival rate of work (tokens/s) over a stable window and a panic
window, and the backlog: work that ready workers cannot start within BACKLOG_HORIZON of the
target queue time (the rest of that budget is the margin for bringing a worker back from the
cold pool).

* Up: when requests wait with no room, or the panic window (plus backlog) needs at least twice
  the workers while queues are forming (queue time at least QUEUE_GATE of the target: a burst
  the queues absorb within budget needs no new worker), it panics and scales up at once, cold
  workers resumed first. It never scales down while panicking, which lasts while the panic
  window still needs the workers it has, and one panic window longer.
* Up on the stable window when its need exceeds the current count for up_delay_s.
* Down: when neither window needs the current count for a sustained breach (with tolerance for
  a short contrary dip), it drains the least-loaded workers, to the cold pool first. The
  breach must last cold_down_delay_s when they go to the cold pool (a resume undoes that in
  seconds) and down_delay_s when they go for good (undone only by a full start). Never below
  what the panic window needs: that would be undone at the next tick.
* To zero: only with no floor, and after inactivity_timeout with nothing arriving or in flight,
  measured like the other delays: a stray request shorter than the tolerance does not restart
  the countdown.
* Hysteresis (no decision undone by the next one): going to zero forgets the load both windows
  remember (it is what the idle rule overruled, and would resume the worker at the next tick);
  after lowering its target it raises it again only once cold_down_delay_s plus a tick have
  passed, and after raising it lowers it only once a tick has passed; scaling up restarts the
  inactivity countdown.
"""

from __future__ import annotations

import math

from router.autoscaler.breach import BreachTimer
from router.autoscaler.decision import Decision
from router.autoscaler.observation import Observation
from router.autoscaler.params import EndpointParams
from router.autoscaler.policy import (
    COLD_PLAN_S,
    active_floor,
    at_rest,
    cold_target,
    decision,
    workers_for,
)
from router.autoscaler.window import RunningMax, SlidingWindow

__all__ = ["BACKLOG_HORIZON", "QUEUE_GATE", "DefaultPolicy"]

BACKLOG_HORIZON = 0.75
"""Backlog is work that cannot start within this share of target_queue_time."""
QUEUE_GATE = 0.25
"""A rate-driven panic needs a worker's queue time at this share of target_queue_time."""


class DefaultPolicy:
    name = "default"

    def __init__(self, params: EndpointParams) -> None:
        self.params = params
        self._stable = SlidingWindow(params.stable_window_s)
        self._panic = SlidingWindow(params.panic_window_s)
        self._up = BreachTimer(params.up_delay_s, params.breach_tolerance_s)
        self._down = BreachTimer(0.0, params.breach_tolerance_s)  # its delay: _down_delay
        self._idle = BreachTimer(params.inactivity_timeout, params.breach_tolerance_s)
        self._panic_until = -math.inf
        self._cold_plan = RunningMax(COLD_PLAN_S)
        self._target = 0
        self._started = False
        self._raised_at = -math.inf
        self._lowered_at = -math.inf

    def at_rest(self) -> tuple[int, int]:
        return at_rest(self.params, cold_pool=True)

    def decide(self, obs: Observation) -> Decision:
        p, now = self.params, obs.now
        if not self._started:
            self._target, self._started = obs.active, True
        self._stable.add(now, obs.arrived_tokens)
        self._panic.add(now, obs.arrived_tokens)
        unit = obs.mean_perf(p.assumed_max_perf) * p.target_util
        stable_rate = self._stable.rate(now, obs.interval_s)
        panic_rate = self._panic.rate(now, obs.interval_s)
        backlog = obs.backlog_tokens(p.target_queue_time * BACKLOG_HORIZON)
        floor = active_floor(p, unit)
        need_stable = max(floor, workers_for(stable_rate + backlog / p.target_queue_time, unit))
        need_panic = workers_for(panic_rate + backlog / p.target_queue_time, unit)
        if obs.waiting_requests:
            # No room, or queues forming: trust the last tick alone (0 -> N at once).
            recent = obs.arrived_tokens / obs.interval_s + backlog / p.target_queue_time
            need_panic = max(need_panic, workers_for(recent, unit), 1)
        quiet = obs.arrived_requests == 0 and obs.in_flight_requests() == 0
        idle = self._idle.update(now, quiet)
        target, reason, panic = self._next_target(obs, need_stable, need_panic, floor, idle)
        target, reason = self._settled(now, min(target, p.max_workers), reason)
        self._remember_change(now, target)
        inputs = {
            "stable_rate": stable_rate,
            "panic_rate": panic_rate,
            "backlog_tokens": backlog,
            "per_worker": unit,
            "need_stable": float(need_stable),
            "need_panic": float(need_panic),
        }
        cold = int(self._cold_plan.add(now, cold_target(p, max(target, need_stable))))
        return decision(
            self,
            obs,
            target,
            cold,
            reason,
            panic=panic,
            inputs=inputs,
            create_cold_to=max(0, p.cold_workers - target),
        )

    def _settled(self, now: float, target: int, reason: str) -> tuple[int, str]:
        """The target, unless it would undo the last change too soon: no raise within
        cold_down_delay_s plus a tick of a lowering, no lowering within a tick of a raise."""
        p, current = self.params, self._target
        if target > current and now - self._lowered_at <= p.cold_down_delay_s + p.tick_s:
            return current, f"{reason}; held: scaled down within cold_down_delay_s and a tick"
        if target < current and now - self._raised_at <= p.tick_s:
            return current, f"{reason}; held: scaled up within a tick"
        return target, reason

    def _remember_change(self, now: float, target: int) -> None:
        if target > self._target:
            self._raised_at = now
            self._idle.reset()  # the countdown to zero starts again from the scale-up
        elif target < self._target:
            self._lowered_at = now
            if target == 0:  # the idle rule overruled what the windows remember: forget it
                self._stable.forget()
                self._panic.forget()
        self._target = target

    def _next_target(
        self, obs: Observation, need_stable: int, need_panic: int, floor: int, idle: bool
    ) -> tuple[int, str, bool]:
        now, current = obs.now, self._target
        if need_panic > current and (obs.waiting_requests or self._bursting(obs, need_panic)):
            self._panic_until = now + self.params.panic_window_s
            self._down.reset()
            return max(need_panic, need_stable), "panic: burst or backlog above capacity", True
        if now < self._panic_until:
            if need_panic >= current:  # the burst goes on
                self._panic_until = now + self.params.panic_window_s
            want = max(current, need_stable, need_panic)
            return want, "panicking: no scale-down until the burst has passed", True
        want = need_stable
        if want > current:
            self._down.reset()
            if self._up.update(now, True):
                return want, "stable load above capacity", False
            return current, "load above capacity, waiting for up delay", False
        self._up.update(now, False)
        return self._down_target(obs, current, max(want, need_panic), floor, idle)

    def _bursting(self, obs: Observation, need_panic: int) -> bool:
        """The panic window needs twice the workers, and queues are forming."""
        queueing = obs.max_queue_time() >= QUEUE_GATE * self.params.target_queue_time
        return need_panic >= 2 * max(self._target, 1) and queueing

    def _down_target(
        self, obs: Observation, current: int, want: int, floor: int, idle: bool
    ) -> tuple[int, str, bool]:
        now = obs.now
        if idle and floor == 0 and current > 0:
            # Quiet for inactivity_timeout: a stray request the stable window still
            # remembers does not keep a worker.
            self._down.reset()
            return 0, "idle for the inactivity timeout: to zero", False
        if want == 0 and not idle:
            want = min(current, max(1, floor))
        if want >= current:
            self._down.update(now, False)
            return current, "load within capacity", False
        self._down.update(now, True)
        to_cold = self._drains_to_cold(obs, want)
        delay = self.params.cold_down_delay_s if to_cold else self.params.down_delay_s
        if self._down.lasted(now) >= delay:
            self._down.reset()
            where = "into the cold pool" if to_cold else "for good"
            return want, f"load below capacity for the down delay: drain {where}", False
        return current, "load below capacity, waiting for down delay", False

    def _drains_to_cold(self, obs: Observation, target: int) -> bool:
        """Whether a worker removed now, down to `target`, would go to the cold pool (a resume
        undoes that, so it needs less evidence) rather than for good (undone only by a full
        start): the cold pool's plan, as decide() will make it, still has room."""
        planned = max(self._cold_plan.peek(obs.now), cold_target(self.params, target))
        return obs.cold_pool < planned
