"""The router's signing keys over time: which one signs now, which ones workers must accept.

Rotation overlaps on both sides. A new key is published `lead_s` before it starts signing, so
every worker has fetched it by the time a ticket names it; the key it replaces stops signing at
that moment but stays published for `ttl_s` more (plus a skew allowance), until the last ticket
it signed has expired. Pure logic with an injected `now`; persistence lives in `router.keys.store`,
and rotating the router's ring (written before it is published) in `router.keys.rotation`.

Revocation is at once: a revoked key leaves the ring and is never published again (the ring
remembers its kid). Revoking the key that signs now hands signing at once to the key a rotation
set to follow it, already published; revoking the last key (the one no key follows) puts a
fresh key in its place that signs at once: a ring always has a key to sign with.

Two algorithms: Ed25519 (the native scheme, the default) and RSA 2048 (Vast's scheme). A ring
holds keys of one algorithm, the one its scheme uses.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import cached_property

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from protocol import TicketSigner, key_id, public_key_pem
from protocol.vast_tickets import rsa_key_id, rsa_public_key_pem

__all__ = [
    "AlreadyRevoked",
    "KeyAlg",
    "KeyRing",
    "RevocationError",
    "RingKey",
    "UnknownKeyId",
    "generate_private_key",
]

SKEW_S = 30.0
"""Extra time a retired key stays published: the PyWorker allows this much clock skew."""

PrivateKey = Ed25519PrivateKey | RSAPrivateKey


class KeyAlg(StrEnum):
    ED25519 = "Ed25519"
    RSA = "RSA"


def generate_private_key(alg: KeyAlg) -> PrivateKey:
    if alg is KeyAlg.RSA:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return Ed25519PrivateKey.generate()


@dataclass(frozen=True)
class RingKey:
    private_key: PrivateKey
    signs_from: float
    signs_until: float | None = None

    @property
    def alg(self) -> KeyAlg:
        return KeyAlg.RSA if isinstance(self.private_key, RSAPrivateKey) else KeyAlg.ED25519

    @cached_property
    def kid(self) -> str:
        public = self.private_key.public_key()
        return rsa_key_id(public) if isinstance(public, RSAPublicKey) else key_id(public)

    @cached_property
    def signer(self) -> TicketSigner:
        """The Ed25519 key's ticket signer (its libsodium secret derived once, not per ticket)."""
        key = self.private_key
        if isinstance(key, RSAPrivateKey):
            raise TypeError("an RSA key signs Vast's tickets, not native ones")
        return TicketSigner(key)

    @cached_property
    def public_pem(self) -> str:
        public = self.private_key.public_key()
        if isinstance(public, RSAPublicKey):
            return rsa_public_key_pem(public)
        return public_key_pem(public)

    def signs_at(self, now: float) -> bool:
        return self.signs_from <= now and (self.signs_until is None or now < self.signs_until)


class RevocationError(Exception):
    """A key that cannot be revoked."""


class UnknownKeyId(RevocationError):
    """No key of the ring has this kid."""


class AlreadyRevoked(RevocationError):
    """The key was revoked before."""


class KeyRing:
    def __init__(self, keys: list[RingKey], *, ttl_s: float, revoked: Iterable[str] = ()) -> None:
        """`revoked`: the kids revoked so far; none of `keys` may have one of them."""
        self._revoked = frozenset(revoked)
        if not keys:
            raise ValueError("a key ring needs at least one key")
        if any(key.kid in self._revoked for key in keys):
            raise ValueError("a revoked key cannot be in the ring")
        self._keys = sorted(keys, key=lambda key: key.signs_from)
        self._ttl_s = ttl_s
        self._signing: RingKey | None = None

    @property
    def keys(self) -> list[RingKey]:
        return list(self._keys)

    @property
    def revoked(self) -> frozenset[str]:
        """The kids of every key revoked: never published again."""
        return self._revoked

    def copy(self) -> KeyRing:
        """The same keys in a ring of their own (to write a rotation before it takes effect)."""
        return KeyRing(self._keys, ttl_s=self._ttl_s, revoked=self._revoked)

    def adopt(self, other: KeyRing) -> None:
        """Take `other`'s keys and revocations (a ring another router wrote to shared state):
        whoever holds this ring signs and publishes as `other` says from now on."""
        self._keys = list(other._keys)
        self._revoked = other._revoked
        self._signing = None

    def signing_key(self, now: float) -> RingKey:
        """The key that signs tickets at `now`: the newest one whose time has come."""
        current = self._signing
        if current is not None and current.signs_at(now):
            return current
        active = [key for key in self._keys if key.signs_at(now)]
        chosen = active[-1] if active else self._keys[0]
        self._signing = chosen
        return chosen

    def published(self, now: float) -> list[RingKey]:
        """Keys a worker must accept (or fetch ahead): not yet past their last ticket's expiry.
        Oldest first; the newest (which may not sign yet) is last."""
        return [key for key in self._keys if not self._expired(key, now)]

    def _expired(self, key: RingKey, now: float) -> bool:
        return key.signs_until is not None and now >= key.signs_until + self._ttl_s + SKEW_S

    def rotate(self, new_key: PrivateKey, now: float, *, lead_s: float) -> RingKey:
        """Publish `new_key` now; it signs from `now + lead_s`, when the current one stops."""
        starts = now + lead_s
        updated = []
        for key in self._keys:
            if key.signs_until is None or key.signs_until > starts:
                key = replace(key, signs_until=starts)
            updated.append(key)
        added = RingKey(new_key, signs_from=starts)
        self._keys = [key for key in updated if not self._expired(key, now)] + [added]
        self._signing = None
        return added

    def needs_successor(self, kid: str, now: float) -> bool:
        """Whether revoking `kid` at `now` takes a new key: it signs now or later, and no key
        is set to follow it."""
        key = self._find(kid)
        return key.signs_until is None or (key.signs_until > now and self._heir(key) is None)

    def revoke(self, kid: str, now: float, successor: PrivateKey | None = None) -> RingKey | None:
        """Stop publishing `kid` now, for good. If it signs now, the key set to follow it signs
        from `now` on; if no key follows it (`needs_successor`), `successor` does and is
        returned (ValueError without one). UnknownKeyId, AlreadyRevoked."""
        revoked = self._find(kid)
        added = None
        if self.needs_successor(kid, now):
            if successor is None:
                raise ValueError(f"revoking {kid} takes a successor: no key follows it")
            added = self.rotate(successor, now, lead_s=0.0)
        elif revoked.signs_until is not None and revoked.signs_until > now:
            heir = self._heir(revoked)
            self._keys = [
                replace(key, signs_from=now) if key is heir else key for key in self._keys
            ]
        self._keys = sorted(
            (key for key in self._keys if key.kid != kid), key=lambda key: key.signs_from
        )
        self._revoked = self._revoked | {kid}
        self._signing = None
        return added

    def _heir(self, key: RingKey) -> RingKey | None:
        """The key that signs once `key` stops (None: no key is set to)."""
        if key.signs_until is None:
            return None
        follows = [other for other in self._keys if other.signs_at(key.signs_until)]
        return follows[-1] if follows else None

    def _find(self, kid: str) -> RingKey:
        if kid in self._revoked:
            raise AlreadyRevoked(f"key {kid} is revoked already")
        for key in self._keys:
            if key.kid == kid:
                return key
        raise UnknownKeyId(f"no key {kid} in the ring")
