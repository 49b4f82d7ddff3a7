"""One kind's objects of an endpoint, kept in memory by a LIST and then a WATCH of the
Kubernetes API, so that the autoscaler's list (every tick) asks the API nothing.

`run()` lists, then watches from the list's resourceVersion for `watch_timeout_s` (the server
ends the watch then; a connection that went silent is given up `grace_s` later), and lists
again.
A watch whose resourceVersion has expired (410 Gone, as an ERROR event or as the answer) lists
again at once; any other error marks the objects unsynced (the provider then lists by itself)
and tries again after `retry_s`. What the provider writes is put in (or dropped) at once,
ahead of its event, so a worker it just started is never missing from the next tick; the
deletion of an earlier object of the same name (the Pod a resumed worker had before it was
parked) does not remove the new one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.watch import Watch

from router.providers.k8s_objects import is_ours, label_selector

__all__ = ["ObjectCache"]

log = logging.getLogger(__name__)

ListCall = Callable[..., Awaitable[Any]]
"""A namespaced list method of the client (`CoreV1Api.list_namespaced_pod`, ...)."""


class ObjectCache:
    def __init__(
        self,
        api: ApiClient,
        kind: str,
        list_call: ListCall,
        namespace: str,
        endpoint: str,
        *,
        watch_timeout_s: int = 60,
        grace_s: float = 15.0,
        retry_s: float = 1.0,
    ) -> None:
        self._api = api
        self._kind = kind
        self._list_call = list_call
        self._namespace = namespace
        self._endpoint = endpoint
        self._selector = label_selector(endpoint)
        self.watch_timeout_s = watch_timeout_s
        self.grace_s = grace_s
        self.retry_s = retry_s
        self.objects: dict[str, dict[str, Any]] = {}
        self.synced = False  # the objects are the API's, as of the last event
        self.lists = 0  # LISTs made, for the tests and the logs

    async def run(self) -> None:
        """Keep the objects until cancelled; unsynced from then on."""
        try:
            while True:
                await self._list_and_watch()
        finally:
            self.synced = False

    async def _list_and_watch(self) -> None:
        try:
            await self._watch(await self._list())
        except ApiException as exc:
            self.synced = False
            if exc.status == 410:
                log.info("kubernetes: the watch expired (410): listing again")
                return
            log.warning("kubernetes: watching %s: %s %s", self._endpoint, exc.status, exc.reason)
            await asyncio.sleep(self.retry_s)
        except Exception as exc:  # noqa: BLE001  # aiohttp's, and the client's own for a bad event
            self.synced = False
            log.warning("kubernetes: watching %s: %r", self._endpoint, exc)
            await asyncio.sleep(self.retry_s)

    def put(self, document: dict[str, Any]) -> None:
        """Keep an object of this kind (one that names none is taken as such) if it is the
        endpoint's."""
        if document.get("kind", self._kind) == self._kind and is_ours(document, self._endpoint):
            self.objects[document["metadata"]["name"]] = document

    def drop(self, name: str) -> None:
        self.objects.pop(name, None)

    async def _list(self) -> str | None:
        listing = await self._list_call(self._namespace, label_selector=self._selector)
        self.lists += 1
        self.objects = {}
        for item in listing.items or []:
            self.put(self._api.sanitize_for_serialization(item))
        self.synced = True
        version = listing.metadata.resource_version if listing.metadata else None
        return str(version) if version else None

    async def _watch(self, version: str | None) -> None:
        arguments: dict[str, Any] = {
            "label_selector": self._selector,
            "timeout_seconds": self.watch_timeout_s,
            "_request_timeout": aiohttp.ClientTimeout(total=self.watch_timeout_s + self.grace_s),
        }
        if version:
            arguments["resource_version"] = version
        async with Watch() as watch:
            stream = watch.stream(self._list_call, self._namespace, **arguments)
            async for event in stream:
                self._apply(str(event.get("type", "")), event.get("raw_object") or {})

    def _apply(self, kind: str, document: dict[str, Any]) -> None:
        name = (document.get("metadata") or {}).get("name")
        if not name or document.get("kind", self._kind) != self._kind:
            return
        if kind in ("ADDED", "MODIFIED"):
            self.put(document)
        elif kind == "DELETED" and _uid(self.objects.get(name)) in ("", _uid(document)):
            self.drop(name)  # not a newer object of the same name (a resumed worker's Pod)


def _uid(document: dict[str, Any] | None) -> str:
    return str(((document or {}).get("metadata") or {}).get("uid") or "")
