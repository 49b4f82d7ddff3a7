"""The router's signing keys, created on first start and kept in its state directory.

The private key file is created with mode 0600 and written atomically, so a crash never
leaves half a key behind and two routers started at once agree on one key. The ring's file
also lists the kids of revoked keys (their private halves are gone), so no start ever brings
one back.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from protocol import SigningKey
from router.keys.ring import KeyAlg, KeyRing, PrivateKey, RingKey, generate_private_key
from router.state_files import write_private

__all__ = [
    "KEY_FILE",
    "RING_FILE",
    "RSA_KEY_FILE",
    "load_key_ring",
    "load_or_create_rsa_key",
    "load_or_create_signing_key",
    "ring_from_bytes",
    "ring_to_bytes",
    "save_key_ring",
]

log = logging.getLogger(__name__)

KEY_FILE = "ticket-signing-key.pem"


def load_or_create_signing_key(state_dir: Path) -> SigningKey:
    path = state_dir / KEY_FILE
    if path.exists():
        return SigningKey.from_pem(path.read_bytes())
    key = SigningKey.generate()
    if _create_once(path, key.to_pem()) != key.to_pem():  # another router made it first
        return SigningKey.from_pem(path.read_bytes())
    log.info("created a new ticket signing key %s in %s", key.kid, state_dir)
    return key


def _create_once(path: Path, pem: bytes) -> bytes:
    """Write `pem` to `path` (0600) unless the file exists; what the file holds after. Linking
    a finished temporary file fails if another process got there first, so two routers started
    at once both end up with the one key on disk."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor, temp_name = tempfile.mkstemp(dir=path.parent, prefix=".key-")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, 0o600)
        os.link(temp_name, path)
    except FileExistsError:
        return path.read_bytes()
    finally:
        os.unlink(temp_name)
    return pem


RSA_KEY_FILE = "ticket-signing-key-rsa.pem"
RING_FILE = "ticket-keys.json"


def load_or_create_rsa_key(state_dir: Path) -> RSAPrivateKey:
    """Vast's scheme: an RSA 2048 key, created on first start like the Ed25519 one."""
    path = state_dir / RSA_KEY_FILE
    pem = path.read_bytes() if path.exists() else None
    if pem is None:
        pem = _create_once(path, _private_pem(generate_private_key(KeyAlg.RSA)))
    loaded = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(loaded, RSAPrivateKey):
        raise ValueError(f"{path} does not hold an RSA private key")
    return loaded


def load_key_ring(state_dir: Path, alg: KeyAlg, *, ttl_s: float) -> KeyRing:
    """The ring saved by the last rotation or revocation, or one key (created on first start;
    a fresh one, saved, if that first key was revoked)."""
    path = state_dir / RING_FILE
    keys: list[RingKey] = []
    revoked: frozenset[str] = frozenset()
    if path.exists():
        stored, revoked = _read_ring(path)
        keys = [key for key in stored if key.alg is alg and key.kid not in revoked]
    if keys:
        return KeyRing(keys, ttl_s=ttl_s, revoked=revoked)
    first = RingKey(_first_key(state_dir, alg), signs_from=0.0)
    if first.kid not in revoked:
        return KeyRing([first], ttl_s=ttl_s, revoked=revoked)
    ring = KeyRing([RingKey(generate_private_key(alg), 0.0)], ttl_s=ttl_s, revoked=revoked)
    save_key_ring(state_dir, ring)
    return ring


def _first_key(state_dir: Path, alg: KeyAlg) -> PrivateKey:
    if alg is KeyAlg.RSA:
        return load_or_create_rsa_key(state_dir)
    return load_or_create_signing_key(state_dir).private_key


def save_key_ring(state_dir: Path, ring: KeyRing) -> None:
    """Write every key of the ring (private, mode 0600) with its signing window, and the kids
    it revoked, atomically."""
    write_private(state_dir / RING_FILE, ring_to_bytes(ring))


def ring_to_bytes(ring: KeyRing) -> bytes:
    """The ring as JSON: every key (its private half, PEM) with its signing window, and the kids
    it revoked. Secret: kept in a 0600 file, or sealed in shared state."""
    entries = [
        {
            "pem": _private_pem(key.private_key).decode("ascii"),
            "signs_from": key.signs_from,
            "signs_until": key.signs_until,
        }
        for key in ring.keys
    ]
    return json.dumps({"keys": entries, "revoked": sorted(ring.revoked)}).encode()


def ring_from_bytes(body: bytes, alg: KeyAlg, *, ttl_s: float) -> KeyRing:
    """The ring `ring_to_bytes` wrote, keeping the keys of `alg`; ValueError if none is left."""
    keys, revoked = _parse_ring(json.loads(body), "the stored ring")
    kept = [key for key in keys if key.alg is alg and key.kid not in revoked]
    return KeyRing(kept, ttl_s=ttl_s, revoked=revoked)


def _read_ring(path: Path) -> tuple[list[RingKey], frozenset[str]]:
    return _parse_ring(json.loads(path.read_text()), str(path))


def _parse_ring(stored: Any, source: str) -> tuple[list[RingKey], frozenset[str]]:
    keys = []
    for entry in stored["keys"]:
        private = serialization.load_pem_private_key(entry["pem"].encode("ascii"), password=None)
        if not isinstance(private, Ed25519PrivateKey | RSAPrivateKey):
            raise ValueError(f"{source}: unsupported key type {type(private).__name__}")
        until = entry.get("signs_until")
        keys.append(RingKey(private, float(entry["signs_from"]), None if until is None else until))
    return keys, frozenset(str(kid) for kid in stored.get("revoked", []))


def _private_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
