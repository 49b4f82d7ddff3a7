"""Tickets for the PyWorker's verifier tests: keys, a verifier for each scheme, signed tickets."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from protocol import SigningKey, sign_ticket
from protocol.vast_tickets import VastVariant, rsa_key_id, sign_vast_ticket
from pyworker.errors import TicketRejected
from pyworker.tickets.verifier import PublicKey, TicketScheme, TicketVerifier

URL = "http://10.0.0.5:3000"
ENDPOINT = "default"
EPOCH = "0123456789abcdef"
NOW = 1_800_000_000.0
SKEW = 5.0
ED_KEY = SigningKey.generate()
ED_OTHER = SigningKey.generate()
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
VARIANT = {TicketScheme.VAST: VastVariant.LEGACY, TicketScheme.VAST_URL: VastVariant.URL}


def verifier(
    scheme: TicketScheme = TicketScheme.ED25519, window: int = 64, epoch: str = EPOCH
) -> TicketVerifier:
    """The verifier of the worker at `URL` serving `ENDPOINT`, started as `epoch`, at `NOW`,
    knowing the scheme's key (`ED_KEY` or `RSA_KEY`), with a `SKEW` allowance and a replay
    window of `window` reqnums."""
    keys: dict[str, PublicKey] = (
        {rsa_key_id(RSA_KEY.public_key()): RSA_KEY.public_key()}
        if scheme.uses_rsa
        else {ED_KEY.kid: ED_KEY.public_key}
    )
    return TicketVerifier(
        URL,
        keys,
        endpoint=ENDPOINT,
        clock=lambda: NOW,
        scheme=scheme,
        clock_skew_s=SKEW,
        replay_window=window,
        epoch=epoch,
    )


def issue(
    scheme: TicketScheme = TicketScheme.ED25519, *, other_key: bool = False, **overrides: Any
) -> dict[str, Any]:
    """A ticket of `scheme` for `URL` and `ENDPOINT`, cost 100, reqnum 1, valid for 60 s from
    `NOW`, with `overrides`; signed with the scheme's key, or with another one (`other_key`).
    An Ed25519 ticket names `ED_KEY`'s kid and the epoch `EPOCH` unless they are among the
    overrides."""
    fields: dict[str, Any] = {
        "cost": 100,
        "endpoint": ENDPOINT,
        "reqnum": 1,
        "url": URL,
        "request_idx": 1,
        "exp": NOW + 60,
    }
    fields.update(overrides)
    if scheme.uses_rsa:
        key = RSA_OTHER if other_key else RSA_KEY
        return sign_vast_ticket(key, fields, VARIANT[scheme])
    signer = ED_OTHER if other_key else ED_KEY
    return sign_ticket(signer.private_key, {"kid": ED_KEY.kid, "epoch": EPOCH, **fields})


def refused(check: TicketVerifier, raw: object, workload: float = 1) -> TicketRejected:
    """The refusal `check` raises for the ticket `raw` and `workload`."""
    with pytest.raises(TicketRejected) as caught:
        check.verify(raw, workload)
    return caught.value
