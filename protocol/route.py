"""The `/route/` request and its answer (architecture §4.1): a signed `Ticket` for a worker, or
`RouteWaiting`, "no worker ready yet, ask again".

    answer = parse_route_answer(json.loads(body))      # a client
    match answer:
        case Ticket():       post to answer.worker_url(path) with answer.worker_body(payload)
        case RouteWaiting(): poll again with answer.request_idx

The router writes either with `encode_route_answer`: a ticket exactly as it signed it.
"""

from __future__ import annotations

import math
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator

from protocol.tickets import Ticket

__all__ = [
    "MAX_COST",
    "RouteAnswer",
    "RouteRequest",
    "RouteWaiting",
    "encode_route_answer",
    "parse_route_answer",
]

MAX_COST = 1_000_000.0
"""The largest workload one ticket may pay for; anything above is a client mistake."""


class RouteRequest(BaseModel):
    """What a client asks the router for: a ticket to spend `cost` on `endpoint`."""

    model_config = ConfigDict(extra="ignore")

    endpoint: StrictStr = Field(min_length=1, max_length=256)
    cost: float = Field(default=100.0, description="workload the request will use, in tokens")
    request_idx: StrictInt | None = Field(default=None, ge=0, le=2**63 - 1)
    api_key: StrictStr | None = None
    avoid: list[StrictStr] = Field(
        default_factory=list,
        max_length=64,
        description="worker URLs to skip while another worker is ready (a retry after a failure)",
    )
    session: StrictStr | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="a session key: the same key goes to the same worker while it is not busy",
    )

    @field_validator("cost", mode="before")
    @classmethod
    def _cost_is_a_number(cls, cost: object) -> object:
        if isinstance(cost, bool | str):
            raise ValueError("cost must be a JSON number (tokens), not a string or boolean")
        return cost

    @field_validator("cost")
    @classmethod
    def _cost_in_range(cls, cost: float) -> float:
        if not math.isfinite(cost) or cost <= 0 or cost > MAX_COST:
            raise ValueError(f"cost must be a finite number > 0 and <= {MAX_COST:g}")
        return cost


class RouteWaiting(BaseModel):
    """The answer when no worker is ready yet: poll `/route/` again, with its `request_idx`
    when it gave one (ours always does; Vast.ai's documented answer may carry only `endpoint`
    and `status`). Its fields are declared in the order the router writes them."""

    model_config = ConfigDict(frozen=True)

    endpoint: str | None = None
    status: Any
    """The router's workers by state, as it sent them (shown in messages only)."""
    request_idx: StrictInt | None = Field(default=None, ge=0, le=2**63 - 1)


RouteAnswer = Ticket | RouteWaiting
"""What `/route/` answers with status 200."""


def parse_route_answer(data: object) -> RouteAnswer:
    """A `/route/` answer from its JSON: a ticket when it names a worker (`url`, parsed by
    `Ticket.parse`), else the wait-and-poll answer. ValueError (pydantic's ValidationError) when
    it is neither: a ticket that is not valid says why, and is never taken for a wait."""
    if isinstance(data, dict) and "url" in data:
        return Ticket.parse(data)
    return RouteWaiting.model_validate(data)


def encode_route_answer(answer: RouteAnswer) -> bytes:
    """The JSON body of a `/route/` answer: a ticket's fields exactly as they were signed, or
    the wait with every field (compact, as the router has always written them)."""
    if isinstance(answer, Ticket):
        return answer.to_json()
    return orjson.dumps(answer.model_dump())
