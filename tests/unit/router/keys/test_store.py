from __future__ import annotations

import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from router.keys.store import (
    KEY_FILE,
    RSA_KEY_FILE,
    load_or_create_rsa_key,
    load_or_create_signing_key,
)


def test_the_key_is_created_once_private_and_reloaded(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = load_or_create_signing_key(state)
    assert stat.S_IMODE((state / KEY_FILE).stat().st_mode) == 0o600
    assert load_or_create_signing_key(state).kid == first.kid
    assert [p.name for p in state.iterdir()] == [KEY_FILE]


def test_routers_started_at_once_agree_on_one_rsa_key(tmp_path: Path) -> None:
    state = tmp_path / "state"
    barrier = threading.Barrier(4)

    def start() -> int:
        barrier.wait()  # all four see no key file, then generate one each
        return load_or_create_rsa_key(state).public_key().public_numbers().n

    with ThreadPoolExecutor(4) as pool:
        moduli = set(pool.map(lambda _: start(), range(4)))
    assert len(moduli) == 1
    on_disk = load_or_create_rsa_key(state).public_key().public_numbers().n
    assert moduli == {on_disk}
    assert stat.S_IMODE((state / RSA_KEY_FILE).stat().st_mode) == 0o600
    assert [p.name for p in state.iterdir()] == [RSA_KEY_FILE]  # no temporary left


def test_routers_started_at_once_agree_on_one_ed25519_key(tmp_path: Path) -> None:
    state = tmp_path / "state"
    barrier = threading.Barrier(8)

    def start() -> str:
        barrier.wait()
        return load_or_create_signing_key(state).kid

    with ThreadPoolExecutor(8) as pool:
        kids = set(pool.map(lambda _: start(), range(8)))
    assert kids == {load_or_create_signing_key(state).kid}
