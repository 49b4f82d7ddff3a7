"""Where endpoints and worker groups live: in memory for routing, on disk so they survive a restart.

`endpoints.json` in the router's state directory (mode 0600: it holds the endpoints' API keys)
is rewritten atomically after every change, off the event loop, one write at a time and in
the order of the changes. Watchers (the autoscaler's seam) hear of every change.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from router.credentials import same_secret
from router.endpoints.models import (
    Endpoint,
    WorkerGroup,
    endpoint_from_body,
    worker_group_from_body,
)
from router.errors import EndpointNotFound, Unauthorized
from router.state_files import write_private

__all__ = ["ENDPOINTS_FILE", "EndpointStore", "Watcher"]

log = logging.getLogger(__name__)

ENDPOINTS_FILE = "endpoints.json"

Watcher = Callable[[str, Endpoint | None], None]
"""Called with an endpoint's name and its new value (None once deleted)."""


class EndpointStore:
    def __init__(self, state_dir: Path | None) -> None:
        self._path = state_dir / ENDPOINTS_FILE if state_dir is not None else None
        self.endpoints: dict[str, Endpoint] = {}
        self.groups: dict[str, WorkerGroup] = {}
        self._watchers: list[Watcher] = []
        self._write_lock = asyncio.Lock()

    def authenticate(self, name: str, presented: str | None) -> Endpoint:
        """The endpoint named `name`, if `presented` is its API key: EndpointNotFound for no
        such endpoint, else Unauthorized. The one check of an endpoint's key."""
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            raise EndpointNotFound(f"no endpoint named {name!r}")
        if not same_secret(presented or "", endpoint.api_key.get_secret_value()):
            raise Unauthorized(
                f"missing or wrong API key for endpoint {name!r}: "
                "send `Authorization: Bearer <the endpoint's key>` (on /route/, or `api_key`)"
            )
        return endpoint

    def load(self) -> None:
        """Read the stored resources (blocking: call it in a thread, at start-up)."""
        if self._path is None or not self._path.exists():
            return
        try:
            data = json.loads(self._path.read_text())
        except ValueError as exc:
            raise RuntimeError(
                f"{self._path} is not valid JSON ({exc}); fix or move it, then start again"
            ) from None
        for body in data.get("endpoints", []):
            endpoint = endpoint_from_body(body, stored=True)
            self.endpoints[endpoint.name] = endpoint
        for body in data.get("workergroups", []):
            group = worker_group_from_body(body)
            self.groups[group.name] = group

    def watch(self, watcher: Watcher) -> None:
        self._watchers.append(watcher)

    def put_endpoint(self, endpoint: Endpoint) -> None:
        self.endpoints[endpoint.name] = endpoint
        self._notify(endpoint.name, endpoint)

    def delete_endpoint(self, name: str) -> list[str]:
        """Remove an endpoint and its worker groups; the names of the groups removed."""
        self.endpoints.pop(name, None)
        removed = [group.name for group in self.groups.values() if group.endpoint == name]
        for group_name in removed:
            del self.groups[group_name]
        self._notify(name, None)
        return removed

    def put_group(self, group: WorkerGroup) -> None:
        self.groups[group.name] = group

    def delete_group(self, name: str) -> None:
        self.groups.pop(name, None)

    def _notify(self, name: str, endpoint: Endpoint | None) -> None:
        for watcher in self._watchers:
            try:
                watcher(name, endpoint)
            except Exception:
                log.exception("endpoint watcher failed for %s", name)

    def snapshot(self) -> dict[str, Any]:
        return {
            "endpoints": [endpoint.stored() for endpoint in self.endpoints.values()],
            "workergroups": [group.view() for group in self.groups.values()],
        }

    async def save(self) -> None:
        """Persist the current resources; writes happen one at a time, newest state last.
        A caller cancelled meanwhile (its client went away) does not cut its write short:
        the next one waits until the file is written, so an older state never lands last."""
        if self._path is None:
            return
        await asyncio.shield(self._write(self._path))

    async def _write(self, path: Path) -> None:
        async with self._write_lock:
            await asyncio.to_thread(_write_json, path, self.snapshot())


def _write_json(path: Path, data: dict[str, Any]) -> None:
    write_private(path, json.dumps(data, indent=1).encode())
