"""A sustained breach, measured with tolerance: one contrary sample does not reset it.

A breach starts when its condition first holds, and counts as sustained once it has lasted
`delay_s`. It ends only when the condition has been false for longer than `tolerance_s` (a
short dip, such as one jittery sample, is forgiven; SkyPilot resets on any such sample).
"""

from __future__ import annotations

__all__ = ["BreachTimer"]


class BreachTimer:
    def __init__(self, delay_s: float, tolerance_s: float) -> None:
        self.delay_s = delay_s
        self.tolerance_s = tolerance_s
        self._since: float | None = None
        self._last_true: float | None = None

    def update(self, now: float, breached: bool) -> bool:
        """Record the condition at `now`; True when the breach is sustained (and holds now)."""
        if breached:
            if self._since is None:
                self._since = now
            self._last_true = now
        elif self._last_true is not None and now - self._last_true > self.tolerance_s:
            self.reset()
        return breached and self._since is not None and now - self._since >= self.delay_s

    def reset(self) -> None:
        self._since = None
        self._last_true = None

    def lasted(self, now: float) -> float:
        return 0.0 if self._since is None else now - self._since
