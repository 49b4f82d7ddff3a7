"""The Kubernetes objects of one worker, and what the provider reads back from them; pure.

A worker named W (`tgis-<endpoint>-<6 hex>`, also its CONTAINER_ID: the router's worker id) is:

- a PersistentVolumeClaim W: its model cache (HF_HOME), and the worker's durable record: the
  worker exists while its claim does;
- a Pod W, made from the endpoint's worker template, while the worker runs. Parking a worker
  deletes its Pod and keeps its claim, so a resumed one loads the model from disk;
- a Secret W holding its one-time join token (TGIS_JOIN_TOKEN), which the Pod reads through a
  `secretKeyRef`: the token never appears in the Pod's spec. The claim owns it, so Kubernetes
  removes it with the worker even if the provider could not.

Every object carries the labels `app.kubernetes.io/managed-by: tgi-serverless` and
`tgi-serverless.io/endpoint: <endpoint>`; the provider lists and touches only those.
"""

from __future__ import annotations

import copy
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from router.providers.base import ProviderState, ProviderWorker

__all__ = [
    "CACHE_MOUNT",
    "CACHE_VOLUME",
    "ENDPOINT_LABEL",
    "JOIN_TOKEN_KEY",
    "MANAGED_BY",
    "WORKER_CONTAINER",
    "KubernetesConfig",
    "TemplateError",
    "cache_claim",
    "is_ours",
    "join_token_secret",
    "label_selector",
    "new_worker_name",
    "pod_state",
    "timestamp",
    "valid_label_value",
    "worker_pod",
    "worker_view",
]

Manifest = dict[str, Any]
"""A Kubernetes object as its API's JSON has it."""

MANAGED_BY = {"app.kubernetes.io/managed-by": "tgi-serverless"}
ENDPOINT_LABEL = "tgi-serverless.io/endpoint"
WORKER_CONTAINER = "worker"  # the container of the template that runs the worker
CACHE_VOLUME = "model-cache"
CACHE_MOUNT = "/data"  # HF_HOME in templates/tgi/Dockerfile
JOIN_TOKEN_KEY = "TGIS_JOIN_TOKEN"

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@dataclass(frozen=True)
class KubernetesConfig:
    namespace: str
    pod_template: Mapping[str, Any]  # a Pod manifest with a container named `worker`
    endpoint: str = "default"
    cache_size: str = "100Gi"  # each worker's model cache (a Kubernetes quantity)
    storage_class: str | None = None  # None: the cluster's default
    worker_port: int = 3000  # WORKER_PORT in the worker's image


class TemplateError(ValueError):
    """The worker Pod template cannot make a worker: what is wrong with it."""


def valid_label_value(value: str) -> bool:
    return len(value) <= 63 and _LABEL_VALUE.match(value) is not None


def _labels(endpoint: str) -> dict[str, str]:
    return {**MANAGED_BY, ENDPOINT_LABEL: endpoint}


def label_selector(endpoint: str) -> str:
    """The list filter for the endpoint's objects, as the API takes it."""
    return ",".join(f"{key}={value}" for key, value in _labels(endpoint).items())


def is_ours(document: Mapping[str, Any], endpoint: str) -> bool:
    """Whether an object carries the endpoint's labels (the provider checks what a list
    returns, whatever the server did with its selector)."""
    labels = document.get("metadata", {}).get("labels") or {}
    return all(labels.get(key) == value for key, value in _labels(endpoint).items())


def new_worker_name(endpoint: str) -> str:
    """A fresh DNS-1123 name for a worker of `endpoint`: `tgis-<endpoint, lowercased>-<hex>`."""
    slug = re.sub(r"[^a-z0-9-]+", "-", endpoint.lower())[:40].strip("-") or "endpoint"
    return f"tgis-{slug}-{secrets.token_hex(3)}"


def _metadata(name: str, endpoint: str) -> Manifest:
    return {"name": name, "labels": _labels(endpoint)}


def cache_claim(name: str, endpoint: str, *, size: str, storage_class: str | None) -> Manifest:
    """The worker's model cache, one ReadWriteOnce volume of `size` (a Kubernetes quantity)."""
    spec: Manifest = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": size}},
    }
    if storage_class:
        spec["storageClassName"] = storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(name, endpoint),
        "spec": spec,
    }


def join_token_secret(name: str, endpoint: str, token: str, claim_uid: str) -> Manifest:
    """The worker's join token, owned by its claim (garbage-collected with the worker)."""
    metadata = _metadata(name, endpoint)
    if claim_uid:
        metadata["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "name": name, "uid": claim_uid}
        ]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": "Opaque",
        "stringData": {JOIN_TOKEN_KEY: token},
    }


def worker_pod(
    template: Mapping[str, Any],
    name: str,
    endpoint: str,
    *,
    env: Mapping[str, str],
    worker_port: int,
) -> Manifest:
    """The worker's Pod: `template` (a Pod manifest with a container named `worker`) with the
    worker's name and labels, `env` and CONTAINER_ID, its public URL (the Pod's IP, from the
    downward API), its join token from Secret `name`, and its claim `name` mounted at /data.
    TemplateError if the template has no `worker` container."""
    pod = copy.deepcopy(dict(template))
    pod["apiVersion"], pod["kind"] = "v1", "Pod"
    metadata = pod.setdefault("metadata", {})
    metadata.pop("generateName", None)
    metadata["name"] = name
    metadata["labels"] = {**(metadata.get("labels") or {}), **_labels(endpoint)}
    spec = pod.setdefault("spec", {})
    spec["restartPolicy"] = "Never"  # a worker that dies is replaced by the autoscaler
    containers = [c for c in spec.get("containers") or [] if c.get("name") == WORKER_CONTAINER]
    if not containers:
        raise TemplateError(f"the worker Pod template has no container named {WORKER_CONTAINER!r}")
    container = containers[0]
    ours = {*env, "CONTAINER_ID", "POD_IP", "TGIS_PUBLIC_URL", JOIN_TOKEN_KEY}
    container["env"] = [
        *(item for item in container.get("env") or [] if item.get("name") not in ours),
        *({"name": key, "value": value} for key, value in env.items()),
        {"name": "CONTAINER_ID", "value": name},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "TGIS_PUBLIC_URL", "value": f"http://$(POD_IP):{worker_port}"},
        {
            "name": JOIN_TOKEN_KEY,
            "valueFrom": {"secretKeyRef": {"name": name, "key": JOIN_TOKEN_KEY}},
        },
    ]
    mounts = [m for m in container.get("volumeMounts") or [] if m.get("name") != CACHE_VOLUME]
    container["volumeMounts"] = [*mounts, {"name": CACHE_VOLUME, "mountPath": CACHE_MOUNT}]
    volumes = [v for v in spec.get("volumes") or [] if v.get("name") != CACHE_VOLUME]
    claim = {"claimName": name}
    spec["volumes"] = [*volumes, {"name": CACHE_VOLUME, "persistentVolumeClaim": claim}]
    return pod


def timestamp(value: object) -> float:
    """A Kubernetes RFC 3339 time as a Unix time; 0.0 when absent or malformed."""
    if not isinstance(value, str) or not value:
        return 0.0
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


POD_PHASES = {
    "Pending": ProviderState.CREATING,
    "Running": ProviderState.RUNNING,
    "Succeeded": ProviderState.EXITED,
    "Failed": ProviderState.EXITED,
    "Unknown": ProviderState.ERROR,
}


def pod_state(pod: Mapping[str, Any] | None) -> ProviderState:
    """A worker's state from its Pod: none, or one being deleted, is a parked worker (its
    claim keeps the model); otherwise the Pod's phase says."""
    if pod is None or pod.get("metadata", {}).get("deletionTimestamp"):
        return ProviderState.STOPPED
    phase = str((pod.get("status") or {}).get("phase") or "Pending")
    return POD_PHASES.get(phase, ProviderState.ERROR)


def worker_view(
    claim: Mapping[str, Any], pod: Mapping[str, Any] | None, *, worker_port: int, seen: float
) -> ProviderWorker:
    """The worker a claim stands for, as the autoscaler sees it: since its Pod (or, parked, its
    claim) was created; `seen`, when this provider last started it or first saw it, stands in
    for an object without a creation time."""
    name = str(claim["metadata"]["name"])
    state = pod_state(pod)
    if pod is None or state is ProviderState.STOPPED:
        created = timestamp(claim["metadata"].get("creationTimestamp"))
        return ProviderWorker(name, state, "", created or seen)
    pod_ip = (pod.get("status") or {}).get("podIP")
    url = f"http://{pod_ip}:{worker_port}" if pod_ip else ""
    since = timestamp(pod["metadata"].get("creationTimestamp")) or seen
    return ProviderWorker(name, state, url, since)
