"""Issuing tickets: number, sign, and count the cost as in flight on the chosen worker.

Three schemes (`TicketScheme`): the native Ed25519 one (every field signed, with `exp`, the
signing key's `kid`, and the worker's `epoch`: the start of the worker its last report named),
and Vast's two RSA variants, which carry exactly the fields Vast's router sends (`cost`,
`endpoint`, `reqnum`, `url`, `request_idx`) so Vast's PyWorker accepts them. Either way
the result is a `Ticket`: the signed fields, in the order they were written.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from protocol import SigningKey, Ticket
from protocol.ticket_scheme import TicketScheme
from protocol.vast_tickets import sign_vast_ticket
from router.keys.reqnums import ReqnumHighWater
from router.keys.ring import KeyAlg, KeyRing, RingKey
from router.routing.registry import PendingTicket, WorkerRecord, WorkerRegistry

__all__ = ["ReqnumSource", "TicketIssuer", "TicketScheme", "key_alg"]

ReqnumSource = Callable[[WorkerRecord, float], int]
"""The next reqnum for a ticket to `worker` at `now`."""


def key_alg(scheme: TicketScheme) -> KeyAlg:
    """The kind of key a router signs `scheme`'s tickets with."""
    return KeyAlg.RSA if scheme.uses_rsa else KeyAlg.ED25519


class TicketIssuer:
    def __init__(
        self,
        key: SigningKey | KeyRing,
        registry: WorkerRegistry,
        *,
        ttl_s: float,
        scheme: TicketScheme = TicketScheme.ED25519,
        high_water: ReqnumHighWater | None = None,
        reqnums: ReqnumSource | None = None,
    ) -> None:
        """`reqnums`: where a ticket's number comes from (routers on shared state reserve them
        in blocks, `router.state.reqnums`); default: the worker's record counts them."""
        if isinstance(key, SigningKey):
            key = KeyRing([RingKey(key.private_key, signs_from=0.0)], ttl_s=ttl_s)
        self.ring = key
        self.scheme = scheme
        self._registry = registry
        self._ttl_s = ttl_s
        self._high_water = high_water
        self._reqnums = reqnums

    def issue(
        self, worker: WorkerRecord, *, endpoint: str, cost: float, request_idx: int, now: float
    ) -> Ticket:
        expires_at = now + self._ttl_s
        signer = self.ring.signing_key(now)
        reqnum = worker.take_reqnum() if self._reqnums is None else self._reqnums(worker, now)
        fields: dict[str, Any] = {
            "cost": _json_number(cost),
            "endpoint": endpoint,
            "reqnum": reqnum,
            "url": worker.url,
            "request_idx": request_idx,
        }
        ticket = Ticket(self._sign(signer, fields, expires_at, worker.epoch))
        if self._high_water is not None:
            self._high_water.issued()
        worker.add_pending(PendingTicket(cost, now, expires_at, reqnum, request_idx))
        return ticket

    def _sign(
        self, signer: RingKey, fields: dict[str, Any], expires_at: float, epoch: str
    ) -> dict[str, Any]:
        private = signer.private_key
        if isinstance(private, RSAPrivateKey):
            return sign_vast_ticket(private, fields, self.scheme.vast_variant)
        fields["exp"] = math.ceil(expires_at)
        fields["kid"] = signer.kid
        fields["epoch"] = epoch
        return signer.signer.sign(fields)


def _json_number(value: float) -> int | float:
    """Whole numbers go out as JSON integers, as clients sent them (`100`, not `100.0`)."""
    return int(value) if float(value).is_integer() else value
