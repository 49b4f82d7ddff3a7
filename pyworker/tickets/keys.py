"""Fetching the routers' public keys, with retries, again when a ticket names a new one, and
at least once a minute. With several routers (`REPORT_ADDR`), every one is asked at once and
their keys are used together: routers that share a key ring publish the same keys, and routers
that do not each publish their own.

The native scheme reads `GET /keys` (every current key with its `kid`, so a rotation overlaps);
Vast's RSA schemes read the one PEM at `GET /pubkey/`, and keep the previous key beside the new
one so tickets signed just before a rotation still pass. A refresh is single-flight and rate
limited: a flood of tickets naming unknown keys costs the router one fetch per interval.

Each refresh replaces the keys with those the routers publish, so a key they stopped
publishing (retired, or revoked) stops verifying within one period of `run_every` (Vast's
single key: within two, as its predecessor is kept one refresh longer). A refresh that fails
keeps the keys the worker had; while another router answers, a router that misses one refresh
keeps its own keys, and one that misses two in a row loses them until it answers again.
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

__all__ = [
    "KeyFetchError",
    "KeyRefresher",
    "Keys",
    "RouterKeys",
    "fetch_keys_until_success",
]

log = logging.getLogger(__name__)

Keys = dict[str, PublicKey]


class KeyFetchError(Exception):
    """No router answered with a valid key."""


async def _fetch_each(
    session: aiohttp.ClientSession, addresses: Sequence[str], scheme: TicketScheme
) -> dict[str, Keys]:
    """The keys of each router that answers, asked all at once; KeyFetchError if none does."""

    async def one(address: str) -> Keys | str:
        try:
            return await _fetch_from(session, address, scheme)
        except (aiohttp.ClientError, TimeoutError, ValueError, ValidationError) as exc:
            return f"{address}{scheme.keys_path}: {str(exc) or type(exc).__name__}"

    answers = await asyncio.gather(*(one(address) for address in addresses))
    fetched = {
        address: answer
        for address, answer in zip(addresses, answers, strict=True)
        if not isinstance(answer, str)
    }
    if not fetched:
        problems = [answer for answer in answers if isinstance(answer, str)]
        raise KeyFetchError("; ".join(problems) or "no router address configured")
    return fetched


class RouterKeys:
    """The keys each router published when it last answered. A fetch asks every router at once.
    A router that misses one fetch keeps its keys beside the fresh ones of the others (a blip);
    one that misses `forget_after` fetches in a row while another router answers loses them, so
    a key that a router sharing its key ring revoked does not live on through a router that is
    gone. When no router answers, nothing changes (the worker is cut off: it keeps its keys)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        addresses: Sequence[str],
        scheme: TicketScheme = TicketScheme.ED25519,
        *,
        forget_after: int = 2,
    ) -> None:
        self._session = session
        self._addresses = list(addresses)
        self._scheme = scheme
        self._forget_after = forget_after
        self._known: dict[str, Keys] = {}
        self._missed: dict[str, int] = {}

    async def fetch(self) -> Keys:
        """Every router's keys, together; KeyFetchError (nothing changed) if none answers."""
        fetched = await _fetch_each(self._session, self._addresses, self._scheme)
        for address in self._addresses:
            if address in fetched:
                self._known[address], self._missed[address] = fetched[address], 0
                continue
            self._missed[address] = self._missed.get(address, 0) + 1
            if self._missed[address] >= self._forget_after:
                self._known.pop(address, None)
        return self._merged()

    def _merged(self) -> Keys:
        """One key set from each router's, in the order of the routers."""
        keys: Keys = {}
        for address in self._addresses:
            keys.update(self._known.get(address, {}))
        return keys


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
    fetch: Callable[[], Awaitable[Keys]],
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    max_backoff_s: float = 10.0,
) -> Keys:
    """Retry `fetch` (`RouterKeys.fetch`) with exponential back-off until a router publishes
    its keys."""
    delay = 0.5
    while True:
        try:
            return await fetch()
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

    async def fetch(self) -> Keys:
        """The routers' keys now, not installed (the bring-up retries it); KeyFetchError if no
        router answers."""
        return await self._fetch()

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
