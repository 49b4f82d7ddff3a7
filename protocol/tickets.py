"""Routing tickets (`auth_data`): the fields, their canonical bytes, signing and verifying.

A router signs a ticket for one request to one worker; the PyWorker on that worker verifies
it before the payload may reach the backend (architecture §4.2). The native scheme is Ed25519
over the canonical bytes of every field except `signature`:

    json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

Values are signed with the JSON types they travel with, so a verifier must compute the bytes
from the mapping it received, never from a re-serialised model (where `100` may become `100.0`).

Both hot paths use libsodium (PyNaCl), standard Ed25519 (RFC 8032): `TicketSigner` signs with it
(Ed25519 signatures are deterministic, so its signatures are byte for byte those of
`cryptography`'s `sign`, a test checks it; about 14 us instead of 20 us per ticket on the build
machine, a router's largest cost per ticket), and the worker verifies with it (about 2/3 of
OpenSSL's time). Keys are still generated, stored and published with `cryptography`.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from nacl.bindings import crypto_sign, crypto_sign_BYTES, crypto_sign_seed_keypair
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

__all__ = [
    "SIGNATURE_FIELD",
    "AuthData",
    "TicketSigner",
    "canonical_bytes",
    "decode_signature",
    "sign_ticket",
    "verify_ticket_signature",
]

SIGNATURE_FIELD = "signature"


class AuthData(BaseModel):
    """The typed view of a ticket. Unknown extra fields are kept (and covered by the signature)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    signature: StrictStr
    cost: StrictInt | StrictFloat = Field(
        description="workload units (tokens) this ticket pays for"
    )
    endpoint: StrictStr
    reqnum: StrictInt = Field(description="per-worker sequence number issued by the router")
    url: StrictStr = Field(description="base URL of the worker this ticket is valid for")
    request_idx: StrictInt
    exp: StrictInt | StrictFloat = Field(description="expiry, unix seconds")
    kid: StrictStr = Field(description="id of the key that signed this ticket")


def canonical_bytes(fields: Mapping[str, Any]) -> bytes:
    """The bytes a ticket's signature covers: every field but `signature`, as canonical JSON.

    Raises ValueError for values JSON cannot carry exactly (NaN, infinities).
    """
    unsigned = (
        {key: value for key, value in fields.items() if key != SIGNATURE_FIELD}
        if SIGNATURE_FIELD in fields
        else fields
    )
    for key, value in unsigned.items():
        kind = type(value)
        if not (
            type(key) is str
            and key.isascii()
            and (kind is int or (kind is str and value.isascii()))
        ):
            break
    else:
        try:  # the same bytes as json.dumps below for ASCII text and integers, 10x faster
            return orjson.dumps(unsigned, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass  # an integer beyond 64 bits: json.dumps carries it
    text = json.dumps(
        unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def _check_finite(fields: Mapping[str, Any]) -> None:
    for key, value in fields.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"ticket field {key!r} must be finite, got {value!r}")


def sign_ticket(private_key: Ed25519PrivateKey, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Return `fields` plus a base64 Ed25519 `signature` over their canonical bytes."""
    _check_finite(fields)
    signature = private_key.sign(canonical_bytes(fields))
    return {**fields, SIGNATURE_FIELD: base64.b64encode(signature).decode("ascii")}


class TicketSigner:
    """One Ed25519 key, ready to sign many tickets: its libsodium secret is derived once."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self.private_key = private_key
        _, self._secret = crypto_sign_seed_keypair(private_key.private_bytes_raw())

    def sign(self, fields: dict[str, Any]) -> dict[str, Any]:
        """`fields` (the same dict) plus a base64 `signature` over their canonical bytes."""
        _check_finite(fields)
        signed = crypto_sign(canonical_bytes(fields), self._secret)  # signature + message
        fields[SIGNATURE_FIELD] = base64.b64encode(signed[:crypto_sign_BYTES]).decode("ascii")
        return fields


def decode_signature(signature: str) -> bytes | None:
    """Decode a base64 signature; None when it is not valid base64."""
    try:
        return base64.b64decode(signature.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        return None


def verify_ticket_signature(public_key: Ed25519PublicKey, ticket: Mapping[str, Any]) -> bool:
    """True when `ticket["signature"]` is a valid Ed25519 signature of the ticket's other fields."""
    signature = ticket.get(SIGNATURE_FIELD)
    if not isinstance(signature, str):
        return False
    raw = decode_signature(signature)
    if raw is None:
        return False
    try:
        message = canonical_bytes(ticket)
    except (TypeError, ValueError):
        return False
    # libsodium verifies in about two thirds of OpenSSL's time here, and is at least as strict
    # (it also refuses small-order keys and non-canonical points); the bytes are the same.
    try:
        VerifyKey(public_key.public_bytes_raw()).verify(message, raw)
    except (BadSignatureError, ValueError):  # ValueError: not 64 bytes of signature
        return False
    return True
