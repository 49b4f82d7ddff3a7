"""Issuing tickets: number, sign, and count the cost as in flight on the chosen worker."""

from __future__ import annotations

import math
from typing import Any

from protocol import SigningKey, sign_ticket
from router.registry import PendingTicket, WorkerRecord, WorkerRegistry

__all__ = ["TicketIssuer"]


class TicketIssuer:
    def __init__(self, key: SigningKey, registry: WorkerRegistry, *, ttl_s: float) -> None:
        self._key = key
        self._registry = registry
        self._ttl_s = ttl_s

    @property
    def key(self) -> SigningKey:
        return self._key

    def issue(
        self, worker: WorkerRecord, *, endpoint: str, cost: float, request_idx: int, now: float
    ) -> dict[str, Any]:
        expires_at = now + self._ttl_s
        fields = {
            "cost": _json_number(cost),
            "endpoint": endpoint,
            "reqnum": worker.take_reqnum(),
            "url": worker.url,
            "request_idx": request_idx,
            "exp": math.ceil(expires_at),
            "kid": self._key.kid,
        }
        self._registry.add_pending(worker, PendingTicket(cost, now, expires_at))
        return sign_ticket(self._key.private_key, fields)


def _json_number(value: float) -> int | float:
    """Whole numbers go out as JSON integers, as clients sent them (`100`, not `100.0`)."""
    return int(value) if value.is_integer() else value
