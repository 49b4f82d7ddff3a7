"""templates/k8s/ against Kubernetes' own schemas, offline: the worker Pod template, the objects
the provider makes from it, and every document of the Helm chart, each validated strictly
(unknown fields refused) by `kubernetes-validate` (dev extra), which ships the JSON schemas
generated from each Kubernetes release's OpenAPI document.

Helm itself cannot be installed here, so the chart is rendered by tests/templates/helm_subset.py,
which evaluates the few template actions the chart uses as Helm does and refuses any other. The
rendered router's arguments are parsed by our own command line, and the chart's Role is held to
exactly the calls the provider makes against kmock (a local Kubernetes API server)."""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import os
from pathlib import Path
from typing import Any

import kmock
import kubernetes_validate
import pytest
import yaml
from kubernetes_asyncio.client import ApiClient, Configuration

from router.cli.kubernetes import kubernetes_config
from router.cli.router import add_arguments
from router.providers.k8s_objects import cache_claim, join_token_secret, worker_pod
from router.providers.kubernetes import KubernetesConfig, KubernetesProvider
from tests.templates.helm_subset import Release, UnsupportedAction, render_chart, render_template

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "templates" / "k8s"
CHART = K8S / "tgi-serverless"
WORKER_POD = K8S / "worker-pod.yaml"
# The oldest Kubernetes release still maintained upstream when this was written, and the newest
# whose schemas kubernetes-validate ships.
VERSIONS = ["1.32", "1.37"]
RELEASE = Release(name="tgis", namespace="llm")
VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "own-redis": {"redis": {"enabled": False}, "stateUrl": "redis://redis.db:6379/2"},
    "no-redis": {"redis": {"enabled": False}, "router": {"stateClaim": "router-state"}},
    "placed": {
        "worker": {
            "storageClass": "fast-ssd",
            "nodeSelector": {"gpu": "a100"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
        }
    },
}


def schema_error(document: dict[str, Any], version: str) -> str | None:
    try:
        kubernetes_validate.validate(document, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(part) for part in exc.path)
        return f"{document['kind']} {path}: {exc.message}"
    return None


def rendered(values: dict[str, Any]) -> list[dict[str, Any]]:
    documents = []
    for text in render_chart(CHART, values, RELEASE).values():
        documents += [doc for doc in yaml.safe_load_all(text) if doc]
    return documents


def by_kind(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in documents if doc["kind"] == kind]


def chart_worker_template(documents: list[dict[str, Any]]) -> dict[str, Any]:
    [config_map] = by_kind(documents, "ConfigMap")
    template: dict[str, Any] = yaml.safe_load(config_map["data"]["worker-pod.yaml"])
    return template


@pytest.mark.parametrize("version", VERSIONS)
def test_the_worker_template_and_what_the_provider_makes_of_it_follow_the_schema(
    version: str,
) -> None:
    template = yaml.safe_load(WORKER_POD.read_text())
    name = "tgis-llama-0a1b2c"
    made = [
        template,
        worker_pod(template, name, "llama", env={"REPORT_ADDR": "http://r:8080"}, worker_port=3000),
        cache_claim(name, "llama", size="100Gi", storage_class="fast"),
        join_token_secret(name, "llama", "a-token", "0b6f1c2e-claim-uid"),
    ]
    assert [schema_error(document, version) for document in made] == [None] * len(made)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_document_of_the_chart_follows_the_schema(variant: str, version: str) -> None:
    documents = rendered(VARIANTS[variant])
    documents.append(chart_worker_template(documents))
    assert [schema_error(document, version) for document in documents] == [None] * len(documents)


def test_the_chart_holds_what_it_promises() -> None:
    names = {(doc["kind"], doc["metadata"]["name"]) for doc in rendered({})}
    assert names == {
        ("ServiceAccount", "tgis-router"),
        ("Role", "tgis-provider"),
        ("RoleBinding", "tgis-provider"),
        ("ConfigMap", "tgis-worker-template"),
        ("Deployment", "tgis-router"),
        ("Service", "tgis-router"),
        ("Deployment", "tgis-redis"),
        ("Service", "tgis-redis"),
    }
    without_redis = {
        (doc["kind"], doc["metadata"]["name"]) for doc in rendered(VARIANTS["no-redis"])
    }
    assert names - without_redis == {("Deployment", "tgis-redis"), ("Service", "tgis-redis")}


def test_the_schema_check_refuses_a_misspelt_field() -> None:
    """The check can fail: a field Kubernetes does not know is an error."""
    template = yaml.safe_load(WORKER_POD.read_text())
    template["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    assert "imagePullPolicyy" in (schema_error(template, VERSIONS[-1]) or "")


def test_the_renderer_refuses_what_it_does_not_understand() -> None:
    with pytest.raises(UnsupportedAction, match="include"):
        render_template('{{ include "x" . }}', {}, RELEASE)
    with pytest.raises(UnsupportedAction, match="end"):
        render_template("{{- if .Values.a }}x", {}, RELEASE)
    text = "a:{{- if .Values.on }} on{{- else if .Values.off }} off{{- else }} none{{- end }}"
    assert render_template(text, {"on": 1}, RELEASE) == "a: on"
    assert render_template(text, {"off": "yes"}, RELEASE) == "a: off"
    assert render_template(text, {"on": [], "off": ""}, RELEASE) == "a: none"


def test_the_charts_worker_template_is_the_plain_one() -> None:
    """templates/k8s/worker-pod.yaml (for a router outside the cluster) and the chart's agree:
    the same worker, less the release's label and the chart's placement fields."""
    plain = yaml.safe_load(WORKER_POD.read_text())
    charted = chart_worker_template(rendered({}))
    del charted["metadata"]["labels"]["app.kubernetes.io/instance"]
    assert charted["spec"].pop("nodeSelector") == {}
    assert charted["spec"].pop("tolerations") == []
    plain["spec"]["containers"][0]["image"] = charted["spec"]["containers"][0]["image"]
    assert charted == plain


def router_container(documents: list[dict[str, Any]]) -> dict[str, Any]:
    [router] = [
        doc for doc in by_kind(documents, "Deployment") if "router" in doc["metadata"]["name"]
    ]
    [container] = router["spec"]["template"]["spec"]["containers"]
    return container  # type: ignore[no-any-return]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_routers_arguments_are_ones_our_command_line_takes(
    variant: str, tmp_path: Path
) -> None:
    documents = rendered(VARIANTS[variant])
    container = router_container(documents)
    assert container["command"] == ["tgi-serverless"]
    assert container["args"][0] == "router"
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(container["args"][1:])
    template = tmp_path / "worker-pod.yaml"
    template.write_text(yaml.safe_dump(chart_worker_template(documents)))
    args.k8s_worker_template = template  # where the chart mounts the ConfigMap
    assert container["args"][container["args"].index("--k8s-worker-template") + 1] == (
        "/etc/tgi-serverless/worker-pod.yaml"
    )
    config = kubernetes_config(args, "default")
    assert (args.provider, config.namespace) == ("kubernetes", "llm")
    assert args.k8s_router_url == "http://tgis-router.llm.svc:8080"
    assert args.params == ["min_workers=0", "max_workers=4"]
    placed = VARIANTS[variant].get("worker", {})
    assert config.storage_class == (placed.get("storageClass") or None)


def test_the_router_finds_redis_and_its_keys() -> None:
    env = {item["name"]: item.get("value") for item in router_container(rendered({}))["env"]}
    assert env["TGIS_STATE_URL"] == "redis://tgis-redis:6379/0"
    [redis_service] = [
        s for s in by_kind(rendered({}), "Service") if "redis" in s["metadata"]["name"]
    ]
    assert redis_service["metadata"]["name"] == "tgis-redis"
    own = router_container(rendered(VARIANTS["own-redis"]))["env"]
    assert {"name": "TGIS_STATE_URL", "value": "redis://redis.db:6379/2"} in own
    alone = router_container(rendered(VARIANTS["no-redis"]))["env"]
    assert "TGIS_STATE_URL" not in [item["name"] for item in alone]
    secret_ref = router_container(rendered({}))["envFrom"]
    assert secret_ref == [{"secretRef": {"name": "tgi-serverless-keys"}}]


def test_the_role_is_bound_to_the_routers_service_account() -> None:
    documents = rendered({})
    [deployment] = [
        d for d in by_kind(documents, "Deployment") if d["metadata"]["name"] == "tgis-router"
    ]
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    [binding] = by_kind(documents, "RoleBinding")
    [role] = by_kind(documents, "Role")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": "llm"}]


VERBS = {"CREATE": "create", "DELETE": "delete", "LIST": "list", "FETCH": "get", "WATCH": "watch"}


async def test_the_role_grants_exactly_the_calls_the_provider_makes(
    kmock: kmock.KubernetesEmulator,
) -> None:
    """Every call of a worker's whole life (start, list, park, resume, destroy) and of the watch
    is allowed, and nothing else is: no read of any Secret, no update, nothing outside the
    namespace. (kmock takes a watch only as `watch=true`: kubernetes_asyncio's `watch=True`
    is answered by an open stream.)"""
    for plural in ("pods", "secrets", "persistentvolumeclaims"):
        kmock.resources[f"v1/{plural}"] = kmock.ResourceInfo(namespaced=True)
    kmock[{"watch": "True"}] << (...,)
    template = yaml.safe_load(WORKER_POD.read_text())
    config = KubernetesConfig(namespace="llm", pod_template=template, endpoint="llama")

    async def token(worker_id: str) -> str:
        return f"token-for-{worker_id}"

    async with ApiClient(Configuration(host=str(kmock.url).rstrip("/"))) as api:
        provider = KubernetesProvider(config, api, join_token=token)
        watching = asyncio.create_task(provider.watch())
        for _ in range(400):
            if len(kmock[{"watch": "True"}]) == 2:
                break
            await asyncio.sleep(0.025)
        worker = await provider.start()
        await provider.list()
        await provider.stop_to_cold(worker.id)
        await provider.resume(worker.id)
        await provider.destroy(worker.id)
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
    used = set()
    for request in kmock:
        assert request.resource is not None
        assert request.action is not None
        watch = request.params.get("watch") == "True"
        used.add((request.resource.plural, "watch" if watch else VERBS[request.action.name]))
    assert {request.namespace for request in kmock} == {"llm"}
    [role] = by_kind(rendered({}), "Role")
    granted = {
        (resource, verb)
        for rule in role["rules"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert all(rule["apiGroups"] == [""] for rule in role["rules"])
    assert used == granted


def test_helm_itself_lints_the_chart_when_its_library_is_at_hand() -> None:
    """Helm's own lint (it renders every template with the chart's values and parses the YAML),
    through the Helm library that helm-sdkpy ships (libhelm_sdkpy.so, Helm v4; the package
    needs Python 3.12, so it is not in the dev extra): set TGIS_TEST_HELM_LIB to its path."""
    library = os.environ.get("TGIS_TEST_HELM_LIB")
    if not library:
        pytest.skip("TGIS_TEST_HELM_LIB is not set: no Helm library to lint the chart with")
    helm = ctypes.CDLL(library)
    helm.helm_sdkpy_config_create.argtypes = [ctypes.c_char_p] * 4 + [
        ctypes.POINTER(ctypes.c_ulonglong)
    ]
    helm.helm_sdkpy_lint.argtypes = [
        ctypes.c_ulonglong,
        ctypes.c_char_p,
        ctypes.POINTER(ctypes.c_void_p),
    ]
    handle, result = ctypes.c_ulonglong(), ctypes.c_void_p()
    assert helm.helm_sdkpy_config_create(b"llm", b"", b"", b"{}", ctypes.byref(handle)) == 0
    assert helm.helm_sdkpy_lint(handle.value, str(CHART).encode(), ctypes.byref(result)) == 0
    report = json.loads(ctypes.string_at(result.value or 0))
    assert report["Errors"] is None, report
    errors = [message for message in report["Messages"] if message["Severity"] >= 2]
    assert errors == [], report  # 1 is INFO (Chart.yaml: an icon is recommended)
