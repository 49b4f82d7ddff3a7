"""Asking the router for a worker, as pure logic: the request body, what an answer means, and when
to ask again. The I/O lives in `client._async`; nothing here touches the network or sleeps.

The router answers `/route/` in one of two ways (architecture §4.1): a signed `Ticket` whose `url`
names the worker to post to, or "no worker ready yet" (`Waiting`) with a `request_idx` to poll
again with. Polling starts after 1 s and backs off with jitter up to 5 s, until a deadline.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pydantic

from client.errors import ProtocolError, invalid_request
from protocol.route import RouteRequest, RouteWaiting, parse_route_answer
from protocol.tickets import Ticket

__all__ = [
    "PollPolicy",
    "PollSchedule",
    "Ticket",
    "Waiting",
    "interpret_route_answer",
    "route_body",
]


def route_body(
    endpoint: str, cost: int, request_idx: int | None = None, avoid: Sequence[str] = ()
) -> dict[str, Any]:
    """The JSON body of `POST /route/`. The API key travels in a header, never in the body.
    `avoid` names workers that just failed this request: the router prefers any other."""
    try:
        RouteRequest(endpoint=endpoint, cost=cost, request_idx=request_idx, avoid=list(avoid))
    except pydantic.ValidationError as exc:
        raise invalid_request("route request", exc) from None
    body: dict[str, Any] = {"endpoint": endpoint, "cost": cost}
    if request_idx is not None:
        body["request_idx"] = request_idx
    if avoid:
        body["avoid"] = list(avoid)
    return body


Waiting = RouteWaiting
"""A "no worker ready yet" answer: poll again, with its `request_idx` when it gave one."""


def interpret_route_answer(answer: object) -> Ticket | Waiting:
    """A 200 answer of `/route/` (`protocol.parse_route_answer`): a ticket for an http(s)
    worker, or a "wait and poll again" answer (the workers' `status`, and usually the
    `request_idx` to poll with)."""
    if not isinstance(answer, dict):
        raise ProtocolError("the route answer is not a JSON object", origin="router", status=200)
    try:
        parsed = parse_route_answer(answer)
    except ValueError:
        raise ProtocolError(
            "the route answer is neither a ticket (a worker `url`, `signature`, `cost`, "
            "`endpoint` and `reqnum`) nor the workers' `status` (with an optional whole-number "
            "`request_idx`) of a wait-and-poll answer",
            origin="router",
            status=200,
        ) from None
    if isinstance(parsed, Ticket) and not parsed.url.startswith(("http://", "https://")):
        raise ProtocolError(
            f"the ticket's worker url is not an http(s) URL: {parsed.url!r}",
            origin="router",
            status=200,
        )
    return parsed


@dataclass(frozen=True)
class PollPolicy:
    """How long and how often to poll `/route/` while no worker is ready (scale-from-zero)."""

    timeout: float = 120.0
    """Give up (NoCapacityError) when no ticket came within this many seconds."""
    initial_delay: float = 1.0
    max_delay: float = 5.0
    factor: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.initial_delay <= self.max_delay:
            raise ValueError("PollPolicy needs 0 < initial_delay <= max_delay")
        if self.factor < 1 or self.timeout < 0:
            raise ValueError("PollPolicy needs factor >= 1 and timeout >= 0")

    def delays(self, rng: random.Random) -> Iterator[float]:
        """Endless jittered exponential backoff: `initial_delay` first, then each delay drawn
        uniformly between `initial_delay` and `factor` times the previous one, capped."""
        delay = self.initial_delay
        while True:
            yield delay
            delay = rng.uniform(self.initial_delay, min(self.max_delay, delay * self.factor))


@dataclass
class PollSchedule:
    """One request's polling: the next delay, shortened to fit the deadline, or None when the
    deadline has passed. The clock starts when the schedule is made."""

    policy: PollPolicy
    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], float] = time.monotonic
    _deadline: float = field(init=False)
    _delays: Iterator[float] = field(init=False)

    def __post_init__(self) -> None:
        self._deadline = self.clock() + self.policy.timeout
        self._delays = self.policy.delays(self.rng)

    def next_delay(self) -> float | None:
        remaining = self._deadline - self.clock()
        if remaining <= 0:
            return None
        return min(next(self._delays), remaining)
