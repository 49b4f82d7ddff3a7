"""Ticket parsing and verification: `protocol.Ticket.parse`, `canonical_bytes` and the
PyWorker's `TicketVerifier`, in each signature scheme.

The input is a JSON document, taken as a ticket (`auth_data`). Contract:

- `Ticket.parse` raises only ValueError (pydantic's ValidationError is one);
- `canonical_bytes` gives the bytes its docstring names, json.dumps' canonical form (its fast
  path included), or raises ValueError where json.dumps refuses the value;
- a verifier raises only `TicketRejected`, with a 401 or a 403, on the ticket as it came and on
  the same ticket signed with the worker's key; a ticket it accepts it refuses the second
  time (`replayed`), in every scheme that signs the reqnum.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key

from fuzz.inputs import MISSING, check_status, json_value, reference_json
from protocol import Ticket, canonical_bytes, sign_ticket
from protocol.ticket_scheme import TicketScheme
from protocol.vast_tickets import sign_vast_ticket
from pyworker.errors import TicketRejected
from pyworker.tickets.verifier import PublicKey, TicketVerifier

__all__ = ["check"]


_ED25519 = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
_RSA = generate_private_key(public_exponent=65537, key_size=1024)  # small: fast to sign
_KID = "fuzz"
_NOW = 1_000_000_000.0


def check(data: bytes) -> None:
    raw = json_value(data)
    if raw is MISSING:
        return
    _check_parse(raw)
    if not isinstance(raw, dict):
        _expect_rejected(_verifier(TicketScheme.ED25519, {}), raw)
        return
    _check_canonical_bytes(raw)
    for scheme in TicketScheme:
        verifier = _verifier(scheme, raw)
        _expect_rejected(verifier, raw)
        signed = _signed(scheme, raw)
        if signed is not None:
            _check_signed(verifier, signed)


def _check_parse(raw: Any) -> None:
    with contextlib.suppress(ValueError):
        Ticket.parse(raw)


def _check_canonical_bytes(raw: dict[str, Any]) -> None:
    unsigned = {key: value for key, value in raw.items() if key != "signature"}
    expected = reference_json(
        unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    try:
        got = canonical_bytes(raw)
    except ValueError:
        assert expected is None or not _utf8(expected), "canonical_bytes refused a JSON value"
        return
    assert expected is not None, "canonical_bytes accepted what json.dumps refuses"
    assert got == expected.encode("utf-8"), "canonical_bytes differs from json.dumps"


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, which json reads from "\ud800"
        return False
    return True


def _verifier(scheme: TicketScheme, raw: Mapping[str, Any]) -> TicketVerifier:
    """A worker that the ticket names (its url, endpoint and epoch, where they are text), so
    a signed ticket gets past the checks that compare them."""

    def text(name: str, default: str) -> str:
        value = raw.get(name)
        return value if isinstance(value, str) else default

    keys: dict[str, PublicKey] = {_KID: _ED25519.public_key()}
    if scheme.uses_rsa:
        keys = {"rsa": _RSA.public_key()}
    return TicketVerifier(
        text("url", "http://worker"),
        keys,
        endpoint=text("endpoint", "fuzz"),
        clock=lambda: _NOW,
        scheme=scheme,
        replay_window=64,
        epoch=text("epoch", "fuzz-epoch") or "fuzz-epoch",
    )


def _signed(scheme: TicketScheme, raw: dict[str, Any]) -> dict[str, Any] | None:
    """`raw` signed as the scheme's router would sign it; None where it cannot be signed (a
    value no JSON carries, or a field the scheme signs is missing)."""
    try:
        if scheme.uses_rsa:
            return sign_vast_ticket(_RSA, raw, scheme.vast_variant)
        return sign_ticket(_ED25519, {**raw, "kid": _KID})
    except (KeyError, ValueError, UnicodeEncodeError):
        return None


def _check_signed(verifier: TicketVerifier, signed: dict[str, Any]) -> None:
    try:
        facts = verifier.verify(signed, workload=1)
    except TicketRejected as exc:
        check_status(exc, (401, 403))
        return
    assert facts.cost >= 1
    if verifier.scheme.signs_request_fields:
        try:
            verifier.verify(signed, workload=1)
        except TicketRejected as exc:
            reason = exc.reason
        else:
            raise AssertionError(f"a ticket was accepted twice: {json.dumps(signed)[:200]}")
        assert reason == "replayed", f"a second use refused as {reason}"


def _expect_rejected(verifier: TicketVerifier, raw: Any) -> None:
    try:
        verifier.verify(raw, workload=1)
    except TicketRejected as exc:
        check_status(exc, (401, 403))
    else:
        raise AssertionError("a ticket no router signed was accepted")
