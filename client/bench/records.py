"""One request's timing record. All times are seconds since the run's start on the monotonic
clock; latencies count from the *intended* start, so a late dispatch is never hidden."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["Outcome", "RequestRecord"]

Outcome = Literal["ok", "overloaded", "error", "timeout", "incomplete", "cancelled"]
"""ok; overloaded (429/503, counted apart); error (any other failure); timeout (a client limit);
incomplete (the stream broke off); cancelled (still running when the drain limit passed)."""


@dataclass
class RequestRecord:
    index: int
    intended: float
    prompt_len: int
    max_new_tokens: int
    shard: int = 0
    phase: int = 0
    """Which phase or sweep step of the run the request belongs to."""
    sent: float | None = None
    routed: float | None = None
    """When the ticket arrived (router targets); `routed - sent` is the route time."""
    headers: float | None = None
    """When the worker's (or server's) answer headers arrived."""
    first_token: float | None = None
    tokens: list[float] = field(default_factory=list)
    """Arrival time of every token event."""
    end: float | None = None
    status: int | None = None
    outcome: Outcome = "error"
    error: str | None = None
    output_tokens: int | None = None
    """The server's count (`details.generated_tokens` or OpenAI `usage`); None if it gave none."""
    worker: str | None = None

    @property
    def ttft(self) -> float | None:
        return None if self.first_token is None else self.first_token - self.intended

    @property
    def e2e(self) -> float | None:
        return None if self.end is None else self.end - self.intended

    @property
    def dispatch_delay(self) -> float | None:
        return None if self.sent is None else self.sent - self.intended

    @property
    def route_time(self) -> float | None:
        if self.routed is None or self.sent is None:
            return None
        return self.routed - self.sent

    @property
    def time_to_headers(self) -> float | None:
        """From the request to the worker or server (after routing) until its headers."""
        start = self.routed if self.routed is not None else self.sent
        return None if self.headers is None or start is None else self.headers - start

    def gaps(self) -> list[float]:
        """Inter-token gaps (one per pair of successive token events)."""
        return [b - a for a, b in zip(self.tokens, self.tokens[1:], strict=False)]

    def tpot(self) -> float | None:
        """Time per output token after the first, from the server's token count."""
        count = self.output_tokens or len(self.tokens)
        if count < 2 or self.first_token is None or not self.tokens:
            return None
        return (self.tokens[-1] - self.first_token) / (count - 1)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["tokens"] = [round(t, 6) for t in self.tokens]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RequestRecord:
        return cls(**data)
