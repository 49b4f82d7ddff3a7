"""`--backend embedded|tgi|<URL>`: what the worker runs, and its backend's environment."""

from __future__ import annotations

import pytest

from pyworker.backend.launch import (
    BackendChoice,
    BackendKind,
    LaunchError,
    backend_environment,
    launch_spec,
    parse_backend,
)

TGI = BackendChoice(BackendKind.TGI)
EMBEDDED = BackendChoice(BackendKind.EMBEDDED)


def test_the_backend_is_a_word_or_a_url() -> None:
    assert parse_backend("tgi") == TGI
    assert parse_backend("embedded") == EMBEDDED
    url = parse_backend("http://10.0.0.5:5001/")
    assert (url.kind, url.url, url.managed) == (BackendKind.URL, "http://10.0.0.5:5001", False)
    with pytest.raises(LaunchError, match="tgi, embedded or an http"):
        parse_backend("vllm")


def test_tgi_runs_the_launcher_on_loopback_with_json_logs_and_the_flags_passed_through() -> None:
    spec = launch_spec(
        TGI,
        model_id="org/model",
        port=5001,
        extra_args=["--quantize", "awq", "--num-shard=2"],
        python="/venv/bin/python",
    )
    assert spec.argv == (
        "text-generation-launcher",
        "--model-id", "org/model",
        "--json-output",
        "--port", "5001",
        "--hostname", "127.0.0.1",
        "--quantize", "awq",
        "--num-shard=2",
    )  # fmt: skip
    assert spec.url == "http://127.0.0.1:5001"


def test_tgi_without_a_model_is_refused() -> None:
    with pytest.raises(LaunchError, match="MODEL_ID"):
        launch_spec(TGI, model_id="", port=5001, extra_args=[], python="python")


@pytest.mark.parametrize("flag", ["--port", "--hostname=0.0.0.0", "--model-id", "--json-output"])
def test_a_flag_the_worker_sets_itself_is_refused_after_the_double_dash(flag: str) -> None:
    with pytest.raises(LaunchError, match=r"sets .* itself"):
        launch_spec(TGI, model_id="m", port=5001, extra_args=[flag, "1"], python="python")


def test_embedded_runs_our_backend_with_this_python() -> None:
    spec = launch_spec(EMBEDDED, model_id="", port=5100, extra_args=[], python="/v/bin/python")
    assert spec.argv == (
        "/v/bin/python", "-m", "tgi_serverless", "backend",
        "--json-output", "--port", "5100", "--host", "127.0.0.1",
    )  # fmt: skip
    named = launch_spec(
        EMBEDDED, model_id="org/m", port=5100, extra_args=["--max-total-tokens", "512"], python="p"
    )
    assert named.argv[-4:] == ("--model-id", "org/m", "--max-total-tokens", "512")


def test_a_url_is_not_launched() -> None:
    with pytest.raises(LaunchError, match="not started"):
        launch_spec(parse_backend("http://b:1"), model_id="", port=1, extra_args=[], python="p")


def test_the_backend_gets_hf_token_but_never_the_workers_own_tokens() -> None:
    environ = {
        "HF_TOKEN": "hf_secret",
        "QUANTIZE": "awq",
        "TGIS_JOIN_TOKEN": "join",
        "TGIS_WORKER_TOKEN": "status",
        "PATH": "/bin",
    }
    assert backend_environment(environ) == {
        "HF_TOKEN": "hf_secret",
        "QUANTIZE": "awq",
        "PATH": "/bin",
    }
