"""When to try a request again, as pure logic: which errors, how many times, how long to wait.

Only failures before the first byte of an answer are retried, each with a fresh ticket (the
router routes again, so the retry can land on another worker): 429/503 (the router or worker is
at capacity), connection failures, and a ticket refused as replayed (403 `replayed`). Anything
after the first byte is the caller's to handle, since tokens may already have been consumed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from client.errors import ConnectionFailed, OverloadedError, TGISError, TicketRejected

__all__ = ["RetryPolicy"]


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` tries in all (1 = never retry), with jittered exponential back-off between
    them; a server's `Retry-After` is honoured up to `max_delay`.

    The default waits 1.9-3.75 s in all over its four retries: long enough to ride out a router
    restart (2.5 s in the fault suite, docs/reliability.md, where three attempts, under 0.75 s,
    lost 9 of 51 requests), short enough that a wrong URL fails within seconds."""

    attempts: int = 5
    initial_delay: float = 0.25
    max_delay: float = 5.0
    factor: float = 2.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy needs attempts >= 1")
        if not 0 <= self.initial_delay <= self.max_delay or self.factor < 1:
            raise ValueError("RetryPolicy needs 0 <= initial_delay <= max_delay and factor >= 1")

    @classmethod
    def never(cls) -> RetryPolicy:
        return cls(attempts=1)

    def should_retry(self, error: TGISError, attempt: int) -> bool:
        """Whether failed attempt number `attempt` (1-based) is worth another try."""
        if attempt >= self.attempts:
            return False
        return isinstance(error, OverloadedError | ConnectionFailed) or _refused_as_replayed(error)

    def delay(self, error: TGISError, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed attempt `attempt`: the server's Retry-After when it gave
        one, else full jitter over the exponential step; never above `max_delay`."""
        if error.retry_after is not None:
            return min(error.retry_after, self.max_delay)
        step = min(self.max_delay, self.initial_delay * self.factor ** (attempt - 1))
        return rng.uniform(step / 2, step)


def _refused_as_replayed(error: TGISError) -> bool:
    """A fresh ticket the worker refused as used or too old (403 `replayed`, "route again"): the
    worker did nothing with the request, and the router numbers tickets afresh. It happens for
    a moment after a shared state's Redis restarts (docs/scaleout.md, Failures): a router may
    still issue numbers from a block it held before, below those others issue anew."""
    return isinstance(error, TicketRejected) and error.reason == "replayed"
