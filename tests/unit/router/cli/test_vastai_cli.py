"""`--provider vastai` for `router` and `up`: what it needs before it starts, and what each new
instance is given besides its join token."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import pytest

from router.autoscaler.params import EndpointParams
from router.cli.vastai import VastSetupError, add_vastai_arguments, instance_env, vastai_config
from router.endpoints.models import Endpoint, Template
from router.endpoints.store import EndpointStore
from tgi_serverless.cli import main


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_vastai_arguments(parser)
    return parser.parse_args(list(argv))


def test_the_config_takes_the_key_from_the_environment_and_the_rest_from_flags() -> None:
    args = parse(
        "--vast-template", "abc123", "--vast-search", '{"gpu_ram": {"gte": 24}}',
        "--vast-disk", "80", "--vast-url", "http://fake:1",
    )  # fmt: skip
    config = vastai_config(args, {"VAST_API_KEY": "k"}, "chat")
    assert (config.api_key, config.template_hash, config.endpoint) == ("k", "abc123", "chat")
    assert (config.search, config.disk_gb, config.base_url) == (
        {"gpu_ram": {"gte": 24}},
        80.0,
        "http://fake:1",
    )
    assert config.label == "tgi-serverless:chat"


@pytest.mark.parametrize(
    ("argv", "environ", "problem"),
    [
        (["--vast-template", "t"], {}, "VAST_API_KEY"),
        ([], {"VAST_API_KEY": "k"}, "--vast-template"),
        (["--vast-template", "t", "--vast-search", "gpu_ram>=24"], {"VAST_API_KEY": "k"}, "JSON"),
        (["--vast-template", "t", "--vast-search", "[1]"], {"VAST_API_KEY": "k"}, "object"),
    ],
)
def test_what_is_missing_is_named(argv: list[str], environ: dict[str, str], problem: str) -> None:
    with pytest.raises(VastSetupError, match=problem):
        vastai_config(parse(*argv), environ, "default")


def test_an_instance_gets_its_endpoint_and_the_templates_model_when_it_names_one() -> None:
    store = EndpointStore(None)
    store.put_endpoint(Endpoint(name="chat"))
    assert instance_env(store, "chat") == {"TGIS_ENDPOINT": "chat"}
    store.put_endpoint(Endpoint(name="chat", template=Template(model_id="org/m")))
    assert instance_env(store, "chat") == {"TGIS_ENDPOINT": "chat", "MODEL_ID": "org/m"}
    assert instance_env(store, "gone") == {"TGIS_ENDPOINT": "gone"}


def test_the_router_refuses_to_start_without_what_vastai_needs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("VAST_API_KEY", raising=False)
    state = str(tmp_path)
    assert main(["router", "--state-dir", state, "--provider", "vastai"]) == 2
    assert "VAST_API_KEY" in capsys.readouterr().err
    assert main(["router", "--state-dir", state, "--set", "min_workers=1"]) == 2
    assert "--set needs --provider" in capsys.readouterr().err


class FakeServe:
    """Stands in for `serve_with_vastai`: records what the command hands it."""

    def __init__(self) -> None:
        self.params: EndpointParams | None = None
        self.banner = ""
        self.model_id = ""

    async def __call__(
        self,
        settings: object,
        config: object,
        *,
        policy: str,
        choose_params: Callable[[EndpointParams], EndpointParams],
        banner: str,
        model_id: str = "",
    ) -> int:
        self.params = choose_params(EndpointParams())
        self.banner = banner
        self.model_id = model_id
        return 0


def test_router_on_vastai_stores_its_set_over_the_endpoints_parameters(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    serve = FakeServe()
    monkeypatch.setattr("router.cli.router.serve_with_vastai", serve)
    monkeypatch.setenv("VAST_API_KEY", "vast-key")
    argv = ["router", "--state-dir", str(tmp_path), "--provider", "vastai"]
    argv += ["--vast-template", "t", "--set", "min_workers=2"]
    assert main(argv) == 0
    assert serve.params is not None
    assert (serve.params.min_workers, serve.params.max_workers) == (2, EndpointParams().max_workers)
    assert "autoscaling on Vast.ai" in serve.banner


def test_up_on_vastai_scales_by_its_flags_and_says_the_instances_keep_running(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    serve = FakeServe()
    monkeypatch.setattr("router.cli.up.serve_with_vastai", serve)
    monkeypatch.setenv("VAST_API_KEY", "vast-key")
    argv = ["up", "--state-dir", str(tmp_path), "--provider", "vastai", "--vast-template", "t"]
    argv += ["--workers", "2", "--max-workers", "3", "--cold-workers", "0", "--model-id", "m"]
    assert main(argv) == 0
    assert serve.params is not None
    assert (serve.params.min_workers, serve.params.max_workers) == (2, 3)
    assert serve.model_id == "m"
    assert "scales on Vast.ai (2 to 3 workers" in serve.banner
    assert "Ctrl-C stops the router; its Vast instances keep running." in serve.banner
    monkeypatch.delenv("VAST_API_KEY")
    assert main(argv) == 2
