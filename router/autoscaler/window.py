"""A sliding time window over samples: the rate of an amount, or the mean of a level.

Pure: time comes in with each sample. Memory is bounded by the number of samples in the window.
"""

from __future__ import annotations

from collections import deque

__all__ = ["RunningMax", "SlidingWindow"]


class SlidingWindow:
    def __init__(self, length_s: float) -> None:
        self.length_s = length_s
        self._samples: deque[tuple[float, float]] = deque()
        self._sum = 0.0
        self._first_at: float | None = None

    def add(self, now: float, value: float) -> None:
        if self._first_at is None:
            self._first_at = now
        self._samples.append((now, value))
        self._sum += value
        self._evict(now)

    def _evict(self, now: float) -> None:
        while self._samples and self._samples[0][0] <= now - self.length_s:
            _, value = self._samples.popleft()
            self._sum -= value
        if not self._samples:
            self._sum = 0.0

    def forget(self) -> None:
        """Drop every sample, keeping the span: as if the window had seen only zeros (a rate
        right after is not inflated by a short span)."""
        self._samples.clear()
        self._sum = 0.0

    def rate(self, now: float, interval_s: float) -> float:
        """Sum per second over the window (or since the first sample, if that is shorter)."""
        self._evict(now)
        if self._first_at is None:
            return 0.0
        span = min(self.length_s, max(now - self._first_at + interval_s, interval_s))
        return max(0.0, self._sum) / span

    def mean(self, now: float) -> float:
        """Mean of the samples in the window (0 when empty)."""
        self._evict(now)
        return max(0.0, self._sum) / len(self._samples) if self._samples else 0.0

    def maximum(self, now: float) -> float:
        self._evict(now)
        return max((value for _, value in self._samples), default=0.0)


class RunningMax:
    """The largest value seen over the last `length_s` (a monotonic deque: O(1) amortised)."""

    def __init__(self, length_s: float) -> None:
        self.length_s = length_s
        self._samples: deque[tuple[float, float]] = deque()

    def peek(self, now: float) -> float:
        """The maximum over the window, without a new sample (0 when empty)."""
        self._evict(now)
        return self._samples[0][1] if self._samples else 0.0

    def add(self, now: float, value: float) -> float:
        """Add a sample and return the maximum over the window."""
        while self._samples and self._samples[-1][1] <= value:
            self._samples.pop()
        self._samples.append((now, value))
        return self.peek(now)

    def _evict(self, now: float) -> None:
        while self._samples and self._samples[0][0] <= now - self.length_s:
            self._samples.popleft()
