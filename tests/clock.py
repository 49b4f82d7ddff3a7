"""A clock for tests that take one: time stands still until the test moves it."""

from __future__ import annotations


class FakeClock:
    """A `clock` (seconds, as a float) that answers `now`; the test moves time by setting `now`."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
