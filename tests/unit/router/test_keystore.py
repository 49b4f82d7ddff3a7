from __future__ import annotations

import stat
from pathlib import Path

from router.keystore import KEY_FILE, load_or_create_signing_key


def test_the_key_is_created_once_private_and_reloaded(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = load_or_create_signing_key(state)
    assert stat.S_IMODE((state / KEY_FILE).stat().st_mode) == 0o600
    assert load_or_create_signing_key(state).kid == first.kid
    assert [p.name for p in state.iterdir()] == [KEY_FILE]
