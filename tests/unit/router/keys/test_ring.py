from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from router.keys.ring import SKEW_S, KeyAlg, KeyRing, RingKey, generate_private_key
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
