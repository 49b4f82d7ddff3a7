"""Where endpoints and worker groups live: in memory for routing, on disk so they survive a restart.

`endpoints.json` in the router's state directory (mode 0600: it holds the endpoints' API keys)
is rewritten atomically after every change, off the event loop, one write at a time and in
the order of the changes. Watchers (the autoscaler's seam) hear of every change.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from router.credentials import same_secret
from router.endpoints.models import (
    Endpoint,
    WorkerGroup,
    endpoint_from_body,
    worker_group_from_body,
)
from router.errors import EndpointNotFound, StateUnwritable, Unauthorized
from router.state_files import write_private

__all__ = ["ENDPOINTS_FILE", "EndpointStore", "Share", "Watcher"]

log = logging.getLogger(__name__)

ENDPOINTS_FILE = "endpoints.json"

Watcher = Callable[[str, Endpoint | None], None]
"""Called with an endpoint's name and its new value (None once deleted)."""

Share = Callable[[dict[str, Endpoint | None], dict[str, WorkerGroup | None]], Awaitable[None]]
"""Writes changed endpoints and groups, by name (None: deleted), to the routers' shared state."""


class EndpointStore:
    def __init__(self, state_dir: Path | None) -> None:
        self._path = state_dir / ENDPOINTS_FILE if state_dir is not None else None
        self.endpoints: dict[str, Endpoint] = {}
        self.groups: dict[str, WorkerGroup] = {}
        self._watchers: list[Watcher] = []
        self._write_lock = asyncio.Lock()
        self._share: Share | None = None
        self._changed_endpoints: set[str] = set()
        self._changed_groups: set[str] = set()
        self.unsaved = False
        """A change is in memory that the last write could not store (a full disk): written by
        the next `save`, or by `save_if_unsaved`, which the router calls every few seconds."""

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

    def share(self, share: Share) -> None:
        """From now on `save` writes each change to the routers' shared state through `share`
        (not to the state directory), and `replace` takes in the other routers' changes."""
        self._share = share

    def put_endpoint(self, endpoint: Endpoint) -> None:
        self.endpoints[endpoint.name] = endpoint
        self._changed_endpoints.add(endpoint.name)
        self._notify(endpoint.name, endpoint)

    def delete_endpoint(self, name: str) -> list[str]:
        """Remove an endpoint and its worker groups; the names of the groups removed."""
        self.endpoints.pop(name, None)
        removed = [group.name for group in self.groups.values() if group.endpoint == name]
        for group_name in removed:
            del self.groups[group_name]
        self._changed_endpoints.add(name)
        self._changed_groups.update(removed)
        self._notify(name, None)
        return removed

    def put_group(self, group: WorkerGroup) -> None:
        self.groups[group.name] = group
        self._changed_groups.add(group.name)

    def delete_group(self, name: str) -> None:
        self.groups.pop(name, None)
        self._changed_groups.add(name)

    @property
    def unshared(self) -> bool:
        """Changes made here that the shared state has not taken yet (it was away)."""
        return bool(self._changed_endpoints or self._changed_groups)

    def replace(self, endpoints: dict[str, Endpoint], groups: dict[str, WorkerGroup]) -> None:
        """Take in the shared state's endpoints and groups (another router changed them), but
        for those changed here and not shared yet. Watchers hear of every endpoint that changed."""
        for name in self._changed_endpoints:
            endpoints.pop(name, None)
            if name in self.endpoints:
                endpoints[name] = self.endpoints[name]
        for name in self._changed_groups:
            groups.pop(name, None)
            if name in self.groups:
                groups[name] = self.groups[name]
        before, self.endpoints, self.groups = self.endpoints, endpoints, groups
        for name in before.keys() | endpoints.keys():
            if before.get(name) != endpoints.get(name):
                self._notify(name, endpoints.get(name))

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
        the next one waits until the file is written, so an older state never lands last.
        Shared (`share`): the changes since the last save go to the shared state; if it is
        away, they stay to be written by the next save, and its error is raised."""
        if self._share is not None:
            await asyncio.shield(self._write_shared(self._share))
            return
        self._changed_endpoints.clear()  # the file holds every resource, changed or not
        self._changed_groups.clear()
        if self._path is not None:
            await asyncio.shield(self._write(self._path))

    async def save_if_unsaved(self) -> bool:
        """Write what the last write could not store; whether something was written now. A
        failure again leaves it unsaved, quietly (the failed request said so already)."""
        if not self.unsaved:
            return False
        try:
            await self.save()
        except StateUnwritable:
            return False
        return True

    async def _write(self, path: Path) -> None:
        async with self._write_lock:
            try:
                await asyncio.to_thread(_write_json, path, self.snapshot())
            except StateUnwritable:
                self.unsaved = True
                raise
            self.unsaved = False

    async def _write_shared(self, share: Share) -> None:
        async with self._write_lock:
            endpoints = {name: self.endpoints.get(name) for name in self._changed_endpoints}
            groups = {name: self.groups.get(name) for name in self._changed_groups}
            await share(endpoints, groups)
            self._changed_endpoints.difference_update(endpoints)
            self._changed_groups.difference_update(groups)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    write_private(path, json.dumps(data, indent=1).encode())
