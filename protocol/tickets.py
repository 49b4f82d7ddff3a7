"""Routing tickets (`auth_data`): the fields, their canonical bytes, signing and verifying.

A router signs a ticket for one request to one worker; the PyWorker on that worker verifies
it before the payload may reach the backend (architecture §4.2). The native scheme is Ed25519
over the canonical bytes of every field except `signature`:

    json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

Values are signed with the JSON types they travel with, so a verifier must compute the bytes
from the mapping it received, never from a re-serialised model (where `100` may become `100.0`).
Signatures are made with `cryptography` and verified with libsodium (PyNaCl), the faster of the
two on the worker's hot path; both are standard Ed25519 (RFC 8032).
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
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

__all__ = [
    "SIGNATURE_FIELD",
    "AuthData",
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
    unsigned = {key: value for key, value in fields.items() if key != SIGNATURE_FIELD}
    if all(_plain(key) and _plain(value) for key, value in unsigned.items()):
        try:  # the same bytes as json.dumps below for ASCII text and integers, 10x faster
            return orjson.dumps(unsigned, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass  # an integer beyond 64 bits: json.dumps carries it
    text = json.dumps(
        unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def _plain(value: object) -> bool:
    kind = type(value)
    return kind is int or (kind is str and value.isascii())  # type: ignore[attr-defined]


def sign_ticket(private_key: Ed25519PrivateKey, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Return `fields` plus a base64 Ed25519 `signature` over their canonical bytes."""
    for key, value in fields.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"ticket field {key!r} must be finite, got {value!r}")
    signature = private_key.sign(canonical_bytes(fields))
    return {**fields, SIGNATURE_FIELD: base64.b64encode(signature).decode("ascii")}


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
