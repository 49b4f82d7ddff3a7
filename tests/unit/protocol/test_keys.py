from __future__ import annotations

import re

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from protocol import KeySet, SigningKey, key_id, load_public_key, public_key_pem


def test_key_id_is_stable_short_hex() -> None:
    key = SigningKey.generate()
    assert re.fullmatch(r"[0-9a-f]{16}", key.kid)
    assert key_id(key.public_key) == key.kid
    assert SigningKey.generate().kid != key.kid


def test_private_key_pem_round_trip_keeps_the_kid() -> None:
    key = SigningKey.generate()
    assert SigningKey.from_pem(key.to_pem()).kid == key.kid


def test_published_key_loads_back_to_the_same_public_key() -> None:
    key = SigningKey.generate()
    published = key.published()
    assert published.alg == "Ed25519"
    assert key_id(load_public_key(published.public_key)) == key.kid
    assert KeySet(keys=[published]).model_dump()["keys"][0]["kid"] == key.kid


def test_load_public_key_refuses_rsa() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ValueError, match="Ed25519"):
        load_public_key(pem)


def test_public_key_pem_is_spki() -> None:
    pem = public_key_pem(SigningKey.generate().public_key)
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
