"""Routers under test serve workers on 127.0.0.1, which an endpoint refuses unless it allows
private workers: `allow_private_workers` stores the endpoint so before the router starts."""

from __future__ import annotations

import json
from pathlib import Path

from router.endpoints.store import ENDPOINTS_FILE

__all__ = ["allow_private_workers"]


def allow_private_workers(state_dir: Path, name: str = "default") -> None:
    """Store endpoint `name`, allowing private workers, in a router's `state_dir` before it
    starts there: the router keeps it, and gives it the API key its settings name."""
    state_dir.mkdir(parents=True, exist_ok=True)
    body = {"endpoints": [{"name": name, "allow_private_workers": True}]}
    (state_dir / ENDPOINTS_FILE).write_text(json.dumps(body))
