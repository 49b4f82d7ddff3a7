"""Key rotation: written before it is published, one at a time, periodic, the scheme's key kind."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import Any

import pytest

import router.keys.rotation
from router.keys.ring import KeyAlg, KeyRing, RingKey, generate_private_key
from router.keys.rotation import KeyRotation
from router.keys.store import load_key_ring, save_key_ring
from router.settings import RouterSettings
from tests.clock import FakeClock

TTL_S = 60.0


def settings(tmp_path: Path, **fields: Any) -> RouterSettings:
    return RouterSettings(state_dir=tmp_path / "state", ticket_ttl_s=TTL_S, **fields)


def ring(alg: KeyAlg = KeyAlg.ED25519) -> KeyRing:
    return KeyRing([RingKey(generate_private_key(alg), 0.0)], ttl_s=TTL_S)


async def test_a_rotation_publishes_a_key_that_signs_after_the_lead(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keys, clock = ring(), FakeClock()
    first = keys.signing_key(clock())
    rotation = KeyRotation(keys, settings(tmp_path, key_lead_s=30.0), clock)
    with caplog.at_level(logging.INFO, logger="router.keys.rotation"):
        rotated = await rotation.rotate()
    assert caplog.messages == [f"key_rotated kid={rotated.kid} signs_from=1030.000"]
    assert rotated.signs_from == clock() + 30.0
    assert rotated.published == [first.kid, rotated.kid]
    assert [key.kid for key in keys.published(clock())] == rotated.published
    assert keys.signing_key(clock() + 29.9).kid == first.kid
    assert keys.signing_key(clock() + 30.0).kid == rotated.kid


async def test_the_rotated_ring_is_what_the_state_directory_holds(tmp_path: Path) -> None:
    keys = ring()
    rotation = KeyRotation(keys, settings(tmp_path, key_lead_s=0.0), FakeClock())
    await rotation.rotate()
    await rotation.rotate()
    stored = await asyncio.to_thread(load_key_ring, tmp_path / "state", KeyAlg.ED25519, ttl_s=TTL_S)
    assert [(k.kid, k.signs_from, k.signs_until) for k in stored.keys] == [
        (k.kid, k.signs_from, k.signs_until) for k in keys.keys
    ]


async def test_vast_scheme_rotates_to_an_rsa_key(tmp_path: Path) -> None:
    keys = ring(KeyAlg.RSA)
    rotation = KeyRotation(keys, settings(tmp_path, ticket_scheme="vast"), FakeClock())
    rotated = await rotation.rotate()
    assert [key.alg for key in keys.keys] == [KeyAlg.RSA, KeyAlg.RSA]
    assert keys.keys[-1].kid == rotated.kid


async def test_a_cancelled_rotation_is_written_before_the_next_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[tuple[str, int]] = []
    release = threading.Event()
    keys = ring()

    def slow_save(state_dir: Path, saved: KeyRing) -> None:
        writes.append(("start", len(saved.keys)))
        assert saved.keys[-1].kid not in {key.kid for key in keys.keys}  # written first
        release.wait(10)
        save_key_ring(state_dir, saved)
        writes.append(("end", len(saved.keys)))

    monkeypatch.setattr(router.keys.rotation, "save_key_ring", slow_save)
    rotation = KeyRotation(keys, settings(tmp_path, key_lead_s=0.0), FakeClock())
    first = asyncio.create_task(rotation.rotate())
    async with asyncio.timeout(10):
        while not writes:
            await asyncio.sleep(0.01)
    first.cancel()  # e.g. the admin's client went away
    second = asyncio.create_task(rotation.rotate())
    await asyncio.sleep(0.05)  # time for a second write to start, were it allowed to
    release.set()
    rotated = await second
    assert writes == [("start", 2), ("end", 2), ("start", 3), ("end", 3)]
    stored = await asyncio.to_thread(load_key_ring, tmp_path / "state", KeyAlg.ED25519, ttl_s=TTL_S)
    assert stored.keys[-1].kid == rotated.kid


async def test_periodic_rotation_goes_on_after_a_failed_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    saves = 0

    def failing_once(state_dir: Path, saved: KeyRing) -> None:
        nonlocal saves
        saves += 1
        if saves == 1:
            raise OSError("disk full")
        save_key_ring(state_dir, saved)

    monkeypatch.setattr(router.keys.rotation, "save_key_ring", failing_once)
    keys = ring()
    rotation = KeyRotation(keys, settings(tmp_path), FakeClock())
    task = asyncio.create_task(rotation.run_every(0.01))
    with caplog.at_level(logging.ERROR, logger="router.keys.rotation"):
        async with asyncio.timeout(10):
            while len(keys.keys) < 3:
                await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await rotation.settled()
    assert saves >= 3
    assert len(keys.keys) == saves  # the first key, and one per save but the failed one
    assert "key rotation failed; the current key keeps signing" in caplog.messages
