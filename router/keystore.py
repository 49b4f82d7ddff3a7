"""The router's signing key, created on first start and kept in its state directory.

The private key file is created with mode 0600 and written atomically, so a crash never
leaves half a key behind and two routers started at once agree on one key.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from protocol import SigningKey

__all__ = ["KEY_FILE", "load_or_create_signing_key"]

log = logging.getLogger(__name__)

KEY_FILE = "ticket-signing-key.pem"


def load_or_create_signing_key(state_dir: Path) -> SigningKey:
    path = state_dir / KEY_FILE
    if path.exists():
        return SigningKey.from_pem(path.read_bytes())
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = SigningKey.generate()
    descriptor, temp_name = tempfile.mkstemp(dir=state_dir, prefix=".key-")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(key.to_pem())
        os.chmod(temp_name, 0o600)
        os.link(temp_name, path)  # fails if another process created the key first
    except FileExistsError:
        return SigningKey.from_pem(path.read_bytes())
    finally:
        os.unlink(temp_name)
    log.info("created a new ticket signing key %s in %s", key.kid, state_dir)
    return key
