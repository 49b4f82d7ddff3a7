"""Vast.ai's ticket scheme: RSA PKCS#1 v1.5 over SHA-256 of a JSON message (architecture §4.2).

Vast's router signs, and its PyWorker verifies, one of two messages built from `auth_data`:

    legacy (PyWorker v2):  json.dumps({"cost", "endpoint", "reqnum", "url"} in that order, indent=4)
    url (vastai SDK 1.1):  json.dumps({"url": url}, indent=4, sort_keys=True)

Both use Python's default separators and `ensure_ascii`, and keep every value with the JSON type
it arrived with (a `cost` of `100` is not `100.0`), so a verifier must build the message from the
mapping it received. The signature travels as base64. Pure: no I/O, no imports of any service.
A Vast ticket's fields are checked by `protocol.tickets.TicketFields` (it names no key and no
expiry of its own).

The `url` variant binds only the worker URL: cost, reqnum and endpoint can be changed by
whoever holds a ticket. Prefer `legacy` (or the native Ed25519 scheme) where you can choose.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping
from enum import StrEnum
from json.encoder import encode_basestring_ascii
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

__all__ = [
    "LEGACY_FIELDS",
    "VastVariant",
    "load_rsa_public_key",
    "rsa_key_id",
    "rsa_public_key_pem",
    "sign_vast_ticket",
    "vast_message",
    "verify_vast_signature",
]

LEGACY_FIELDS = ("cost", "endpoint", "reqnum", "url")
"""The fields Vast's v2 PyWorker signs, in the order it serialises them."""


class VastVariant(StrEnum):
    LEGACY = "legacy"  # cost, endpoint, reqnum, url in that order, indent=4
    URL = "url"  # {"url": ...}, indent=4, sort_keys=True


def vast_message(variant: VastVariant, ticket: Mapping[str, Any]) -> bytes:
    """The bytes Vast signs for `ticket`; KeyError when a signed field is missing."""
    names = ("url",) if variant is VastVariant.URL else LEGACY_FIELDS
    fields = {name: ticket[name] for name in names}
    fast = _indented_scalars(fields)
    if fast is not None:
        return fast
    if variant is VastVariant.URL:
        return json.dumps(fields, indent=4, sort_keys=True).encode("utf-8")
    return json.dumps(fields, indent=4).encode("utf-8")


# With `indent`, json.dumps runs its pure-Python encoder (7 µs for a legacy message); strings
# and integers, all a ticket holds, are written here the way it writes them (1 µs).
_SCALAR_ENCODERS: dict[type, Callable[[Any], str]] = {
    str: encode_basestring_ascii,
    int: int.__repr__,
}


def _indented_scalars(fields: Mapping[str, Any]) -> bytes | None:
    """`json.dumps(fields, indent=4)` when every value is a str or an int, else None."""
    lines = []
    for name, value in fields.items():
        encode = _SCALAR_ENCODERS.get(type(value))
        if encode is None:
            return None
        lines.append(f'    "{name}": {encode(value)}')
    return ("{\n" + ",\n".join(lines) + "\n}").encode("ascii")


def sign_vast_ticket(
    private_key: RSAPrivateKey, fields: Mapping[str, Any], variant: VastVariant
) -> dict[str, Any]:
    """Return `fields` plus the base64 signature Vast's router would put in `signature`."""
    raw = private_key.sign(vast_message(variant, fields), padding.PKCS1v15(), hashes.SHA256())
    return {**fields, "signature": base64.b64encode(raw).decode("ascii")}


def verify_vast_signature(
    public_key: RSAPublicKey, ticket: Mapping[str, Any], variant: VastVariant
) -> bool:
    """True when `ticket["signature"]` is valid for `public_key` over the variant's message."""
    signature = ticket.get("signature")
    if not isinstance(signature, str):
        return False
    try:
        raw = base64.b64decode(signature.encode("ascii"), validate=True)
        message = vast_message(variant, ticket)
    except (binascii.Error, UnicodeEncodeError, KeyError, TypeError, ValueError):
        return False
    try:
        public_key.verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def load_rsa_public_key(pem: str | bytes) -> RSAPublicKey:
    """Parse the PEM Vast's router serves at `/pubkey/`; ValueError for anything but RSA."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, RSAPublicKey):
        raise ValueError(f"expected an RSA public key, got {type(key).__name__}")
    return key


def rsa_public_key_pem(public_key: RSAPublicKey) -> str:
    pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode("ascii")


def rsa_key_id(public_key: RSAPublicKey) -> str:
    """A short, stable id for an RSA key: the first 16 hex digits of SHA-256 of its DER."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()[:16]
