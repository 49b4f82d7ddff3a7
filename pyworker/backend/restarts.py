"""When a managed backend is restarted, and when its load has taken too long. Pure: times are
handed in (seconds on a monotonic clock), so tests drive them without waiting.

Back-off: the first restart waits `initial_s`, each further one `factor` times longer, up to
`max_s`. A backend that served (loaded) or stayed up `stable_s` earns a fresh start: its next
crash waits `initial_s` again.

Load watchdog, one per start of the backend:

    loading --(loaded)--> serving
       |
       +--(load_timeout_s passed)--> hung   (TGI stuck in "Warming up model", say)

`hung` is final for that start: the supervisor reports the error, with the backend's last log
line as the reason, stops the backend and restarts it under the back-off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

__all__ = ["Backoff", "LoadPhase", "LoadWatchdog"]


@dataclass
class Backoff:
    initial_s: float = 2.0
    factor: float = 2.0
    max_s: float = 120.0
    stable_s: float = 300.0
    failures: int = 0
    _started_at: float | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.initial_s <= 0 or self.factor < 1 or self.max_s < self.initial_s:
            raise ValueError("back-off needs 0 < initial_s <= max_s and factor >= 1")

    def started(self, now: float) -> None:
        self._started_at = now

    def served(self) -> None:
        """The backend loaded and served: its next crash is a first one again."""
        self.failures = 0

    def next_delay(self, now: float) -> float:
        """The wait before the next start, after the backend exited or was stopped at `now`."""
        ran_s = now - self._started_at if self._started_at is not None else 0.0
        if ran_s >= self.stable_s:
            self.failures = 0
        delay = min(self.initial_s * self.factor**self.failures, self.max_s)
        self.failures += 1
        return delay


class LoadPhase(Enum):
    LOADING = "loading"
    SERVING = "serving"
    HUNG = "hung"


@dataclass
class LoadWatchdog:
    """One start of the backend: `loading` until it serves, `hung` past the load timeout."""

    started_at: float
    load_timeout_s: float
    phase: LoadPhase = LoadPhase.LOADING

    def loaded(self) -> None:
        if self.phase is LoadPhase.LOADING:
            self.phase = LoadPhase.SERVING

    def check(self, now: float) -> LoadPhase:
        """The phase at `now`: a load still running after `load_timeout_s` turns `hung`."""
        if self.phase is LoadPhase.LOADING and now - self.started_at >= self.load_timeout_s:
            self.phase = LoadPhase.HUNG
        return self.phase

    def remaining_s(self, now: float) -> float:
        """Seconds left before a load in progress counts as hung (0 once it is not loading)."""
        if self.phase is not LoadPhase.LOADING:
            return 0.0
        return max(0.0, self.started_at + self.load_timeout_s - now)
