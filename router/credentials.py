"""Reading and comparing the secrets clients present: API keys, admin keys, worker tokens."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from typing import Any

from aiohttp import web

__all__ = ["admin_credential", "bearer_token", "master_token", "same_secret"]


def bearer_token(request: web.Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def admin_credential(request: web.Request) -> str | None:
    """What a request presents as the admin key: its bearer token, else the password of its
    `Authorization: Basic` header (the user name is ignored: browsers ask for both); or None."""
    token = bearer_token(request)
    if token is not None:
        return token
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, colon, password = decoded.partition(":")
    return password if colon and password else None


def same_secret(presented: str, expected: str) -> bool:
    """Constant-time equality; an empty expected secret matches nothing. Any text compares:
    a header's bytes that are not UTF-8 arrive as surrogates (aiohttp decodes headers with
    surrogateescape), and `surrogatepass` encodes every string, one to one."""
    if not expected:
        return False
    return hmac.compare_digest(_bytes(presented), _bytes(expected))


def _bytes(secret: str) -> bytes:
    return secret.encode("utf-8", "surrogatepass")


def master_token(body: Any) -> str:
    """The worker token Vast's PyWorker puts in its reports' bodies (`mtoken`), or ""."""
    token = body.get("mtoken") if isinstance(body, Mapping) else None
    return token if isinstance(token, str) else ""
