"""Fetching the router's public keys, with retries, again when a ticket names a new one, and
at least once a minute.

The native scheme reads `GET /keys` (every current key with its `kid`, so a rotation overlaps);
Vast's RSA schemes read the one PEM at `GET /pubkey/`, and keep the previous key beside the new
one so tickets signed just before a rotation still pass. A refresh is single-flight and rate
limited: a flood of tickets naming unknown keys costs the router one fetch per interval.

Each refresh replaces the keys with those the router publishes, so a key it stopped
publishing (retired, or revoked) stops verifying within one period of `run_every` (Vast's
single key: within two, as its predecessor is kept one refresh longer). A refresh that fails
keeps the keys the worker had.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

import aiohttp
from pydantic import ValidationError

from protocol import KeySet, load_public_key
from protocol.vast_tickets import load_rsa_public_key, rsa_key_id
from pyworker.tickets.verifier import PublicKey, TicketScheme, TicketVerifier

__all__ = ["KeyFetchError", "KeyRefresher", "Keys", "fetch_keys", "fetch_keys_until_success"]

log = logging.getLogger(__name__)

Keys = dict[str, PublicKey]


class KeyFetchError(Exception):
    """No router answered with a valid key."""


async def fetch_keys(
    session: aiohttp.ClientSession,
    addresses: Sequence[str],
    scheme: TicketScheme = TicketScheme.ED25519,
) -> Keys:
    """The keys of the first router that answers; KeyFetchError if none does."""
    problems: list[str] = []
    for address in addresses:
        try:
            return await _fetch_from(session, address, scheme)
        except (aiohttp.ClientError, TimeoutError, ValueError, ValidationError) as exc:
            problems.append(f"{address}{scheme.keys_path}: {str(exc) or type(exc).__name__}")
    raise KeyFetchError("; ".join(problems) or "no router address configured")


async def _fetch_from(session: aiohttp.ClientSession, address: str, scheme: TicketScheme) -> Keys:
    timeout = aiohttp.ClientTimeout(total=10)
    async with session.get(f"{address}{scheme.keys_path}", timeout=timeout) as response:
        response.raise_for_status()
        body = await response.read()
    if scheme.uses_rsa:
        key = load_rsa_public_key(body)
        return {rsa_key_id(key): key}
    key_set = KeySet.model_validate_json(body)
    keys: Keys = {item.kid: load_public_key(item.public_key) for item in key_set.keys}
    if not keys:
        raise ValueError("the router published no keys")
    return keys


async def fetch_keys_until_success(
    session: aiohttp.ClientSession,
    addresses: Sequence[str],
    scheme: TicketScheme = TicketScheme.ED25519,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    max_backoff_s: float = 10.0,
) -> Keys:
    """Retry with exponential back-off until a router publishes its keys."""
    delay = 0.5
    while True:
        try:
            return await fetch_keys(session, addresses, scheme)
        except KeyFetchError as exc:
            log.warning("cannot fetch the router's keys yet (%s); retrying in %.1fs", exc, delay)
        await sleep(delay)
        delay = min(delay * 2, max_backoff_s)


class KeyRefresher:
    """Re-fetches the keys of a verifier: at most once per `min_interval_s`, one fetch at a time."""

    def __init__(
        self,
        verifier: TicketVerifier,
        fetch: Callable[[], Awaitable[Keys]],
        *,
        clock: Callable[[], float],
        min_interval_s: float = 5.0,
    ) -> None:
        self._verifier = verifier
        self._fetch = fetch
        self._clock = clock
        self._min_interval_s = min_interval_s
        self._last_attempt: float | None = None
        self._inflight: asyncio.Task[bool] | None = None

    def install(self, keys: Keys) -> None:
        """Use `keys` now; Vast's single key keeps its predecessor beside it (overlap)."""
        if self._verifier.scheme.uses_rsa:
            current = self._verifier.current_keys()
            keys = {**{kid: current[kid] for kid in list(current)[-1:]}, **keys}
        self._verifier.set_keys(keys)

    async def refresh(self) -> bool:
        """Fetch again unless it was done recently; True when the key set changed."""
        if self._inflight is not None:
            return await asyncio.shield(self._inflight)
        now = self._clock()
        if self._last_attempt is not None and now - self._last_attempt < self._min_interval_s:
            return False
        self._last_attempt = now
        self._inflight = asyncio.create_task(self._refresh_once())
        try:
            return await asyncio.shield(self._inflight)
        finally:
            self._inflight = None

    async def run_every(
        self, period_s: float, *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> None:
        """Refresh every `period_s` until cancelled, so keys the router no longer publishes are
        dropped even when no ticket names a new one."""
        while True:
            await sleep(period_s)
            await self.refresh()

    async def _refresh_once(self) -> bool:
        before = self._verifier.known_kids
        try:
            self.install(await self._fetch())
        except KeyFetchError as exc:
            log.warning("key refresh failed: %s", exc)
            return False
        changed = self._verifier.known_kids != before
        if changed:
            log.info("router keys changed: now %s", sorted(self._verifier.known_kids))
        return changed
