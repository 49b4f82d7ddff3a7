"""Deciding that the target is down, as pure logic: several connection-level failures within
a short window and nothing that worked in it. The run then stops instead of hanging."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

__all__ = ["DownWatch"]


@dataclass
class DownWatch:
    window_s: float = 5.0
    min_failures: int = 3
    _events: deque[tuple[float, bool]] = field(default_factory=deque)
    last_error: str = ""

    def observe(self, now: float, *, reached: bool, error: str | None = None) -> None:
        """`reached`: the request got any HTTP answer or token; False for connection failures."""
        self._events.append((now, reached))
        if not reached and error:
            self.last_error = error
        while self._events and self._events[0][0] < now - self.window_s:
            self._events.popleft()

    def down(self) -> bool:
        failures = sum(1 for _, reached in self._events if not reached)
        return failures >= self.min_failures and all(not r for _, r in self._events)
