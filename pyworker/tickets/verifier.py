"""Ticket checks: the pure rules a PyWorker applies before a payload may reach the backend.

A ticket is accepted only if all of these hold (architecture §4.2), checked in this order:

    1. it has every field, with the right JSON types, its numbers in range  else 401 malformed
    2. it names a key (`kid`) this worker knows              else 401 unknown_key
    3. its signature is valid for that key                   else 401 bad_signature
    4. it has not expired (with a small clock-skew allowance) else 401 expired
    5. its `url` is this worker's public URL                 else 403 wrong_url
    6. its `endpoint` is the endpoint this worker serves     else 403 wrong_endpoint
    7. its `epoch` is this start of this worker's (native)   else 403 wrong_epoch
    8. the payload's workload is at most its `cost`          else 403 cost_too_low
    9. its `reqnum` was not used before (sliding window)     else 403 replayed

The signature scheme is a setting: the native Ed25519 one, or one of Vast's two RSA variants
(`protocol.vast_tickets`). Vast tickets name no key: every RSA key the router published is
tried, and they carry no expiry (an `exp`, when present, is still enforced) and no epoch.
The reqnum is recorded only when every check passed, so a rejected ticket spends nothing.
Each signing key has its own replay window: routers that do not share state number this
worker's tickets each from 1 with keys of their own, and routers that share a key ring share
their numbering too. A key no longer known loses its window (it verifies nothing any more).
`check` (1-7) needs no payload, so the PyWorker runs it before it looks at the payload; `admit`
(8-9) then weighs the payload's workload and spends the reqnum; `verify` is both.

The epoch is drawn afresh each time a verifier is made (each start of the worker) and sent to
the router in every status report; the router writes it into the native tickets it signs for
this worker. A ticket from before a restart names the old epoch, so it is refused although the
replay window, kept in memory, starts empty.

`vast-url` signs the `url` alone, so checks 6, 8 and 9 are advisory there: they catch mistakes,
not a ticket holder, who may write any `endpoint`, `cost` and `reqnum`. Its window therefore
refuses only a number used before within the window, never one below it: otherwise one ticket
with a huge `reqnum` would push every genuine ticket below the window, and lock the worker out.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from pydantic import ValidationError

from protocol import AuthData, TicketFields, verify_ticket_signature
from protocol.ticket_scheme import TicketScheme
from protocol.vast_tickets import verify_vast_signature
from pyworker.errors import TicketRejected
from pyworker.tickets.replay import ReplayVerdict, ReplayWindow

__all__ = [
    "PublicKey",
    "TicketFacts",
    "TicketScheme",
    "TicketVerifier",
    "new_epoch",
    "normalize_url",
]

PublicKey = Ed25519PublicKey | RSAPublicKey
ModelT = TypeVar("ModelT", AuthData, TicketFields)


@dataclass(frozen=True, slots=True)
class TicketFacts:
    """What the checks after the signature need, whichever scheme signed the ticket."""

    cost: float
    url: str
    endpoint: str
    reqnum: int
    exp: float | None
    epoch: str | None
    kid: str
    """The key that signed the ticket: its reqnum is checked in that key's replay window."""


def normalize_url(url: str) -> str:
    return url.strip().rstrip("/").lower()


def new_epoch() -> str:
    """A fresh epoch: 64 random bits, so no two starts of a worker share one."""
    return secrets.token_hex(8)


class TicketVerifier:
    def __init__(
        self,
        worker_url: str,
        keys: Mapping[str, PublicKey],
        *,
        endpoint: str,
        clock: Callable[[], float],
        scheme: TicketScheme = TicketScheme.ED25519,
        clock_skew_s: float = 5.0,
        replay_window: int = 4096,
        epoch: str | None = None,
    ) -> None:
        """The checks of the worker at `worker_url` serving `endpoint`. `epoch`: this start's
        (tests set it); a fresh one by default."""
        self._worker_url = normalize_url(worker_url)
        self._endpoint = endpoint
        self._epoch = epoch if epoch is not None else new_epoch()
        self._scheme = scheme
        self._clock = clock
        self._clock_skew_s = clock_skew_s
        self._replay_window = replay_window
        self._replay: dict[str, ReplayWindow] = {}
        self.set_keys(keys)

    @property
    def scheme(self) -> TicketScheme:
        return self._scheme

    @property
    def epoch(self) -> str:
        """This start's epoch: the worker reports it, and native tickets must name it."""
        return self._epoch

    @property
    def known_kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def current_keys(self) -> dict[str, PublicKey]:
        return dict(self._keys)

    def set_keys(self, keys: Mapping[str, PublicKey]) -> None:
        self._keys = dict(keys)
        self._rsa_keys = {kid: key for kid, key in keys.items() if isinstance(key, RSAPublicKey)}
        self._replay = {kid: window for kid, window in self._replay.items() if kid in self._keys}

    def verify(self, raw: object, workload: float) -> TicketFacts:
        """Return the ticket's facts if it admits `workload`; raise TicketRejected if not."""
        facts = self.check(raw)
        self.admit(facts, workload)
        return facts

    def check(self, raw: object) -> TicketFacts:
        """Checks 1 to 7, which need no payload: the ticket's facts, or TicketRejected.

        Nothing is spent: `admit` then checks the payload's workload and spends the reqnum.
        """
        if not isinstance(raw, Mapping):
            raise TicketRejected(401, "malformed", "`auth_data` must be the ticket from /route/")
        facts = self._check_vast(raw) if self._scheme.uses_rsa else self._check_native(raw)
        self._check_expiry(facts)
        self._check_url(facts)
        self._check_endpoint(facts)
        self._check_epoch(facts)
        return facts

    def admit(self, facts: TicketFacts, workload: float) -> None:
        """Checks 8 and 9 on the facts `check` returned: the cost covers `workload`, and the
        reqnum is new (then recorded); TicketRejected if not."""
        self._check_cost(facts, workload)
        self._spend(facts)

    def _check_native(self, raw: Mapping[str, Any]) -> TicketFacts:
        ticket = _parse(AuthData, raw)
        key = self._keys.get(ticket.kid)
        if not isinstance(key, Ed25519PublicKey):
            raise TicketRejected(
                401, "unknown_key", f"ticket signed by unknown key {ticket.kid!r}: route again"
            )
        if not verify_ticket_signature(key, raw):
            raise TicketRejected(401, "bad_signature", "ticket signature is not valid")
        return TicketFacts(
            ticket.cost,
            ticket.url,
            ticket.endpoint,
            ticket.reqnum,
            ticket.exp,
            ticket.epoch,
            ticket.kid,
        )

    def _check_vast(self, raw: Mapping[str, Any]) -> TicketFacts:
        ticket = _parse(TicketFields, raw)
        if not self._rsa_keys:
            raise TicketRejected(401, "unknown_key", "no router public key loaded yet: retry")
        variant = self._scheme.vast_variant
        kid = next(
            (
                kid
                for kid, key in self._rsa_keys.items()
                if verify_vast_signature(key, raw, variant)
            ),
            None,
        )
        if kid is None:
            raise TicketRejected(401, "bad_signature", "ticket signature is not valid")
        return TicketFacts(
            ticket.cost, ticket.url, ticket.endpoint, ticket.reqnum, ticket.exp, None, kid
        )

    def _check_expiry(self, facts: TicketFacts) -> None:
        if facts.exp is not None and self._clock() > facts.exp + self._clock_skew_s:
            raise TicketRejected(401, "expired", "ticket has expired: route again")

    def _check_url(self, facts: TicketFacts) -> None:
        if normalize_url(facts.url) != self._worker_url:
            raise TicketRejected(403, "wrong_url", "ticket was issued for another worker")

    def _check_endpoint(self, facts: TicketFacts) -> None:
        if facts.endpoint != self._endpoint:
            raise TicketRejected(
                403,
                "wrong_endpoint",
                f"ticket was issued for endpoint {facts.endpoint!r}; "
                f"this worker serves {self._endpoint!r}",
            )

    def _check_epoch(self, facts: TicketFacts) -> None:
        if facts.epoch is not None and facts.epoch != self._epoch:
            raise TicketRejected(
                403, "wrong_epoch", "ticket was issued before this worker restarted: route again"
            )

    def _check_cost(self, facts: TicketFacts, workload: float) -> None:
        if workload > facts.cost:
            raise TicketRejected(
                403,
                "cost_too_low",
                f"request workload {workload:g} exceeds the ticket's cost {facts.cost:g}: "
                "route with cost >= max_new_tokens",
            )

    def _spend(self, facts: TicketFacts) -> None:
        window = self._replay.get(facts.kid)
        if window is None:
            window = self._replay[facts.kid] = ReplayWindow(self._replay_window)
        verdict = window.accept(facts.reqnum)
        if verdict is ReplayVerdict.REPLAYED:
            raise TicketRejected(403, "replayed", "ticket was already used: route again")
        if verdict is ReplayVerdict.TOO_OLD and self._scheme.signs_request_fields:
            raise TicketRejected(403, "replayed", "ticket is too old to be used: route again")


def _parse(model: type[ModelT], raw: Mapping[str, Any]) -> ModelT:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        fields = sorted({str(error["loc"][0]) for error in exc.errors() if error["loc"]})
        detail = ", ".join(fields) or "ticket"
        raise TicketRejected(
            401, "malformed", f"`auth_data` is missing or has invalid fields: {detail}"
        ) from None
