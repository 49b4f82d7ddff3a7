"""Fetching the router's public keys (`GET /keys`), with retries, and again on an unknown `kid`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from protocol import KeySet, load_public_key

__all__ = ["KeyFetchError", "fetch_keys", "fetch_keys_until_success"]

log = logging.getLogger(__name__)

Keys = dict[str, Ed25519PublicKey]


class KeyFetchError(Exception):
    """No router answered `/keys` with a valid key set."""


async def fetch_keys(session: aiohttp.ClientSession, addresses: Sequence[str]) -> Keys:
    """The key set of the first router that answers; KeyFetchError if none does."""
    problems: list[str] = []
    for address in addresses:
        try:
            return await _fetch_from(session, address)
        except (aiohttp.ClientError, TimeoutError, ValueError, ValidationError) as exc:
            problems.append(f"{address}: {exc or type(exc).__name__}")
    raise KeyFetchError("; ".join(problems) or "no router address configured")


async def _fetch_from(session: aiohttp.ClientSession, address: str) -> Keys:
    timeout = aiohttp.ClientTimeout(total=10)
    async with session.get(f"{address}/keys", timeout=timeout) as response:
        response.raise_for_status()
        key_set = KeySet.model_validate(await response.json())
    keys = {published.kid: load_public_key(published.public_key) for published in key_set.keys}
    if not keys:
        raise ValueError("the router published no keys")
    return keys


async def fetch_keys_until_success(
    session: aiohttp.ClientSession,
    addresses: Sequence[str],
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    max_backoff_s: float = 10.0,
) -> Keys:
    """Retry with exponential back-off until a router publishes its keys."""
    delay = 0.5
    while True:
        try:
            return await fetch_keys(session, addresses)
        except KeyFetchError as exc:
            log.warning("cannot fetch the router's keys yet (%s); retrying in %.1fs", exc, delay)
        await sleep(delay)
        delay = min(delay * 2, max_backoff_s)
