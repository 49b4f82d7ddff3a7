"""The Vast.ai provider: workers are Vast instances, managed through Vast's REST API.

start:        POST /api/v0/bundles/ (search on-demand offers, cheapest first), then
              PUT  /api/v0/asks/{offer_id}/ with the template (answers {"new_contract": id})
              and, given a join-token minter, `env` {"TGIS_JOIN_TOKEN": a new join token}
              (the body's `env`, as Vast's client sends `--env`): the worker registers with it;
              given `instance_env`, what it returns at that moment joins `env` (the endpoint's
              MODEL_ID, say), over the template's own variables
stop_to_cold: PUT  /api/v0/instances/{id}/ {"state": "stopped"}  (disk and model are kept)
resume:       PUT  /api/v0/instances/{id}/ {"state": "running"}
destroy:      DELETE /api/v0/instances/{id}/
list:         GET  /api/v0/instances/?owner=me (only instances labelled for this endpoint)

The bodies are those Vast's own client (`vastai` on PyPI) sends for the same operations; the
tests run that client against the same fake server as this provider.

Every call carries `Authorization: Bearer <api key>`; a non-2xx answer or a network error
becomes a ProviderError naming the call. The session is injected (aiohttp), so the caller owns
its lifetime and tests can point it at a fake server.
"""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from router.providers.base import ProviderError, ProviderState, ProviderWorker

__all__ = ["VastAIConfig", "VastAIProvider"]

STATES = {
    "running": ProviderState.RUNNING,
    "loading": ProviderState.CREATING,
    "created": ProviderState.CREATING,
    "scheduling": ProviderState.CREATING,
    "offline": ProviderState.ERROR,
    "error": ProviderState.ERROR,
}


@dataclass(frozen=True)
class VastAIConfig:
    api_key: str
    template_hash: str
    endpoint: str = "default"
    base_url: str = "https://console.vast.ai"
    search: dict[str, Any] = field(default_factory=dict)  # extra filters, Vast's query format
    disk_gb: float = 32.0

    def offer_query(self) -> dict[str, Any]:
        """The search body: Vast's default filters, then ours, cheapest first."""
        return {
            "verified": {"eq": True},
            "external": {"eq": False},
            "rentable": {"eq": True},
            "rented": {"eq": False},
            **self.search,
            "order": [["dph_total", "asc"]],
            "type": "on-demand",
            "allocated_storage": self.disk_gb,
        }

    @property
    def label(self) -> str:
        return f"tgi-serverless:{self.endpoint}"


JoinTokenMinter = Callable[[], Awaitable[str]]
"""A new one-time join token for the provider's endpoint, each time it is called."""


class VastAIProvider:
    def __init__(
        self,
        config: VastAIConfig,
        session: aiohttp.ClientSession,
        *,
        join_token: JoinTokenMinter | None = None,
        instance_env: Callable[[], Mapping[str, str]] | None = None,
    ) -> None:
        self.config = config
        self.session = session
        self._join_token = join_token
        self._instance_env = instance_env
        self._first_seen: dict[str, float] = {}

    async def start(self) -> ProviderWorker:
        offers = await self._request("POST", "/api/v0/bundles/", self.config.offer_query())
        candidates = sorted(offers.get("offers") or [], key=lambda o: o.get("dph_total", 0.0))
        if not candidates:
            raise ProviderError("vastai: no offer matches the search")
        body: dict[str, Any] = {
            "client_id": "me",
            "template_hash_id": self.config.template_hash,
            "disk": self.config.disk_gb,
            "label": self.config.label,
        }
        env = dict(self._instance_env()) if self._instance_env is not None else {}
        if self._join_token is not None:
            env["TGIS_JOIN_TOKEN"] = await self._join_token()
        if env:
            body["env"] = env
        created = await self._request("PUT", f"/api/v0/asks/{candidates[0]['id']}/", body)
        if not created.get("success") or "new_contract" not in created:
            raise ProviderError(f"vastai: the instance was not created: {created}")
        worker_id, now = str(created["new_contract"]), time.time()
        self._first_seen[worker_id] = now
        return ProviderWorker(worker_id, ProviderState.CREATING, "", now)

    async def stop_to_cold(self, worker_id: str) -> None:
        await self._request("PUT", f"/api/v0/instances/{worker_id}/", {"state": "stopped"})

    async def resume(self, worker_id: str) -> None:
        await self._request("PUT", f"/api/v0/instances/{worker_id}/", {"state": "running"})

    async def destroy(self, worker_id: str) -> None:
        await self._request("DELETE", f"/api/v0/instances/{worker_id}/", {})

    async def list(self) -> builtins.list[ProviderWorker]:
        """This endpoint's instances. One without a start date yet (Vast sets it once the
        contract starts) counts from when this provider first saw it, never from 1970: the
        autoscaler would take it for one that missed its ready timeout long ago."""
        answer = await self._request("GET", "/api/v0/instances/?owner=me", None)
        now = time.time()
        workers = []
        for instance in answer.get("instances") or []:
            if instance.get("label") != self.config.label:
                continue
            seen = self._first_seen.setdefault(str(instance["id"]), now)
            workers.append(_worker(instance, seen))
        return workers

    async def _request(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        url = self.config.base_url.rstrip("/") + path
        headers = {"Authorization": f"Bearer {self.config.api_key}"}
        try:
            async with self.session.request(method, url, json=body, headers=headers) as response:
                text = await response.text()
                if response.status >= 300:
                    raise ProviderError(f"vastai: {method} {path}: {response.status} {text[:200]}")
        except aiohttp.ClientError as exc:
            raise ProviderError(f"vastai: {method} {path}: {exc}") from None
        try:
            return json.loads(text) if text else {}
        except ValueError:
            raise ProviderError(f"vastai: {method} {path}: not JSON: {text[:200]}") from None


def _worker(instance: dict[str, Any], first_seen: float) -> ProviderWorker:
    actual = str(instance.get("actual_status") or "created")
    intended = str(instance.get("intended_status") or "running")
    if actual in ("stopped", "exited"):
        state = ProviderState.STOPPED if intended == "stopped" else ProviderState.EXITED
    else:
        state = STATES.get(actual, ProviderState.CREATING)
    ports = instance.get("ports") or {}
    mapped = (ports.get("3000/tcp") or [{}])[0].get("HostPort")
    address = instance.get("public_ipaddr")
    url = f"http://{address}:{mapped}" if address and mapped else ""
    since = float(instance.get("start_date") or 0) or first_seen
    return ProviderWorker(str(instance["id"]), state, url, since)
