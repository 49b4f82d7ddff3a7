"""The provider's watch (router.providers.k8s_watch) against kmock: once synced, the
autoscaler's list asks the API nothing; events change the workers; an expired watch (410)
lists again; a failed one is tried again until it holds; a silent one is given up.

kmock 0.8 takes a watch only as `watch=true`, while kubernetes_asyncio sends `watch=True` (the
API server takes either: Go's ParseBool), and its own watch replays the objects but does not
stream later changes: so the watch requests are answered here by streams the tests feed, as
the API server would (`kmock[...] << event` sends to every open stream, each cache keeps
only its kind)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import kmock
import pytest
import yaml
from kmock import Request
from kubernetes_asyncio.client import ApiClient, Configuration

from router.providers.base import ProviderState
from router.providers.kubernetes import KubernetesConfig, KubernetesProvider

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = yaml.safe_load((ROOT / "templates" / "k8s" / "worker-pod.yaml").read_text())
WATCH = {"watch": "True"}
EXPIRED = {
    "type": "ERROR",
    "object": {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"},
}


async def token(worker_id: str) -> str:
    return f"token-for-{worker_id}"


@pytest.fixture
async def provider(kmock: kmock.KubernetesEmulator) -> AsyncIterator[KubernetesProvider]:
    for plural in ("pods", "secrets", "persistentvolumeclaims"):
        kmock.resources[f"v1/{plural}"] = kmock.ResourceInfo(namespaced=True)
    async with ApiClient(Configuration(host=str(kmock.url).rstrip("/"))) as api:
        config = KubernetesConfig(namespace="llm", pod_template=TEMPLATE, endpoint="llama")
        provider = KubernetesProvider(config, api, join_token=token)
        for cache in (provider.claims, provider.pods):
            cache.retry_s = 0.05
        yield provider


@pytest.fixture
async def watching(provider: KubernetesProvider) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(provider.watch())
    yield task
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(400):
        if condition():
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"never: {what}")


def lists(emulator: kmock.KubernetesEmulator) -> int:
    """The LISTs the server took that were not watches."""
    return sum(1 for request in emulator[kmock.action.LIST] if "watch" not in request.params)


def synced(provider: KubernetesProvider) -> bool:
    return provider.claims.synced and provider.pods.synced


async def test_once_synced_the_list_asks_the_api_nothing(
    kmock: kmock.KubernetesEmulator, provider: KubernetesProvider, watching: asyncio.Task[None]
) -> None:
    kmock[WATCH] << (...,)  # open watches: events come when the test sends them
    await until(lambda: synced(provider), "synced")
    worker = await provider.start()  # its claim and Pod go in at once, ahead of any event
    before = lists(kmock)
    [listed] = await provider.list()
    assert (listed.id, listed.state) == (worker.id, ProviderState.CREATING)
    await provider.stop_to_cold(worker.id)
    [parked] = await provider.list()
    assert parked.state is ProviderState.STOPPED
    assert lists(kmock) == before


async def test_an_event_changes_the_worker(
    kmock: kmock.KubernetesEmulator, provider: KubernetesProvider, watching: asyncio.Task[None]
) -> None:
    kmock[WATCH] << (...,)
    await until(lambda: synced(provider), "synced")
    worker = await provider.start()
    pod: dict[str, Any] = dict(provider.pods.objects[worker.id])
    pod["status"] = {"phase": "Running", "podIP": "10.4.0.7"}
    kmock[...] << ({"type": "MODIFIED", "object": pod}, ...)
    await until(lambda: "status" in provider.pods.objects[worker.id], "the event")
    [listed] = await provider.list()
    assert (listed.state, listed.url) == (ProviderState.RUNNING, "http://10.4.0.7:3000")
    kmock[...] << ({"type": "DELETED", "object": pod}, ...)
    await until(lambda: worker.id not in provider.pods.objects, "the deletion")
    [parked] = await provider.list()
    assert parked.state is ProviderState.STOPPED


async def test_an_expired_watch_lists_again(
    kmock: kmock.KubernetesEmulator, provider: KubernetesProvider
) -> None:
    answered: set[str] = set()

    def first_of_its_kind(request: Request) -> bool:
        """The first watch of each kind: its resourceVersion has expired (410)."""
        assert request.resource is not None
        kind = str(request.resource.plural)
        fresh = kind not in answered
        answered.add(kind)
        return fresh

    kmock[WATCH][first_of_its_kind] << (EXPIRED,)
    kmock[WATCH] << (...,)
    for cache in (provider.claims, provider.pods):
        cache.retry_s = 60.0  # other errors wait this long: a 410 lists again at once
    task = asyncio.create_task(provider.watch())
    try:
        await until(lambda: provider.pods.lists == 2 and synced(provider), "listed again")
        assert provider.claims.lists == 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert not synced(provider), "a cache nobody keeps is not in step"


async def test_a_failed_watch_is_tried_again_until_it_holds(
    kmock: kmock.KubernetesEmulator, provider: KubernetesProvider
) -> None:
    """While it fails the cache is out of step after each failure (the provider's list then
    asks the API, as without a watch); once the API answers, it stays in step."""
    failing = [True]
    kmock[WATCH][lambda request: failing[0]] << 500 << {"kind": "Status", "code": 500}
    kmock[WATCH] << (...,)
    task = asyncio.create_task(provider.watch())
    try:
        await until(lambda: provider.pods.lists >= 3, "tried again")
        failing[0] = False
        await until(lambda: synced(provider), "in step")
        await asyncio.sleep(0.2)  # the watches that follow the lists are made
        watches = len(kmock[WATCH])
        await asyncio.sleep(0.3)  # 6 retry periods: a held watch is not tried again
        assert synced(provider)
        assert len(kmock[WATCH]) == watches
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_watch_that_goes_silent_is_given_up_and_listed_again(
    kmock: kmock.KubernetesEmulator, provider: KubernetesProvider
) -> None:
    """The server ends a watch after its timeoutSeconds; one that stays open and silent past
    that (a half-open connection) must not keep stale objects in step forever."""
    kmock[WATCH] << (...,)  # open, and never a word: kmock ignores timeoutSeconds
    provider.pods.watch_timeout_s, provider.pods.grace_s = 1, 0.2
    task = asyncio.create_task(provider.watch())
    try:
        await until(lambda: provider.pods.lists >= 2, "given up and listed again")
        assert provider.claims.lists == 1  # its watch has the default minute
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
