"""Key rotation and revocation: each change of the ring is written to the state directory
before the ring publishes it.

`KeyRotation.rotate()` is what `POST /api/v0/keys/rotate` does; `run_every(key_rotation_s)` is
the periodic rotation; `revoke(kid)` is `DELETE /api/v0/keys/{kid}`. All go through one lock,
so changes run one at a time, and each is shielded from its caller's cancellation: a write once
started lands, and an older ring never overwrites a newer one on disk. The ring itself
(`router.keys.ring`) decides which key signs and which ones stay published.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from router.keys.ring import KeyRing, generate_private_key
from router.keys.store import save_key_ring
from router.keys.tickets import key_alg
from router.logs import event
from router.settings import RouterSettings

__all__ = ["KeyRotation", "Revoked", "Rotated", "SaveRing"]

SaveRing = Callable[[KeyRing], Awaitable[None]]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rotated:
    """What one rotation did: the new key's `kid`, when it starts signing, and the kid of every
    key published once it is in the ring, oldest first (the new one last)."""

    kid: str
    signs_from: float
    published: list[str]


@dataclass(frozen=True)
class Revoked:
    """What one revocation did: the kid revoked, the kid of the key that took its place (None
    when it signed no more), the kid that signs now, and every kid published, oldest first."""

    kid: str
    successor: str | None
    signing: str
    published: list[str]


class KeyRotation:
    """Rotations of `ring`, with the key kind of the settings' ticket scheme, a new key signing
    `key_lead_s` after it is published, and the ring written to the settings' state directory."""

    def __init__(
        self,
        ring: KeyRing,
        settings: RouterSettings,
        clock: Callable[[], float],
        *,
        save: SaveRing | None = None,
    ) -> None:
        """`save`: where a changed ring is written before it takes effect (default: the state
        directory; routers on shared state write it there)."""
        self._ring = ring
        self._settings = settings
        self._clock = clock
        self._save = save if save is not None else self._save_to_state_dir
        self._lock = asyncio.Lock()

    async def rotate(self) -> Rotated:
        """Publish a new key now; it signs after `key_lead_s`. Persisted before it is published.
        Rotations (asked for, and periodic) run one at a time, and a caller cancelled meanwhile
        does not cut its write short, so an older ring never overwrites a newer one."""
        return await asyncio.shield(self._rotate())

    async def revoke(self, kid: str) -> Revoked:
        """Stop publishing `kid` at once and for good, persisted before it takes effect. If it
        signs now, the key set to follow it signs at once; if none follows it, a new key does.
        `router.keys.ring.UnknownKeyId` or `AlreadyRevoked` when there is no such key."""
        return await asyncio.shield(self._revoke(kid))

    async def settled(self) -> None:
        """Return once no rotation is under way: one that its caller's cancellation did not
        stop lands first (on shutdown, no key reaches the disk after the router is gone)."""
        async with self._lock:
            pass

    async def run_every(self, period_s: float) -> None:
        """Rotate every `period_s` until cancelled. A rotation that fails is logged, and the
        current key keeps signing until the next one."""
        while True:
            await asyncio.sleep(period_s)
            try:
                await self.rotate()
            except Exception:
                log.exception("key rotation failed; the current key keeps signing")

    async def _save_to_state_dir(self, ring: KeyRing) -> None:
        await asyncio.to_thread(save_key_ring, self._settings.state_dir, ring)

    async def _rotate(self) -> Rotated:
        settings, ring = self._settings, self._ring
        alg = key_alg(settings.ticket_scheme)
        async with self._lock:
            private, now = await asyncio.to_thread(generate_private_key, alg), self._clock()
            rotated = ring.copy()
            added = rotated.rotate(private, now, lead_s=settings.key_lead_s)
            await self._save(rotated)
            ring.rotate(private, now, lead_s=settings.key_lead_s)  # the same ring as written
        event(log, "key_rotated", kid=added.kid, signs_from=added.signs_from)
        published = [key.kid for key in ring.published(self._clock())]
        return Rotated(kid=added.kid, signs_from=added.signs_from, published=published)

    async def _revoke(self, kid: str) -> Revoked:
        settings, ring = self._settings, self._ring
        async with self._lock:
            now = self._clock()
            successor = None
            if ring.needs_successor(kid, now):
                alg = key_alg(settings.ticket_scheme)
                successor = await asyncio.to_thread(generate_private_key, alg)
            revised = ring.copy()
            added = revised.revoke(kid, now, successor)
            await self._save(revised)
            ring.revoke(kid, now, successor)  # the same ring as written
        replaced_by = added.kid if added is not None else None
        event(log, "key_revoked", kid=kid, successor=replaced_by)
        now = self._clock()
        return Revoked(
            kid=kid,
            successor=replaced_by,
            signing=ring.signing_key(now).kid,
            published=[key.kid for key in ring.published(now)],
        )
