"""What the router's integration tests share: the `aiohttp_client` fixture's type, and settings
for a router under test."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from router.settings import RouterSettings

__all__ = ["ClientFactory", "router_settings"]

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


def router_settings(tmp_path: Path, **fields: Any) -> RouterSettings:
    """A router's settings with its state under `tmp_path`, a short /route/ wait (0.2 s), and
    workers on this machine allowed (`allow_private_workers`); `fields` add to or replace
    those."""
    defaults = {"state_dir": tmp_path / "state", "route_timeout_s": 0.2}
    return RouterSettings(**{**defaults, "allow_private_workers": True, **fields})
