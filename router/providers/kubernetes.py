"""The Kubernetes provider: each worker is a Pod in one namespace, made from the endpoint's
worker Pod template (templates/k8s/worker-pod.yaml), through the Kubernetes API
(`kubernetes_asyncio`, on aiohttp).

start:        create PersistentVolumeClaim W (the model cache), Secret W (a new join token,
              owned by the claim), then Pod W (the template; the token by `secretKeyRef`)
stop_to_cold: delete Pod W and Secret W; the claim stays, with the model on it (parked)
resume:       a new join token in Secret W, then Pod W again, on the same claim
destroy:      delete Pod W, Secret W and PersistentVolumeClaim W
list:         the endpoint's claims (one per worker) and Pods, by label; a claim without a
              live Pod is a parked worker. While `watch()` runs, both are kept in memory by a
              LIST and a WATCH each (router.providers.k8s_watch), and a tick asks the API
              nothing; else each list asks it

Answers, as the autoscaler loop expects them (router.providers.base): a delete that finds
nothing (404) is done already; a Secret that exists (409, one a failed call left behind) is
replaced; a Pod that exists (409: the one just parked is still terminating) and every other
API or network error is a ProviderError naming the call, which the loop retries on a later tick.
An expired watch (410) lists again.
The objects module (router.providers.k8s_objects) says what each object holds.
"""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import aiohttp
from kubernetes_asyncio.client import ApiClient, CoreV1Api
from kubernetes_asyncio.client.exceptions import ApiException

from router.providers.base import ProviderError, ProviderState, ProviderWorker
from router.providers.k8s_objects import (
    KubernetesConfig,
    cache_claim,
    is_ours,
    join_token_secret,
    label_selector,
    new_worker_name,
    worker_pod,
    worker_view,
)
from router.providers.k8s_watch import ObjectCache

__all__ = ["KubernetesConfig", "KubernetesProvider"]

T = TypeVar("T")

JoinTokenMinter = Callable[[str], Awaitable[str]]
"""A new one-time join token for the worker of this name."""


class KubernetesProvider:
    def __init__(
        self,
        config: KubernetesConfig,
        api: ApiClient,
        *,
        join_token: JoinTokenMinter,
        worker_env: Callable[[], Mapping[str, str]] = dict,
    ) -> None:
        """`api` is a configured client (the caller owns it); `worker_env()` is what each new
        Pod gets in its environment (REPORT_ADDR, MODEL_ID, ...) besides its own variables."""
        self.config = config
        self._api = api
        self._core = CoreV1Api(api)
        self._join_token = join_token
        self._worker_env = worker_env
        self._seen: dict[str, float] = {}
        namespace, endpoint = config.namespace, config.endpoint
        list_claims = self._core.list_namespaced_persistent_volume_claim
        self.claims = ObjectCache(api, "PersistentVolumeClaim", list_claims, namespace, endpoint)
        self.pods = ObjectCache(api, "Pod", self._core.list_namespaced_pod, namespace, endpoint)

    async def watch(self) -> None:
        """Keep the endpoint's claims and Pods in memory (LIST, then WATCH) until cancelled:
        `list` then asks the API nothing while both are in step."""
        await asyncio.gather(self.claims.run(), self.pods.run())

    async def start(self) -> ProviderWorker:
        name, endpoint = new_worker_name(self.config.endpoint), self.config.endpoint
        claim = cache_claim(
            name, endpoint, size=self.config.cache_size, storage_class=self.config.storage_class
        )
        created = await self._call(
            "create PersistentVolumeClaim",
            self._core.create_namespaced_persistent_volume_claim(
                self.config.namespace, _body(claim)
            ),
        )
        self.claims.put(self._api.sanitize_for_serialization(created))
        await self._run_pod(name, str(created.metadata.uid or ""))
        return ProviderWorker(name, ProviderState.CREATING, "", self._seen[name])

    async def stop_to_cold(self, worker_id: str) -> None:
        await self._delete("Pod", self._core.delete_namespaced_pod, worker_id)
        self.pods.drop(worker_id)
        await self._delete("Secret", self._core.delete_namespaced_secret, worker_id)

    async def resume(self, worker_id: str) -> None:
        claim = await self._call(
            "read PersistentVolumeClaim",
            self._core.read_namespaced_persistent_volume_claim(worker_id, self.config.namespace),
        )
        await self._run_pod(worker_id, str(claim.metadata.uid or ""))

    async def destroy(self, worker_id: str) -> None:
        await self.stop_to_cold(worker_id)
        delete_claim = self._core.delete_namespaced_persistent_volume_claim
        await self._delete("PersistentVolumeClaim", delete_claim, worker_id)
        self.claims.drop(worker_id)
        self._seen.pop(worker_id, None)

    async def list(self) -> builtins.list[ProviderWorker]:
        """The endpoint's workers: one per claim that is not being deleted. From memory while
        `watch` keeps both kinds in step, else from the API."""
        if self.claims.synced and self.pods.synced:
            claims, pods = list(self.claims.objects.values()), list(self.pods.objects.values())
        else:
            claims, pods = await self._list_from_api()
        pods_by_name = {pod["metadata"]["name"]: pod for pod in pods}
        now, workers = time.time(), []
        for claim in claims:
            if claim["metadata"].get("deletionTimestamp"):
                continue
            name = claim["metadata"]["name"]
            seen = self._seen.setdefault(name, now)
            port = self.config.worker_port
            workers.append(worker_view(claim, pods_by_name.get(name), worker_port=port, seen=seen))
        return workers

    async def _list_from_api(
        self,
    ) -> tuple[builtins.list[dict[str, Any]], builtins.list[dict[str, Any]]]:
        namespace, selector = self.config.namespace, label_selector(self.config.endpoint)
        claims = await self._call(
            "list PersistentVolumeClaims",
            self._core.list_namespaced_persistent_volume_claim(namespace, label_selector=selector),
        )
        pods = await self._call(
            "list Pods", self._core.list_namespaced_pod(namespace, label_selector=selector)
        )
        return self._documents(claims), self._documents(pods)

    async def _run_pod(self, name: str, claim_uid: str) -> None:
        """Secret `name` with a new join token, then Pod `name` from the template."""
        endpoint, namespace = self.config.endpoint, self.config.namespace
        secret = _body(join_token_secret(name, endpoint, await self._join_token(name), claim_uid))
        try:
            await self._core.create_namespaced_secret(namespace, secret)
        except ApiException as exc:
            if exc.status != 409:
                raise _error("create Secret", exc) from None
            await self._delete("Secret", self._core.delete_namespaced_secret, name)
            again = self._core.create_namespaced_secret(namespace, secret)
            await self._call("create Secret", again)
        except aiohttp.ClientError as exc:
            raise ProviderError(f"kubernetes: create Secret: {exc}") from None
        pod = _body(
            worker_pod(
                self.config.pod_template,
                name,
                endpoint,
                env=self._worker_env(),
                worker_port=self.config.worker_port,
            )
        )
        created = await self._call("create Pod", self._core.create_namespaced_pod(namespace, pod))
        self.pods.put(self._api.sanitize_for_serialization(created))
        self._seen[name] = time.time()

    async def _delete(self, kind: str, delete: Callable[..., Awaitable[Any]], name: str) -> None:
        """Delete one object; one already gone (404) is deleted."""
        try:
            await delete(name, self.config.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise _error(f"delete {kind} {name}", exc) from None
        except aiohttp.ClientError as exc:
            raise ProviderError(f"kubernetes: delete {kind} {name}: {exc}") from None

    @staticmethod
    async def _call(what: str, call: Awaitable[T]) -> T:
        try:
            return await call
        except ApiException as exc:
            raise _error(what, exc) from None
        except aiohttp.ClientError as exc:
            raise ProviderError(f"kubernetes: {what}: {exc}") from None

    def _documents(self, listing: Any) -> builtins.list[dict[str, Any]]:
        """A list's items that are the endpoint's, as the API's JSON has them."""
        documents = [self._api.sanitize_for_serialization(item) for item in listing.items or []]
        return [document for document in documents if is_ours(document, self.config.endpoint)]


def _body(manifest: dict[str, Any]) -> Any:
    """A manifest as a request body: the client's methods take the API's JSON as a dict as well
    as their models (they send either as it is), though their annotations name the models."""
    return manifest


def _error(what: str, exc: ApiException) -> ProviderError:
    body = str(exc.body or exc.reason or "")[:200]
    return ProviderError(f"kubernetes: {what}: {exc.status} {body}")
