"""Reading and comparing the secrets clients present: API keys, admin keys, worker tokens."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from aiohttp import web

__all__ = ["bearer_token", "master_token", "same_secret"]


def bearer_token(request: web.Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def same_secret(presented: str, expected: str) -> bool:
    """Constant-time equality; an empty expected secret matches nothing."""
    if not expected:
        return False
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


def master_token(body: Any) -> str:
    """The worker token Vast's PyWorker puts in its reports' bodies (`mtoken`), or ""."""
    token = body.get("mtoken") if isinstance(body, Mapping) else None
    return token if isinstance(token, str) else ""
