"""Flaps: a decision undone by the next one, counted per worker from the decisions.

A worker **parked** (drained, or stopped straight to the cold pool) and **resumed** again within
`cold_down_delay_s` plus a tick, or resumed and parked again within a tick, flapped: the second
decision undid the first before anything new could justify it. The policy's hysteresis
(`router/autoscaler/policies/default.py`) rules both out; the simulator and the loop's tests
count them here, with this one rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from router.autoscaler.decision import ActionKind, Decision
from router.autoscaler.params import EndpointParams

__all__ = ["PARKS", "Flap", "FlapCounter", "count_flaps"]

PARKS = frozenset({ActionKind.DRAIN, ActionKind.STOP_COLD})
"""The actions that take a serving worker out of service."""


@dataclass(frozen=True)
class Flap:
    worker_id: str
    first: ActionKind  # the decision undone
    first_at: float
    then: ActionKind  # the decision that undid it
    then_at: float

    def __str__(self) -> str:
        gap = self.then_at - self.first_at
        return f"{self.worker_id}: {self.first.value}, then {self.then.value} {gap:g} s later"


@dataclass
class FlapCounter:
    """Feed it every decision in order; `flaps` lists each park undone by a resume within
    `cold_down_delay_s + tick_s`, and each resume undone by a park within `tick_s`."""

    resume_after_park_s: float
    park_after_resume_s: float
    flaps: list[Flap] = field(default_factory=list)
    _parked: dict[str, tuple[float, ActionKind]] = field(default_factory=dict)
    _resumed: dict[str, tuple[float, ActionKind]] = field(default_factory=dict)

    @classmethod
    def for_params(cls, params: EndpointParams) -> FlapCounter:
        return cls(params.cold_down_delay_s + params.tick_s, params.tick_s)

    def record(self, decision: Decision) -> None:
        now = decision.now
        for action in decision.actions:
            worker_id = action.worker_id
            if worker_id is None:
                continue
            if action.kind is ActionKind.RESUME:
                self._check(
                    worker_id,
                    self._parked.get(worker_id),
                    self.resume_after_park_s,
                    action.kind,
                    now,
                )
                self._resumed[worker_id] = (now, action.kind)
            elif action.kind in PARKS:
                self._check(
                    worker_id,
                    self._resumed.get(worker_id),
                    self.park_after_resume_s,
                    action.kind,
                    now,
                )
                self._parked[worker_id] = (now, action.kind)

    def _check(
        self,
        worker_id: str,
        first: tuple[float, ActionKind] | None,
        within_s: float,
        then: ActionKind,
        now: float,
    ) -> None:
        if first is not None and now - first[0] <= within_s:
            self.flaps.append(Flap(worker_id, first[1], first[0], then, now))

    @property
    def count(self) -> int:
        return len(self.flaps)


def count_flaps(decisions: Iterable[Decision], params: EndpointParams) -> list[Flap]:
    """The flaps in `decisions` (in order), by the rule above."""
    counter = FlapCounter.for_params(params)
    for decision in decisions:
        counter.record(decision)
    return counter.flaps
