"""Sealing what a router keeps in a shared store: whoever reads the store without the routers'
secret learns nothing from a sealed value and cannot forge one.

The key is BLAKE2b of the secret (`state_secret`, 32 characters or more), personalised for this
use; a value is sealed with libsodium's secretbox (XSalsa20-Poly1305, a fresh random nonce per
value). Pure: no I/O.
"""

from __future__ import annotations

import nacl.exceptions
import nacl.hash
import nacl.secret
from nacl.encoding import RawEncoder

__all__ = ["SealError", "Sealer"]

_PERSON = b"tgis-state-v1"  # at most 16 bytes: BLAKE2b's personalisation


class SealError(Exception):
    """A sealed value that this secret cannot open: another secret sealed it, or it was
    altered."""


class Sealer:
    def __init__(self, secret: str) -> None:
        if len(secret) < 32:
            raise ValueError("the state secret must be 32 characters or more")
        key = nacl.hash.blake2b(
            secret.encode(),
            digest_size=nacl.secret.SecretBox.KEY_SIZE,
            person=_PERSON,
            encoder=RawEncoder,
        )
        self._box = nacl.secret.SecretBox(key)

    def seal(self, plain: bytes) -> bytes:
        return bytes(self._box.encrypt(plain))

    def open(self, sealed: bytes) -> bytes:
        """The plain value; SealError if this secret did not seal it or it was altered."""
        try:
            return self._box.decrypt(sealed)
        except nacl.exceptions.CryptoError:
            raise SealError("a sealed value this state secret cannot open") from None
