"""A sliding anti-replay window over ticket sequence numbers, in constant memory.

The router numbers each worker's tickets 1, 2, 3, ... but clients may post them out of order.
The window remembers which of the last `size` numbers below the highest one seen were used,
as bits of one integer: a number is accepted once, and numbers that fell out of the window
are refused because nothing can prove they were not used.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["ReplayVerdict", "ReplayWindow"]


class ReplayVerdict(Enum):
    ACCEPTED = "accepted"
    REPLAYED = "replayed"  # this number was already used
    TOO_OLD = "too_old"  # below the window: cannot tell, so refuse


class ReplayWindow:
    def __init__(self, size: int = 4096) -> None:
        if size < 1:
            raise ValueError("the replay window needs at least one slot")
        self._size = size
        self._full_mask = (1 << size) - 1
        self._highest: int | None = None
        self._seen = 0  # bit k set: (highest - k) was used

    @property
    def size(self) -> int:
        return self._size

    def check(self, number: int) -> ReplayVerdict:
        """Say whether `number` may be used, without recording it."""
        if self._highest is None or number > self._highest:
            return ReplayVerdict.ACCEPTED
        offset = self._highest - number
        if offset >= self._size:
            return ReplayVerdict.TOO_OLD
        if self._seen >> offset & 1:
            return ReplayVerdict.REPLAYED
        return ReplayVerdict.ACCEPTED

    def accept(self, number: int) -> ReplayVerdict:
        """Record `number` if it may be used, and say whether it was."""
        verdict = self.check(number)
        if verdict is not ReplayVerdict.ACCEPTED:
            return verdict
        if self._highest is None or number > self._highest:
            shift = number - self._highest if self._highest is not None else self._size
            self._seen = (self._seen << shift | 1) & self._full_mask if shift < self._size else 1
            self._highest = number
        else:
            self._seen |= 1 << (self._highest - number)
        return ReplayVerdict.ACCEPTED
