"""What a policy decides at one tick: targets, the actions that move toward them, and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["Action", "ActionKind", "Decision"]


class ActionKind(StrEnum):
    START = "start"  # create a new worker that will serve
    START_COLD = "start_cold"  # create a new worker for the cold pool (stopped once loaded)
    RESUME = "resume"  # cold -> serving
    DRAIN = "drain"  # stop routing to it; then stop to cold (`to_cold`) or destroy
    STOP_COLD = "stop_cold"  # an idle ready worker straight to the cold pool
    DESTROY = "destroy"  # gone for good


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    worker_id: str | None = None  # None for the starts: the provider names new workers
    to_cold: bool = False  # for DRAIN: where the worker goes once drained

    def __str__(self) -> str:
        target = f" {self.worker_id}" if self.worker_id else ""
        then = " then cold" if self.kind is ActionKind.DRAIN and self.to_cold else ""
        return f"{self.kind.value}{target}{then}"


@dataclass(frozen=True)
class Decision:
    """Targets, the bounded steps taken toward them this tick, the inputs and the reason."""

    now: float
    policy: str
    desired_active: int
    desired_cold: int
    actions: tuple[Action, ...]
    reason: str
    panic: bool = False
    inputs: dict[str, float] = field(default_factory=dict)

    @property
    def changes(self) -> bool:
        return bool(self.actions)

    def summary(self) -> str:
        acts = ", ".join(str(a) for a in self.actions) or "no change"
        return (
            f"[{self.policy}] active->{self.desired_active} cold->{self.desired_cold}: "
            f"{acts} ({self.reason})"
        )
