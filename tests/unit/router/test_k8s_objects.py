"""The Kubernetes objects of a worker, the worker read back from them, and the watched copy
of them (pure: no API)."""

from __future__ import annotations

import json
import re
from typing import Any, cast

import pytest

from router.providers.base import ProviderState
from router.providers.k8s_objects import (
    TemplateError,
    is_ours,
    label_selector,
    new_worker_name,
    pod_state,
    timestamp,
    valid_label_value,
    worker_pod,
    worker_view,
)
from router.providers.k8s_watch import ObjectCache

TEMPLATE = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"generateName": "x-", "labels": {"team": "ml"}},
    "spec": {
        "restartPolicy": "Always",
        "containers": [
            {"name": "sidecar", "image": "busybox:1.36"},
            {
                "name": "worker",
                "image": "tgi:1",
                "env": [
                    {"name": "QUANTIZE", "value": "awq"},
                    {"name": "TGIS_JOIN_TOKEN", "value": "a token in clear"},
                    {"name": "MODEL_ID", "value": "the template's"},
                ],
                "volumeMounts": [{"name": "model-cache", "mountPath": "/elsewhere"}],
            },
        ],
        "volumes": [{"name": "model-cache", "emptyDir": {}}],
    },
}
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def test_the_pod_takes_the_template_and_replaces_what_the_provider_owns() -> None:
    pod = worker_pod(
        TEMPLATE, "tgis-chat-abc123", "chat", env={"MODEL_ID": "org/m"}, worker_port=8000
    )
    assert pod["metadata"] == {
        "name": "tgis-chat-abc123",
        "labels": {
            "team": "ml",
            "app.kubernetes.io/managed-by": "tgi-serverless",
            "tgi-serverless.io/endpoint": "chat",
        },
    }
    assert pod["spec"]["restartPolicy"] == "Never"
    sidecar, worker = pod["spec"]["containers"]
    assert sidecar == TEMPLATE["spec"]["containers"][0]  # type: ignore[index]
    env = {item["name"]: item for item in worker["env"]}
    assert env["QUANTIZE"]["value"] == "awq"  # the template's own, kept
    assert env["MODEL_ID"]["value"] == "org/m"  # the endpoint's, over the template's
    assert env["TGIS_PUBLIC_URL"]["value"] == "http://$(POD_IP):8000"
    assert "a token in clear" not in json.dumps(pod)
    assert [item["name"] for item in worker["env"]].count("TGIS_JOIN_TOKEN") == 1
    assert worker["volumeMounts"] == [{"name": "model-cache", "mountPath": "/data"}]
    assert pod["spec"]["volumes"] == [
        {"name": "model-cache", "persistentVolumeClaim": {"claimName": "tgis-chat-abc123"}}
    ]
    assert TEMPLATE["spec"]["restartPolicy"] == "Always"  # type: ignore[index]  # not mutated


def test_a_template_without_a_worker_container_is_refused() -> None:
    template = {"kind": "Pod", "spec": {"containers": [{"name": "tgi", "image": "x"}]}}
    with pytest.raises(TemplateError, match="'worker'"):
        worker_pod(template, "tgis-a-1", "a", env={}, worker_port=3000)


@pytest.mark.parametrize("endpoint", ["default", "Llama_3.1-8B", "x" * 64, "___"])
def test_worker_names_are_dns_labels_whatever_the_endpoint(endpoint: str) -> None:
    name = new_worker_name(endpoint)
    assert DNS_LABEL.match(name), name
    assert len(name) <= 63
    assert new_worker_name(endpoint) != name


def test_label_values_follow_kubernetes_rules() -> None:
    assert valid_label_value("Llama_3.1-8B")
    assert not valid_label_value("x" * 64)
    assert not valid_label_value("ends-with-")


def test_only_objects_with_every_label_of_the_endpoint_are_ours() -> None:
    selector = dict(pair.split("=") for pair in label_selector("chat").split(","))
    assert is_ours({"metadata": {"labels": {**selector, "more": "x"}}}, "chat")
    assert not is_ours({"metadata": {"labels": selector}}, "other")
    assert not is_ours({"metadata": {}}, "chat")


@pytest.mark.parametrize(
    ("pod", "state"),
    [
        (None, ProviderState.STOPPED),
        ({"metadata": {"deletionTimestamp": "2026-12-05T10:00:00Z"}}, ProviderState.STOPPED),
        ({"metadata": {}}, ProviderState.CREATING),
        ({"metadata": {}, "status": {"phase": "Pending"}}, ProviderState.CREATING),
        ({"metadata": {}, "status": {"phase": "Running"}}, ProviderState.RUNNING),
        ({"metadata": {}, "status": {"phase": "Succeeded"}}, ProviderState.EXITED),
        ({"metadata": {}, "status": {"phase": "Failed"}}, ProviderState.EXITED),
        ({"metadata": {}, "status": {"phase": "Unknown"}}, ProviderState.ERROR),
        ({"metadata": {}, "status": {"phase": "Bogus"}}, ProviderState.ERROR),
    ],
)
def test_the_pod_phase_says_the_workers_state(pod: dict[str, object] | None, state: str) -> None:
    assert pod_state(pod) is state


def test_times_are_the_objects_own_else_when_first_seen() -> None:
    assert timestamp("2026-12-05T10:00:00Z") == 1796464800.0
    assert timestamp("not a time") == timestamp(None) == 0.0
    claim = {"metadata": {"name": "w", "creationTimestamp": "2026-12-05T10:00:00Z"}}
    running = {
        "metadata": {"name": "w", "creationTimestamp": "2026-12-05T11:00:00Z"},
        "status": {"phase": "Running", "podIP": "10.0.0.9"},
    }
    assert worker_view(claim, None, worker_port=3000, seen=5.0).since == 1796464800.0
    view = worker_view(claim, running, worker_port=3000, seen=5.0)
    assert (view.since, view.url) == (1796468400.0, "http://10.0.0.9:3000")
    bare = worker_view({"metadata": {"name": "w"}}, {"metadata": {}}, worker_port=3000, seen=5.0)
    assert (bare.since, bare.url, bare.state) == (5.0, "", ProviderState.CREATING)


def pod(name: str, uid: str) -> dict[str, object]:
    labels = dict(pair.split("=") for pair in label_selector("chat").split(","))
    return {"kind": "Pod", "metadata": {"name": name, "uid": uid, "labels": labels}}


def test_the_watched_objects_follow_events_of_their_kind_and_endpoint() -> None:
    cache = ObjectCache(cast(Any, None), "Pod", cast(Any, None), "llm", "chat")
    cache._apply("ADDED", pod("w", "uid-1"))
    cache._apply("ADDED", {**pod("x", "uid-2"), "kind": "PersistentVolumeClaim"})
    cache._apply("ADDED", {"kind": "Pod", "metadata": {"name": "y", "labels": {}}})
    assert list(cache.objects) == ["w"]
    cache.put(pod("w", "uid-3"))  # parked and resumed: a new Pod of the same name
    cache._apply("DELETED", pod("w", "uid-1"))  # the old one's deletion, arriving late
    assert cache.objects["w"]["metadata"]["uid"] == "uid-3"
    cache._apply("DELETED", pod("w", "uid-3"))
    assert cache.objects == {}
