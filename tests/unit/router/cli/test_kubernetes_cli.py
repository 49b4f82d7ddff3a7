"""`--provider kubernetes`: what the router needs before it starts, and where the API is."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from router.cli.kubernetes import (
    KubernetesSetupError,
    add_kubernetes_arguments,
    api_configuration,
    kubernetes_config,
)
from tgi_serverless.cli import main

ROOT = Path(__file__).resolve().parents[4]
TEMPLATE = ROOT / "templates" / "k8s" / "worker-pod.yaml"


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_kubernetes_arguments(parser)
    return parser.parse_args(list(argv))


def test_the_config_takes_the_template_and_the_flags() -> None:
    args = parse(
        "--k8s-worker-template", str(TEMPLATE), "--k8s-router-url", "http://r:8080",
        "--k8s-namespace", "llm", "--k8s-cache-size", "40Gi", "--k8s-storage-class", "fast",
    )  # fmt: skip
    config = kubernetes_config(args, "chat")
    assert (config.namespace, config.endpoint, config.cache_size) == ("llm", "chat", "40Gi")
    assert config.storage_class == "fast"
    assert config.pod_template["spec"]["containers"][0]["name"] == "worker"


@pytest.mark.parametrize(
    ("template", "flags", "endpoint", "message"),
    [
        (None, ["--k8s-router-url", "http://r"], "chat", "--k8s-worker-template"),
        ("worker", [], "chat", "--k8s-router-url"),
        ("worker", ["--k8s-router-url", "http://r"], "x" * 64, "label value"),
        ("kind: Deployment\n", ["--k8s-router-url", "http://r"], "chat", "not a Pod manifest"),
        ("kind: Pod\n: [", ["--k8s-router-url", "http://r"], "chat", "cannot read"),
        (
            "kind: Pod\nspec:\n  containers: [{name: tgi, image: x}]\n",
            ["--k8s-router-url", "http://r"],
            "chat",
            "no container named 'worker'",
        ),
    ],
)
def test_what_is_missing_or_malformed_is_named(
    tmp_path: Path, template: str | None, flags: list[str], endpoint: str, message: str
) -> None:
    argv = list(flags)
    if template == "worker":
        argv += ["--k8s-worker-template", str(TEMPLATE)]
    elif template is not None:
        path = tmp_path / "pod.yaml"
        path.write_text(template)
        argv += ["--k8s-worker-template", str(path)]
    with pytest.raises(KubernetesSetupError, match=message):
        kubernetes_config(parse(*argv), endpoint)


def test_the_router_refuses_to_start_without_what_kubernetes_needs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["router", "--state-dir", str(tmp_path), "--provider", "kubernetes"]
    assert main(argv) == 2
    assert "--k8s-worker-template" in capsys.readouterr().err
    argv += ["--k8s-worker-template", str(TEMPLATE), "--k8s-router-url", "http://r:8080"]
    assert main([*argv, "--set", "min_workers=-1"]) == 2
    assert "min_workers" in capsys.readouterr().err


def test_the_api_is_the_url_given_else_the_pods_account_else_the_kubeconfig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configuration = api_configuration("http://127.0.0.1:8001/", {})
    assert configuration.host == "http://127.0.0.1:8001"
    # Outside a Pod, a kubeconfig that is not there; in a Pod, no service account files.
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    with pytest.raises(KubernetesSetupError, match="cannot configure the Kubernetes API"):
        api_configuration(None, {})
    with pytest.raises(KubernetesSetupError, match="cannot configure the Kubernetes API"):
        api_configuration(None, {"KUBERNETES_SERVICE_HOST": "10.0.0.1"})
