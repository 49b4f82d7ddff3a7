"""Issuing tickets: number, sign, and count the cost as in flight on the chosen worker."""

from __future__ import annotations

import math
from typing import Any

from protocol import SigningKey, sign_ticket
from router.registry import PendingTicket, WorkerRecord, WorkerRegistry
from router.vast_signing import VastSigner

__all__ = ["TicketIssuer"]


class TicketIssuer:
    def __init__(
        self,
        key: SigningKey,
        registry: WorkerRegistry,
        *,
        ttl_s: float,
        vast: VastSigner | None = None,
    ) -> None:
        self._key = key
        self._registry = registry
        self._ttl_s = ttl_s
        self._vast = vast

    @property
    def vast(self) -> VastSigner | None:
        """The RSA signer when tickets follow Vast's scheme, else None (native Ed25519)."""
        return self._vast

    @property
    def key(self) -> SigningKey:
        return self._key

    def issue(
        self, worker: WorkerRecord, *, endpoint: str, cost: float, request_idx: int, now: float
    ) -> dict[str, Any]:
        expires_at = now + self._ttl_s
        fields: dict[str, Any] = {
            "cost": _json_number(cost),
            "endpoint": endpoint,
            "reqnum": worker.take_reqnum(),
            "url": worker.url,
            "request_idx": request_idx,
            "exp": math.ceil(expires_at),
        }
        self._registry.add_pending(worker, PendingTicket(cost, now, expires_at))
        if self._vast is not None:
            return self._vast.sign(fields)  # Vast tickets name no key
        return sign_ticket(self._key.private_key, {**fields, "kid": self._key.kid})


def _json_number(value: float) -> int | float:
    """Whole numbers go out as JSON integers, as clients sent them (`100`, not `100.0`)."""
    return int(value) if value.is_integer() else value
