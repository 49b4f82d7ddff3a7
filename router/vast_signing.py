"""Vast.ai's RSA ticket scheme on the router side: the key, kept in the state directory, and
the signer that turns ticket fields into a ticket Vast's PyWorker accepts.

With `ticket_scheme` set to `vast` (Vast's PyWorker v2 message: cost, endpoint, reqnum, url)
or `vast-url` (the `vastai` package's PyWorker: {url} only), the router signs with this RSA
key and serves its public half as PEM at `/pubkey/`, where both PyWorkers fetch it.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from protocol.vast_tickets import VastVariant, rsa_key_id, rsa_public_key_pem, sign_vast_ticket

__all__ = ["RSA_KEY_FILE", "VastSigner", "load_or_create_rsa_key", "variant_for_scheme"]

log = logging.getLogger(__name__)

RSA_KEY_FILE = "vast-rsa-signing-key.pem"
RSA_KEY_BITS = 2048


def variant_for_scheme(scheme: str) -> VastVariant | None:
    """The Vast message variant a `ticket_scheme` setting names; None for the native scheme."""
    return {"vast": VastVariant.LEGACY, "vast-url": VastVariant.URL}.get(scheme)


class VastSigner:
    def __init__(self, private_key: RSAPrivateKey, variant: VastVariant) -> None:
        self._private_key = private_key
        self._variant = variant
        self.public_pem = rsa_public_key_pem(private_key.public_key())
        self.kid = rsa_key_id(private_key.public_key())

    @property
    def variant(self) -> VastVariant:
        return self._variant

    def sign(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        return sign_vast_ticket(self._private_key, fields, self._variant)


def load_or_create_rsa_key(state_dir: Path) -> RSAPrivateKey:
    """The router's RSA key: read from the state directory, or created there (mode 0600,
    written atomically, so two routers started at once agree on one key)."""
    path = state_dir / RSA_KEY_FILE
    if path.exists():
        return _load(path.read_bytes())
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor, temp_name = tempfile.mkstemp(dir=state_dir, prefix=".rsa-key-")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)
        os.chmod(temp_name, 0o600)
        os.link(temp_name, path)  # fails if another process created the key first
    except FileExistsError:
        return _load(path.read_bytes())
    finally:
        os.unlink(temp_name)
    log.info(
        "created a new RSA ticket signing key %s in %s", rsa_key_id(key.public_key()), state_dir
    )
    return key


def _load(pem: bytes) -> RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, RSAPrivateKey):
        raise ValueError(f"expected an RSA private key, got {type(key).__name__}")
    return key
