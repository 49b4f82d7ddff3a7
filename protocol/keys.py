"""Signing keys and how a router publishes them (`/pubkey/` as PEM, `/keys` as a key set).

A key id (`kid`) is derived from the public key itself, so a router and a worker always agree
on it without coordination.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel

__all__ = [
    "KeySet",
    "PublishedKey",
    "SigningKey",
    "key_id",
    "load_public_key",
    "public_key_pem",
]


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short, stable id for a public key: the first 16 hex digits of SHA-256 of its raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    """The SubjectPublicKeyInfo PEM of a public key."""
    pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode("ascii")


def load_public_key(pem: str | bytes) -> Ed25519PublicKey:
    """Parse an Ed25519 public key from PEM; ValueError for anything else."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"expected an Ed25519 public key, got {type(key).__name__}")
    return key


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key with its derived key id."""

    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, pem: bytes) -> SigningKey:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"expected an Ed25519 private key, got {type(key).__name__}")
        return cls(key)

    def to_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def kid(self) -> str:
        return key_id(self.public_key)

    def published(self) -> PublishedKey:
        return PublishedKey(kid=self.kid, public_key=public_key_pem(self.public_key))


class PublishedKey(BaseModel):
    """One public key as `/keys` lists it."""

    kid: str
    alg: Literal["Ed25519", "RSA"] = "Ed25519"
    public_key: str


class KeySet(BaseModel):
    """The body of `GET /keys`: every key whose tickets a worker should accept now."""

    keys: list[PublishedKey]
