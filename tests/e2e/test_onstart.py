"""The templates' on-start scripts run for real on this machine, as a Vast instance or a Docker
container would run them: the worker starts its backend (TGI: the stand-in launcher on PATH),
joins a real router with its join token, becomes ready and serves requests, and HF_TOKEN shows
up in no log. No Docker daemon here: the images are thin layers over these scripts."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from client import Client
from tests.e2e.conftest import API_KEY
from tests.e2e.leaks import WATCH
from tests.e2e.processes import (
    ADMIN_KEY,
    REPO_ROOT,
    ManagedProcess,
    cli_join_token,
    get_json,
    router_args,
    router_status,
    wait_for,
)
from tests.ports import free_port
from tests.stand_in import path_with_stand_in, read_report

pytestmark = pytest.mark.e2e

HF_TOKEN = "hf_onstartNeverInAnyLogOrArgument"
TEMPLATES = REPO_ROOT / "templates"


@pytest.fixture(scope="module")
def router_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    logs = tmp_path_factory.mktemp("onstart-router")
    port = free_port()
    args = router_args(port, API_KEY, tmp_path_factory.mktemp("state"), "--admin-key", ADMIN_KEY)
    with ManagedProcess("router", args, {"TGIS_ALLOW_PRIVATE_WORKERS": "true"}, logs) as router:
        url = f"http://127.0.0.1:{port}"
        wait_for("the router", lambda: get_json(f"{url}/health")[0] == 200, [router])
        yield url


def worker_state(router_url: str, worker_id: str) -> str:
    status, body = router_status(router_url)
    workers = body["endpoints"][0]["workers"] if status == 200 else []
    return next((w["state"] for w in workers if w["id"] == worker_id), "absent")


def onstart(
    template: str, env: dict[str, str], logs: Path, *flags: str
) -> tuple[ManagedProcess, Path]:
    """templates/<template>/onstart.sh with `env` (over this process's) and `flags`; its model
    log, watched for secrets too."""
    model_log = logs / f"{template}-model.log"
    WATCH.log_file(f"{template}-model-log", model_log)
    script = str(TEMPLATES / template / "onstart.sh")
    variables = {"PATH": path_with_stand_in(), "MODEL_LOG": str(model_log), **env}
    return ManagedProcess(template, flags, variables, logs, program=["bash", script]), model_log


def serve_one_request(router_url: str) -> int:
    with Client(router_url, api_key=API_KEY) as client:
        result = client.generate("On start", max_new_tokens=3, details=True)
    assert result.details is not None
    return result.details.generated_tokens


def test_the_tgi_onstart_joins_with_vasts_variables_and_serves(
    router_url: str, tmp_path: Path, tgis_cache_dir: Path
) -> None:
    port, report = free_port(), tmp_path / "launcher.json"
    env = {
        "MODEL_ID": "org/served-model",
        "HF_TOKEN": HF_TOKEN,
        "REPORT_ADDR": router_url,
        "TGIS_JOIN_TOKEN": cli_join_token(router_url, ADMIN_KEY),
        "WORKER_PORT": str(port),
        "CONTAINER_ID": "vast-4242",
        "PUBLIC_IPADDR": "127.0.0.1",  # as Vast sets them: the public address and the
        f"VAST_TCP_PORT_{port}": str(port),  # public port mapped to WORKER_PORT
        "TGIS_CACHE_DIR": str(tgis_cache_dir),
        "STAND_IN_REPORT": str(report),
    }
    flags = ("--host", "127.0.0.1", "--backend-port", str(free_port()), "--", "--num-shard", "1")
    worker, model_log = onstart("tgi", env, tmp_path, *flags)
    with worker:
        ready = lambda: worker_state(router_url, "vast-4242") == "ready"  # noqa: E731
        wait_for("the tgi onstart worker", ready, [worker], 300)
        assert serve_one_request(router_url) >= 1
        launched = read_report(report)
        assert launched["args"]["model_id"] == "org/served-model"
        assert launched["args"]["num_shard"] == "1"
        assert launched["hf_token_sha256"] == hashlib.sha256(HF_TOKEN.encode()).hexdigest()
        assert "onstart: worker on port" in worker.output()
    for text in (worker.output(), model_log.read_text()):
        assert HF_TOKEN not in text


def test_the_cpu_onstart_joins_with_a_public_url_and_serves(
    router_url: str, tmp_path: Path, tgis_cache_dir: Path
) -> None:
    port = free_port()
    env = {
        "HF_TOKEN": HF_TOKEN,
        "REPORT_ADDR": router_url,
        "TGIS_JOIN_TOKEN": cli_join_token(router_url, ADMIN_KEY),
        "WORKER_PORT": str(port),
        "CONTAINER_ID": "cpu-onstart",
        "TGIS_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "TGIS_CACHE_DIR": str(tgis_cache_dir),
    }
    flags = ("--host", "127.0.0.1", "--backend-port", str(free_port()))
    worker, model_log = onstart("cpu", env, tmp_path, *flags)
    with worker:
        ready = lambda: worker_state(router_url, "cpu-onstart") == "ready"  # noqa: E731
        wait_for("the cpu onstart worker", ready, [worker], 300)
        assert serve_one_request(router_url) >= 1
    for text in (worker.output(), model_log.read_text()):
        assert HF_TOKEN not in text


@pytest.mark.parametrize(
    ("template", "missing", "says"),
    [
        ("tgi", "REPORT_ADDR", "set REPORT_ADDR"),
        ("tgi", "TGIS_JOIN_TOKEN", "set TGIS_JOIN_TOKEN"),
        ("tgi", "MODEL_ID", "set MODEL_ID"),
        ("cpu", "TGIS_PUBLIC_URL", "set TGIS_PUBLIC_URL, or PUBLIC_IPADDR and VAST_TCP_PORT_3000"),
    ],
)
def test_an_onstart_without_what_it_needs_says_so_and_starts_nothing(
    tmp_path: Path, template: str, missing: str, says: str
) -> None:
    env = {
        "MODEL_ID": "org/model",
        "REPORT_ADDR": "http://127.0.0.1:9",
        "TGIS_JOIN_TOKEN": "join-token-for-nothing",
        "TGIS_PUBLIC_URL": "http://127.0.0.1:3000",
        "STAND_IN_REPORT": str(tmp_path / "launcher.json"),
        missing: "",
    }
    worker, _ = onstart(template, env, tmp_path)
    with worker:
        assert worker.wait(30) == 2
        assert says in worker.output()
    assert not (tmp_path / "launcher.json").exists()
