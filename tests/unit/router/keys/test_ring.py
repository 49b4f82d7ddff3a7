from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.keys.ring import (
    SKEW_S,
    AlreadyRevoked,
    KeyAlg,
    KeyRing,
    RingKey,
    UnknownKeyId,
    generate_private_key,
)
from router.keys.store import RING_FILE, load_key_ring, save_key_ring

TTL_S = 60.0


def ring() -> KeyRing:
    return KeyRing([RingKey(generate_private_key(KeyAlg.ED25519), 0.0)], ttl_s=TTL_S)


def test_a_new_key_is_published_before_it_signs() -> None:
    keys = ring()
    old = keys.signing_key(100.0)
    new = keys.rotate(generate_private_key(KeyAlg.ED25519), 100.0, lead_s=30)
    assert [k.kid for k in keys.published(100.0)] == [old.kid, new.kid]
    assert keys.signing_key(129.9).kid == old.kid
    assert keys.signing_key(130.0).kid == new.kid
    assert [k.kid for k in keys.published(130 + TTL_S + SKEW_S - 0.1)] == [old.kid, new.kid]
    assert [k.kid for k in keys.published(130 + TTL_S + SKEW_S)] == [new.kid]


# Shared across examples: generating Ed25519 keys is cheap, but keep the examples fast.
POOL = [generate_private_key(KeyAlg.ED25519) for _ in range(6)]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 500), st.floats(0, 120)), min_size=1, max_size=5),
    st.lists(st.floats(0, 3000), min_size=1, max_size=20),
)
def test_every_ticket_signed_stays_verifiable_until_it_expires(
    rotations: list[tuple[float, float]], probes: list[float]
) -> None:
    """Whatever the rotation schedule, a ticket signed at t (valid until t + ttl) is verified by
    a key the router still publishes at any time up to t + ttl, and each key is published
    before it signs."""
    keys = KeyRing([RingKey(POOL[0], 0.0)], ttl_s=TTL_S)
    now = 0.0
    signed: list[tuple[float, str]] = []
    for index, (gap, lead) in enumerate(rotations, start=1):
        for probe in sorted(probes):
            if now <= probe < now + gap:
                signed.append((probe, keys.signing_key(probe).kid))
        now += gap
        added = keys.rotate(POOL[index], now, lead_s=lead)
        assert added.kid in {k.kid for k in keys.published(now)}
        assert keys.signing_key(now).kid != added.kid or now + lead <= now
    for at, kid in signed:
        for later in (max(at, now), at + TTL_S):
            if now <= later <= at + TTL_S:  # the ring as it is now: ask about now and later
                assert kid in {k.kid for k in keys.published(later)}


def test_the_ring_is_saved_privately_and_reloaded(tmp_path: Path) -> None:
    keys = load_key_ring(tmp_path, KeyAlg.ED25519, ttl_s=TTL_S)
    first = keys.signing_key(0.0).kid
    keys.rotate(generate_private_key(KeyAlg.ED25519), 10.0, lead_s=5)
    save_key_ring(tmp_path, keys)
    assert (tmp_path / RING_FILE).stat().st_mode & 0o777 == 0o600
    again = load_key_ring(tmp_path, KeyAlg.ED25519, ttl_s=TTL_S)
    assert [k.kid for k in again.keys] == [k.kid for k in keys.keys]
    assert again.signing_key(12.0).kid == first
    assert again.signing_key(15.0).kid != first


def test_an_rsa_ring_for_vasts_scheme(tmp_path: Path) -> None:
    keys = load_key_ring(tmp_path, KeyAlg.RSA, ttl_s=TTL_S)
    assert keys.signing_key(0.0).alg is KeyAlg.RSA
    assert load_key_ring(tmp_path, KeyAlg.RSA, ttl_s=TTL_S).signing_key(0).kid == (
        keys.signing_key(0).kid
    )


def test_revoking_a_retired_key_unpublishes_it_at_once() -> None:
    keys = ring()
    old = keys.signing_key(100.0)
    new = keys.rotate(generate_private_key(KeyAlg.ED25519), 100.0, lead_s=0)
    assert not keys.needs_successor(old.kid, 100.0)
    assert keys.revoke(old.kid, 100.0) is None
    assert [k.kid for k in keys.published(100.0)] == [new.kid]
    assert keys.signing_key(100.0).kid == new.kid
    assert keys.revoked == {old.kid}


def test_revoking_the_only_signing_key_puts_a_new_one_in_its_place() -> None:
    keys = ring()
    only = keys.signing_key(100.0)
    assert keys.needs_successor(only.kid, 100.0)
    with pytest.raises(ValueError, match="successor"):
        keys.revoke(only.kid, 100.0)
    assert [k.kid for k in keys.published(100.0)] == [only.kid]  # the refusal changed nothing
    successor = keys.revoke(only.kid, 100.0, generate_private_key(KeyAlg.ED25519))
    assert successor is not None
    assert keys.signing_key(100.0).kid == successor.kid  # at once, no lead
    assert [k.kid for k in keys.published(100.0)] == [successor.kid]


def test_revoking_the_key_set_to_sign_next_replaces_it_too() -> None:
    keys = ring()
    current = keys.signing_key(100.0)
    upcoming = keys.rotate(generate_private_key(KeyAlg.ED25519), 100.0, lead_s=60)
    assert keys.needs_successor(upcoming.kid, 110.0)
    successor = keys.revoke(upcoming.kid, 110.0, generate_private_key(KeyAlg.ED25519))
    assert successor is not None
    assert keys.signing_key(110.0).kid == successor.kid
    assert keys.signing_key(500.0).kid == successor.kid
    assert [k.kid for k in keys.published(110.0)] == [current.kid, successor.kid]


def test_revoking_the_signing_key_hands_over_to_the_published_one_that_follows() -> None:
    keys = ring()
    current = keys.signing_key(100.0)
    upcoming = keys.rotate(generate_private_key(KeyAlg.ED25519), 100.0, lead_s=60)
    assert not keys.needs_successor(current.kid, 110.0)
    assert keys.revoke(current.kid, 110.0) is None  # no new key: workers have this one
    assert keys.signing_key(110.0).kid == upcoming.kid  # at once, not at 160
    assert [k.kid for k in keys.published(110.0)] == [upcoming.kid]


def test_unknown_and_revoked_kids_are_told_apart() -> None:
    keys = ring()
    old = keys.signing_key(0.0)
    keys.rotate(generate_private_key(KeyAlg.ED25519), 0.0, lead_s=0)
    keys.revoke(old.kid, 1.0)
    with pytest.raises(AlreadyRevoked):
        keys.revoke(old.kid, 2.0)
    with pytest.raises(UnknownKeyId):
        keys.revoke("0123456789abcdef", 2.0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["rotate", "revoke"]), st.floats(0, 200), st.integers(0, 9)),
        min_size=1,
        max_size=8,
    )
)
def test_a_revoked_key_never_signs_nor_is_published_again(
    changes: list[tuple[str, float, int]],
) -> None:
    """Whatever the rotations and revocations, in any order: a revoked kid is never published
    or signing afterwards, and the ring always has a published key that signs."""
    pool = iter(POOL[1:] + [generate_private_key(KeyAlg.ED25519) for _ in range(len(changes))])
    keys = KeyRing([RingKey(POOL[0], 0.0)], ttl_s=TTL_S)
    now = 0.0
    for change, gap, pick in changes:
        now += gap
        if change == "rotate":
            keys.rotate(next(pool), now, lead_s=gap / 2)
        else:
            kid = keys.keys[pick % len(keys.keys)].kid
            successor = next(pool) if keys.needs_successor(kid, now) else None
            keys.revoke(kid, now, successor)
        for later in (now, now + TTL_S, now + 10 * TTL_S):
            published = {k.kid for k in keys.published(later)}
            assert keys.signing_key(later).kid in published
            assert not published & keys.revoked


def test_revoked_kids_are_saved_and_never_come_back(tmp_path: Path) -> None:
    keys = load_key_ring(tmp_path, KeyAlg.ED25519, ttl_s=TTL_S)
    first = keys.signing_key(0.0).kid  # also in the first-start key file
    keys.revoke(first, 5.0, generate_private_key(KeyAlg.ED25519))
    save_key_ring(tmp_path, keys)
    again = load_key_ring(tmp_path, KeyAlg.ED25519, ttl_s=TTL_S)
    assert again.revoked == {first}
    assert first not in {k.kid for k in again.published(5.0)}
    (tmp_path / RING_FILE).write_text(
        json.dumps({"keys": [], "revoked": [first]})  # only the first-start key file is left
    )
    fresh = load_key_ring(tmp_path, KeyAlg.ED25519, ttl_s=TTL_S)
    assert fresh.signing_key(0.0).kid != first
    assert load_key_ring(tmp_path, KeyAlg.ED25519, ttl_s=TTL_S).signing_key(0.0).kid == (
        fresh.signing_key(0.0).kid  # the replacement was saved
    )
