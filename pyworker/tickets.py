"""Ticket checks: the pure rules a PyWorker applies before a payload may reach the backend.

A ticket is accepted only if all of these hold (architecture §4.2), checked in this order:

    1. it has every field, with the right JSON types        else 401 malformed
    2. it names a key (`kid`) this worker knows              else 401 unknown_key
    3. its Ed25519 signature is valid for that key           else 401 bad_signature
    4. it has not expired (with a small clock-skew allowance) else 401 expired
    5. its `url` is this worker's public URL                 else 403 wrong_url
    6. the payload's workload is at most its `cost`          else 403 cost_too_low
    7. its `reqnum` was not used before (sliding window)     else 403 replayed

The reqnum is recorded only when every check passed, so a rejected ticket spends nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from protocol import AuthData, verify_ticket_signature
from pyworker.errors import TicketRejected
from pyworker.replay import ReplayVerdict, ReplayWindow

__all__ = ["TicketVerifier", "normalize_url"]


def normalize_url(url: str) -> str:
    return url.strip().rstrip("/").lower()


class TicketVerifier:
    def __init__(
        self,
        worker_url: str,
        keys: Mapping[str, Ed25519PublicKey],
        *,
        clock: Callable[[], float],
        clock_skew_s: float = 5.0,
        replay_window: int = 4096,
    ) -> None:
        self._worker_url = normalize_url(worker_url)
        self._keys = dict(keys)
        self._clock = clock
        self._clock_skew_s = clock_skew_s
        self._replay = ReplayWindow(replay_window)

    @property
    def known_kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def set_keys(self, keys: Mapping[str, Ed25519PublicKey]) -> None:
        self._keys = dict(keys)

    def verify(self, raw: object, workload: float) -> AuthData:
        """Return the ticket if it admits a request of `workload`; raise TicketRejected if not."""
        if not isinstance(raw, Mapping):
            raise TicketRejected(401, "malformed", "`auth_data` must be the ticket from /route/")
        ticket = self._parse(raw)
        self._check_signature(ticket, raw)
        self._check_expiry(ticket)
        self._check_url(ticket)
        self._check_cost(ticket, workload)
        self._spend(ticket)
        return ticket

    def _parse(self, raw: Mapping[str, Any]) -> AuthData:
        try:
            return AuthData.model_validate(raw)
        except ValidationError as exc:
            fields = sorted({str(error["loc"][0]) for error in exc.errors() if error["loc"]})
            detail = ", ".join(fields) or "ticket"
            raise TicketRejected(
                401, "malformed", f"`auth_data` is missing or has invalid fields: {detail}"
            ) from None

    def _check_signature(self, ticket: AuthData, raw: Mapping[str, Any]) -> None:
        key = self._keys.get(ticket.kid)
        if key is None:
            raise TicketRejected(
                401, "unknown_key", f"ticket signed by unknown key {ticket.kid!r}: route again"
            )
        if not verify_ticket_signature(key, raw):
            raise TicketRejected(401, "bad_signature", "ticket signature is not valid")

    def _check_expiry(self, ticket: AuthData) -> None:
        if self._clock() > ticket.exp + self._clock_skew_s:
            raise TicketRejected(401, "expired", "ticket has expired: route again")

    def _check_url(self, ticket: AuthData) -> None:
        if normalize_url(ticket.url) != self._worker_url:
            raise TicketRejected(403, "wrong_url", "ticket was issued for another worker")

    def _check_cost(self, ticket: AuthData, workload: float) -> None:
        if workload > ticket.cost:
            raise TicketRejected(
                403,
                "cost_too_low",
                f"request workload {workload:g} exceeds the ticket's cost {ticket.cost:g}: "
                "route with cost >= max_new_tokens",
            )

    def _spend(self, ticket: AuthData) -> None:
        verdict = self._replay.accept(ticket.reqnum)
        if verdict is ReplayVerdict.REPLAYED:
            raise TicketRejected(403, "replayed", "ticket was already used: route again")
        if verdict is ReplayVerdict.TOO_OLD:
            raise TicketRejected(403, "replayed", "ticket is too old to be used: route again")
