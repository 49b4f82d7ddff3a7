from __future__ import annotations

import asyncio

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from protocol import SigningKey
from protocol.vast_tickets import rsa_key_id
from pyworker.tickets.keys import KeyFetchError, KeyRefresher, Keys
from pyworker.tickets.verifier import TicketScheme, TicketVerifier
from tests.clock import FakeClock


def rsa_keys() -> Keys:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    return {rsa_key_id(key): key}


def ed_keys() -> Keys:
    key = SigningKey.generate()
    return {key.kid: key.public_key}


async def test_refresh_is_rate_limited_and_single_flight() -> None:
    verifier = TicketVerifier("http://w", {}, endpoint="e", clock=lambda: 0.0)
    clock = FakeClock()
    calls = 0
    release = asyncio.Event()

    async def fetch() -> Keys:
        nonlocal calls
        calls += 1
        await release.wait()
        return ed_keys()

    refresher = KeyRefresher(verifier, fetch, clock=clock, min_interval_s=5)
    first = [asyncio.create_task(refresher.refresh()) for _ in range(10)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*first) == [True] * 10  # ten callers, one fetch
    assert calls == 1
    assert await refresher.refresh() is False  # too soon: not even tried
    assert calls == 1
    clock.now += 5
    assert await refresher.refresh() is True
    assert calls == 2


async def test_a_failed_refresh_keeps_the_keys_it_had() -> None:
    keys = ed_keys()
    verifier = TicketVerifier("http://w", keys, endpoint="e", clock=lambda: 0.0)

    async def fetch() -> Keys:
        raise KeyFetchError("router down")

    refresher = KeyRefresher(verifier, fetch, clock=FakeClock())
    assert await refresher.refresh() is False
    assert verifier.known_kids == set(keys)


def test_vast_keys_overlap_with_their_predecessor_only() -> None:
    verifier = TicketVerifier(
        "http://w", {}, endpoint="e", clock=lambda: 0.0, scheme=TicketScheme.VAST
    )

    async def never() -> Keys:
        raise AssertionError

    refresher = KeyRefresher(verifier, never, clock=FakeClock())
    first, second, third = rsa_keys(), rsa_keys(), rsa_keys()
    refresher.install(first)
    refresher.install(second)
    assert verifier.known_kids == set(first) | set(second)
    refresher.install(third)
    assert verifier.known_kids == set(second) | set(third)
    refresher.install(third)
    assert verifier.known_kids == set(third)


def test_native_keys_are_replaced_by_the_published_set() -> None:
    verifier = TicketVerifier("http://w", ed_keys(), endpoint="e", clock=lambda: 0.0)

    async def never() -> Keys:
        raise AssertionError

    fresh = ed_keys()
    KeyRefresher(verifier, never, clock=FakeClock()).install(fresh)
    assert verifier.known_kids == set(fresh)


async def test_keys_the_router_stops_publishing_are_dropped_on_the_next_poll() -> None:
    kept, revoked = ed_keys(), ed_keys()
    verifier = TicketVerifier("http://w", {**kept, **revoked}, endpoint="e", clock=lambda: 0.0)
    clock = FakeClock()
    periods: list[float] = []

    async def fetch() -> Keys:
        return kept  # the router no longer publishes `revoked`

    async def sleep(seconds: float) -> None:
        periods.append(seconds)
        clock.now += seconds
        if len(periods) > 2:
            raise asyncio.CancelledError

    refresher = KeyRefresher(verifier, fetch, clock=clock, min_interval_s=5)
    with pytest.raises(asyncio.CancelledError):
        await refresher.run_every(60, sleep=sleep)
    assert periods == [60, 60, 60]
    assert verifier.known_kids == set(kept)
