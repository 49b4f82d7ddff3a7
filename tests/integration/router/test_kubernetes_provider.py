"""The Kubernetes provider against kmock: a real local HTTP server that emulates the Kubernetes
API (objects created, read, listed, deleted; 404 and 409 as the API answers them), reached over
a socket by `kubernetes_asyncio`, as a cluster would be.

kmock 0.8 neither filters lists by label selector nor gives objects a uid or creation time: the
provider checks labels itself and falls back to when it first saw a worker, as these tests show.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kmock
import pytest
import yaml
from kubernetes_asyncio.client import ApiClient, Configuration, CoreV1Api
from kubernetes_asyncio.client.exceptions import ApiException

from router.providers.base import ProviderError, ProviderState
from router.providers.k8s_objects import JOIN_TOKEN_KEY
from router.providers.kubernetes import KubernetesConfig, KubernetesProvider
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = yaml.safe_load((ROOT / "templates" / "k8s" / "worker-pod.yaml").read_text())
NAMESPACE = "llm"
KINDS = {"pods": "Pod", "secrets": "Secret", "persistentvolumeclaims": "PersistentVolumeClaim"}


class Tokens:
    """Mints a distinct join token per call, and remembers for which worker."""

    def __init__(self) -> None:
        self.minted: list[tuple[str, str]] = []

    async def __call__(self, worker_id: str) -> str:
        token = f"join-token-{len(self.minted) + 1}-for-{worker_id}"
        self.minted.append((worker_id, token))
        return token


@pytest.fixture
async def api(kmock: kmock.KubernetesEmulator) -> AsyncIterator[ApiClient]:
    """A client of kmock serving the kinds a cluster has (kmock knows a kind once declared)."""
    for plural, kind in KINDS.items():
        kmock.resources[f"v1/{plural}"] = kmock.ResourceInfo(namespaced=True, kind=kind)
    async with ApiClient(Configuration(host=str(kmock.url).rstrip("/"))) as client:
        yield client


@pytest.fixture
def core(api: ApiClient) -> CoreV1Api:
    """The same API as the provider's, for the tests to look and to play the cluster."""
    return CoreV1Api(api)


@pytest.fixture
def tokens() -> Tokens:
    return Tokens()


def make_provider(api: ApiClient, tokens: Tokens, endpoint: str = "llama") -> KubernetesProvider:
    config = KubernetesConfig(namespace=NAMESPACE, pod_template=TEMPLATE, endpoint=endpoint)
    env = {"REPORT_ADDR": "http://tgis-router.llm.svc:8080", "MODEL_ID": "org/model"}
    return KubernetesProvider(config, api, join_token=tokens, worker_env=lambda: env)


@pytest.fixture
def provider(api: ApiClient, tokens: Tokens) -> KubernetesProvider:
    return make_provider(api, tokens)


async def document(api: ApiClient, kind: str, name: str) -> dict[str, Any]:
    """The object as the API's JSON has it (`kind` as the client's method names spell it)."""
    read = getattr(CoreV1Api(api), f"read_namespaced_{kind}")
    result: dict[str, Any] = api.sanitize_for_serialization(await read(name, NAMESPACE))
    return result


async def absent(api: ApiClient, kind: str, name: str) -> bool:
    try:
        await document(api, kind, name)
    except ApiException as exc:
        return exc.status == 404
    return False


async def test_an_empty_namespace_has_no_worker(provider: KubernetesProvider) -> None:
    assert await provider.list() == []


async def test_start_makes_a_claim_a_secret_and_a_pod_from_the_template(
    provider: KubernetesProvider, api: ApiClient, tokens: Tokens
) -> None:
    worker = await provider.start()
    assert worker.state is ProviderState.CREATING
    assert worker.id.startswith("tgis-llama-")
    [(bound_to, token)] = tokens.minted
    assert bound_to == worker.id

    pod = await document(api, "pod", worker.id)
    [container] = pod["spec"]["containers"]
    assert container["image"] == TEMPLATE["spec"]["containers"][0]["image"]
    env = {item["name"]: item for item in container["env"]}
    assert env["REPORT_ADDR"]["value"] == "http://tgis-router.llm.svc:8080"
    assert env["MODEL_ID"]["value"] == "org/model"
    assert env["CONTAINER_ID"]["value"] == worker.id
    assert env["TGIS_PUBLIC_URL"]["value"] == "http://$(POD_IP):3000"
    assert env[JOIN_TOKEN_KEY]["valueFrom"]["secretKeyRef"] == {
        "name": worker.id,
        "key": JOIN_TOKEN_KEY,
    }
    assert token not in json.dumps(pod), "the join token is never in the Pod's spec"
    assert pod["spec"]["restartPolicy"] == "Never"
    cache = {"name": "model-cache", "persistentVolumeClaim": {"claimName": worker.id}}
    assert cache in pod["spec"]["volumes"]
    assert {"name": "model-cache", "mountPath": "/data"} in container["volumeMounts"]

    secret = await document(api, "secret", worker.id)
    assert secret["stringData"] == {JOIN_TOKEN_KEY: token}
    claim = await document(api, "persistent_volume_claim", worker.id)
    assert claim["spec"]["resources"]["requests"]["storage"] == "100Gi"
    assert claim["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "tgi-serverless",
        "tgi-serverless.io/endpoint": "llama",
    }

    [listed] = await provider.list()
    assert (listed.id, listed.state, listed.url) == (worker.id, ProviderState.CREATING, "")
    assert listed.since == worker.since > 0  # kmock gives no creation time: when it started


async def test_a_running_pod_is_a_running_worker_at_its_pod_ip(
    provider: KubernetesProvider, core: CoreV1Api
) -> None:
    worker = await provider.start()
    status = {"status": {"phase": "Running", "podIP": "10.1.2.3"}}
    await core.patch_namespaced_pod_status(worker.id, NAMESPACE, status)
    [listed] = await provider.list()
    assert (listed.state, listed.url) == (ProviderState.RUNNING, "http://10.1.2.3:3000")
    await core.patch_namespaced_pod_status(worker.id, NAMESPACE, {"status": {"phase": "Failed"}})
    [listed] = await provider.list()
    assert listed.state is ProviderState.EXITED


async def test_parking_keeps_the_claim_and_resuming_makes_the_pod_again_with_a_new_token(
    provider: KubernetesProvider, api: ApiClient, tokens: Tokens
) -> None:
    worker = await provider.start()
    await provider.stop_to_cold(worker.id)
    assert await absent(api, "pod", worker.id)
    assert await absent(api, "secret", worker.id)
    assert not await absent(api, "persistent_volume_claim", worker.id)
    [parked] = await provider.list()
    assert (parked.id, parked.state, parked.url) == (worker.id, ProviderState.STOPPED, "")
    await provider.stop_to_cold(worker.id)  # parking a parked worker changes nothing

    await provider.resume(worker.id)
    [(_, first), (bound_to, second)] = tokens.minted
    assert bound_to == worker.id
    assert second != first
    secret = await document(api, "secret", worker.id)
    assert secret["stringData"] == {JOIN_TOKEN_KEY: second}
    assert not await absent(api, "pod", worker.id)
    [resumed] = await provider.list()
    assert (resumed.id, resumed.state) == (worker.id, ProviderState.CREATING)


async def test_destroy_removes_every_object_and_a_second_time_is_no_error(
    provider: KubernetesProvider,
    api: ApiClient,
) -> None:
    worker = await provider.start()
    await provider.destroy(worker.id)
    for kind in ("pod", "secret", "persistent_volume_claim"):
        assert await absent(api, kind, worker.id), kind
    assert await provider.list() == []
    await provider.destroy(worker.id)  # 404s: gone already


async def test_only_the_endpoints_own_objects_are_counted(
    api: ApiClient, core: CoreV1Api, tokens: Tokens
) -> None:
    ours, theirs = make_provider(api, tokens, "llama"), make_provider(api, tokens, "mistral")
    mine = await ours.start()
    await theirs.start()
    stranger: Any = {
        "metadata": {"name": "someone-elses"},
        "spec": {"accessModes": ["ReadWriteOnce"]},
    }
    await core.create_namespaced_persistent_volume_claim(NAMESPACE, stranger)
    assert [worker.id for worker in await ours.list()] == [mine.id]


async def test_resuming_while_the_parked_pod_still_terminates_is_a_provider_error(
    provider: KubernetesProvider,
) -> None:
    """The API answers 409 to a Pod whose name is still taken: the loop tries again later."""
    worker = await provider.start()
    with pytest.raises(ProviderError, match=r"create Pod: 409"):
        await provider.resume(worker.id)


async def test_a_secret_a_failed_call_left_behind_is_replaced(
    provider: KubernetesProvider, api: ApiClient, core: CoreV1Api, tokens: Tokens
) -> None:
    worker = await provider.start()
    await provider.stop_to_cold(worker.id)
    stale: Any = {"metadata": {"name": worker.id}, "stringData": {JOIN_TOKEN_KEY: "stale"}}
    await core.create_namespaced_secret(NAMESPACE, stale)
    await provider.resume(worker.id)
    secret = await document(api, "secret", worker.id)
    assert secret["stringData"] == {JOIN_TOKEN_KEY: tokens.minted[-1][1]}


async def test_resuming_a_worker_without_its_claim_is_a_provider_error(
    provider: KubernetesProvider,
) -> None:
    with pytest.raises(ProviderError, match=r"read PersistentVolumeClaim: 404"):
        await provider.resume("tgis-llama-gone00")


@pytest.mark.parametrize(
    ("reaction", "call", "message"),
    [
        ("list persistentvolumeclaims", "list", r"list PersistentVolumeClaims: 500"),
        ("list pods", "list", r"list Pods: 503"),
        ("create persistentvolumeclaims", "start", r"create PersistentVolumeClaim: 403"),
        ("create secrets", "start", r"create Secret: 403"),
        ("create pods", "start", r"create Pod: 422"),
    ],
)
async def test_api_errors_become_provider_errors_naming_the_call(
    kmock: kmock.KubernetesEmulator,
    provider: KubernetesProvider,
    reaction: str,
    call: str,
    message: str,
) -> None:
    status = int(message.rsplit(": ", 1)[1])
    kmock[reaction] << status << {"kind": "Status", "code": status, "message": "no"}
    with pytest.raises(ProviderError, match=message):
        await getattr(provider, call)()


async def test_a_delete_that_fails_is_a_provider_error(
    kmock: kmock.KubernetesEmulator, provider: KubernetesProvider
) -> None:
    """Unlike one that finds nothing (404, above): the worker may still run."""
    worker = await provider.start()
    kmock["delete pods"] << 500 << {"kind": "Status", "code": 500, "message": "etcd is away"}
    with pytest.raises(ProviderError, match=f"delete Pod {worker.id}: 500"):
        await provider.stop_to_cold(worker.id)


async def test_an_unreachable_api_is_a_provider_error(tokens: Tokens) -> None:
    configuration = Configuration(host=f"http://127.0.0.1:{free_port()}")
    async with ApiClient(configuration) as unreachable:
        provider = make_provider(unreachable, tokens)
        with pytest.raises(ProviderError, match="list PersistentVolumeClaims"):
            await provider.list()
        with pytest.raises(ProviderError, match="delete Pod"):
            await provider.destroy("tgis-llama-x")
