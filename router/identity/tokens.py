"""The secrets of worker identity, and the one form they are kept in.

A join token (`tgis-join-...`) lets one worker register on one endpoint, once, before it
expires; a credential (`tgis-worker-...`) is a registered worker's own secret, which it presents
on every later report. Both are 32 random bytes; the prefix tells which one a worker presents
(and lets a secret scanner find a leaked one). The router keeps only their SHA-256 digests:
with that much randomness a plain digest cannot be reversed, and a leaked state directory
registers no worker and speaks for none.
"""

from __future__ import annotations

import hashlib
import secrets

__all__ = ["CREDENTIAL_PREFIX", "JOIN_PREFIX", "digest", "new_credential", "new_join_token"]

JOIN_PREFIX = "tgis-join-"
CREDENTIAL_PREFIX = "tgis-worker-"


def new_join_token() -> str:
    return JOIN_PREFIX + secrets.token_urlsafe(32)


def new_credential() -> str:
    return CREDENTIAL_PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """What the router keeps of `secret`: its SHA-256, in hex. Any text hashes (a header's
    bytes that are not UTF-8 arrive as surrogates)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()
