"""`serve_with_kubernetes` in process, against kmock (a local server emulating the Kubernetes
API): the worker Pod its autoscaler makes (its environment; its join token in a Secret, not in
the Pod), the banner, and a clean stop that leaves the Pod."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import kmock
import pytest
import yaml
from kubernetes_asyncio.client import Configuration
from pydantic import SecretStr

from router.cli.kubernetes import serve_with_kubernetes
from router.providers.kubernetes import KubernetesConfig
from router.settings import RouterSettings
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = yaml.safe_load((ROOT / "templates" / "k8s" / "worker-pod.yaml").read_text())


def created(emulator: kmock.KubernetesEmulator, plural: str) -> list[dict[str, Any]]:
    """The bodies of the creations the server took for this kind."""
    return [request.data for request in emulator[f"create {plural}"]]


async def test_it_scales_the_endpoint_with_pods_and_stops_cleanly(
    kmock: kmock.KubernetesEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for plural in ("pods", "secrets", "persistentvolumeclaims"):
        kmock.resources[f"v1/{plural}"] = kmock.ResourceInfo(namespaced=True)
    kmock[{"watch": "True"}] << (...,)  # the provider's watches (test_kubernetes_watch.py)
    port = free_port()
    settings = RouterSettings(
        port=port,
        state_dir=tmp_path,
        api_key=SecretStr("endpoint-key"),
        admin_key=SecretStr("admin-key"),
    )
    config = KubernetesConfig(namespace="llm", pod_template=TEMPLATE)
    stop = asyncio.Event()
    serving = asyncio.create_task(
        serve_with_kubernetes(
            settings,
            config,
            Configuration(host=str(kmock.url).rstrip("/")),
            router_url="http://tgis-router.llm.svc:8080",
            policy="default",
            choose_params=lambda stored: stored.model_copy(
                update={"min_workers": 1, "max_workers": 1, "cold_workers": 0}
            ),
            banner="the banner",
            stop=stop,
        )
    )
    for _ in range(400):
        if created(kmock, "pods") or serving.done():
            break
        await asyncio.sleep(0.05)
    [pod] = created(kmock, "pods")
    [secret] = created(kmock, "secrets")
    name = pod["metadata"]["name"]
    env = {item["name"]: item.get("value") for item in pod["spec"]["containers"][0]["env"]}
    assert env["REPORT_ADDR"] == "http://tgis-router.llm.svc:8080"
    assert env["TGIS_ENDPOINT"] == "default"
    assert env["CONTAINER_ID"] == name
    token = secret["stringData"]["TGIS_JOIN_TOKEN"]
    assert token
    assert token not in str(pod)
    stop.set()
    assert await asyncio.wait_for(serving, 30) == 0
    assert not list(kmock["delete pods"]), "a stopping router leaves its workers running"
    assert len(kmock[{"watch": "True"}]) >= 2, "it watched its claims and Pods"
    assert "the banner" in capsys.readouterr().out
