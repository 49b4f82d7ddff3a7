"""`--provider kubernetes` for `tgi-serverless router`: the autoscaler runs workers as Pods.

The router serves as always, and its autoscaler creates, parks, resumes and destroys worker
Pods in one namespace from a worker Pod template (`--k8s-worker-template`, a Pod manifest with
a container named `worker`: templates/k8s/worker-pod.yaml). Each worker gets a model-cache
volume claim of its own, which outlives its Pod while it is parked, and a new one-time join
token in a Secret of its own. It reports to `--k8s-router-url` (the router's Service).

The API is reached as `kubectl` would: in a Pod, with its service account (the chart's Role);
elsewhere through the current kubeconfig context; or at `--k8s-api URL` as it is, with no
credentials (`kubectl proxy`). When the router stops, the workers keep running: a restarted
router finds them by their labels.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from router.cli.autoscaled import JoinTokens, ParamsChoice, serve_autoscaled
from router.providers.k8s_objects import (
    KubernetesConfig,
    TemplateError,
    valid_label_value,
    worker_pod,
)
from router.settings import RouterSettings

if TYPE_CHECKING:
    from kubernetes_asyncio.client import Configuration

    from router.providers.kubernetes import KubernetesProvider

__all__ = [
    "KubernetesSetupError",
    "add_kubernetes_arguments",
    "kubernetes_config",
    "serve_with_kubernetes",
]

IN_CLUSTER_VARIABLE = "KUBERNETES_SERVICE_HOST"  # set in every Pod


class KubernetesSetupError(ValueError):
    """`--provider kubernetes` cannot start: what is missing or malformed."""


def add_kubernetes_arguments(parser: argparse.ArgumentParser) -> None:
    kube = parser.add_argument_group("Kubernetes (--provider kubernetes)")
    kube.add_argument(
        "--k8s-worker-template",
        type=Path,
        metavar="FILE",
        help="the worker Pod template, YAML (templates/k8s/worker-pod.yaml)",
    )
    kube.add_argument(
        "--k8s-router-url",
        metavar="URL",
        help="the router's URL as workers reach it (its Service): their REPORT_ADDR",
    )
    kube.add_argument("--k8s-namespace", default="default", help="where workers run (default)")
    kube.add_argument(
        "--k8s-cache-size", default="100Gi", help="each worker's model cache volume (100Gi)"
    )
    kube.add_argument("--k8s-storage-class", help="its storage class (default: the cluster's)")
    kube.add_argument(
        "--k8s-api",
        metavar="URL",
        help="the API server as it is, without credentials (`kubectl proxy`); default: the "
        "Pod's service account, else the kubeconfig's current context",
    )


def kubernetes_config(args: argparse.Namespace, endpoint: str) -> KubernetesConfig:
    """The provider's configuration from the flags; KubernetesSetupError names what is
    missing or malformed."""
    if args.k8s_worker_template is None:
        raise KubernetesSetupError(
            "--provider kubernetes needs --k8s-worker-template FILE (templates/k8s)"
        )
    if not args.k8s_router_url:
        raise KubernetesSetupError("--provider kubernetes needs --k8s-router-url URL")
    if not valid_label_value(endpoint):
        raise KubernetesSetupError(
            f"the endpoint {endpoint!r} cannot be a Kubernetes label value (63 characters at "
            "most, starting and ending with a letter or digit)"
        )
    template = _template(args.k8s_worker_template)
    return KubernetesConfig(
        namespace=args.k8s_namespace,
        pod_template=template,
        endpoint=endpoint,
        cache_size=args.k8s_cache_size,
        storage_class=args.k8s_storage_class,
    )


def _template(path: Path) -> dict[str, Any]:
    try:
        template = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise KubernetesSetupError(f"cannot read the worker Pod template: {exc}") from None
    if not isinstance(template, dict) or template.get("kind") != "Pod":
        raise KubernetesSetupError(f"{path} is not a Pod manifest")
    try:
        worker_pod(template, "tgis-check", "check", env={}, worker_port=3000)
    except TemplateError as exc:
        raise KubernetesSetupError(f"{path}: {exc}") from None
    return template


def api_configuration(api_url: str | None, environ: Mapping[str, str]) -> Configuration:
    """Where the API is and how to authenticate to it: `api_url` as it is, the Pod's service
    account, or the kubeconfig's current context; KubernetesSetupError if none works. Called
    before the router's event loop runs: it reads files, and the kubeconfig's loader (a
    coroutine) runs on a loop of its own."""
    # The client is imported here and in serve_with_kubernetes, not with this module: it takes
    # about a second, which only `--provider kubernetes` pays.
    from kubernetes_asyncio import config as kube_config
    from kubernetes_asyncio.client import Configuration
    from kubernetes_asyncio.config.config_exception import ConfigException

    configuration = Configuration()
    try:
        if api_url:
            configuration.host = api_url.rstrip("/")
        elif environ.get(IN_CLUSTER_VARIABLE):
            kube_config.load_incluster_config(client_configuration=configuration)
        else:
            asyncio.run(kube_config.load_kube_config(client_configuration=configuration))
    except (ConfigException, OSError) as exc:
        raise KubernetesSetupError(f"cannot configure the Kubernetes API: {exc}") from None
    return configuration


async def serve_with_kubernetes(
    settings: RouterSettings,
    config: KubernetesConfig,
    configuration: Configuration,
    *,
    router_url: str,
    policy: str,
    choose_params: ParamsChoice,
    banner: str,
    stop: asyncio.Event | None = None,
) -> int:
    """Serve the router with its autoscaler on Kubernetes until SIGINT or SIGTERM (or `stop`,
    when given, is set), printing `banner` once it listens; workers report to `router_url`."""
    from kubernetes_asyncio.client import ApiClient

    from router.providers.kubernetes import KubernetesProvider

    @asynccontextmanager
    async def open_kubernetes(
        join_token: JoinTokens, worker_env: Callable[[], dict[str, str]]
    ) -> AsyncIterator[KubernetesProvider]:
        async with ApiClient(configuration) as api:
            provider = KubernetesProvider(
                config,
                api,
                join_token=join_token,
                worker_env=lambda: {**worker_env(), "REPORT_ADDR": router_url},
            )
            watching = asyncio.create_task(provider.watch())
            try:
                yield provider
            finally:
                watching.cancel()
                await asyncio.gather(watching, return_exceptions=True)

    return await serve_autoscaled(
        settings,
        open_kubernetes,
        policy=policy,
        choose_params=choose_params,
        banner=banner,
        stopped_note=f"stopped; the worker Pods in namespace {config.namespace!r} keep running "
        f"(`kubectl get pods -l app.kubernetes.io/managed-by=tgi-serverless`)",
        stop=stop,
    )
