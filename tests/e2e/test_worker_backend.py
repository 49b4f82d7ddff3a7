"""`tgi-serverless worker --backend tgi|embedded`: the worker starts its backend, supervises it
and joins the router with it. TGI is the stand-in launcher (tests/bin), which serves with our
backend; everything else is real processes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from client import Client
from tests.e2e.conftest import API_KEY
from tests.e2e.leaks import WATCH
from tests.e2e.processes import (
    ADMIN_KEY,
    ManagedProcess,
    cli_join_token,
    get_json,
    pid_alive,
    router_args,
    router_status,
    wait_for,
    wait_gone,
)
from tests.ports import free_port
from tests.stand_in import path_with_stand_in, read_report

pytestmark = pytest.mark.e2e

HF_TOKEN = "hf_e2eNeverInAnyLogOrArgument"


@dataclass
class Router:
    url: str
    process: ManagedProcess
    logs: Path


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory, tgis_cache_dir: Path) -> Iterator[Router]:
    logs = tmp_path_factory.mktemp("worker-backend-logs")
    port = free_port()
    args = router_args(port, API_KEY, tmp_path_factory.mktemp("state"), "--admin-key", ADMIN_KEY)
    env = {"TGIS_ALLOW_PRIVATE_WORKERS": "true", "TGIS_CACHE_DIR": str(tgis_cache_dir)}
    with ManagedProcess("router", args, env, logs) as process:
        url = f"http://127.0.0.1:{port}"
        wait_for("the router", lambda: get_json(f"{url}/health")[0] == 200, [process])
        yield Router(url, process, logs)


def start_worker(
    router: Router, name: str, backend: str, tmp_path: Path, cache: Path, *extra: str, **env: str
) -> tuple[ManagedProcess, Path, int]:
    """A worker that starts its own backend on a free port, its model log under `tmp_path`;
    the process, its model log and its port. TGI gets a MODEL_ID (the stand-in serves the
    built-in tiny model whatever it says); the embedded backend serves the built-in one."""
    port, backend_port = free_port(), free_port()
    model_log = tmp_path / f"{name}-model.log"
    WATCH.log_file(f"{name}-model-log", model_log)
    args = [
        "worker", "--backend", backend, "--backend-port", str(backend_port),
        "--port", str(port), "--host", "127.0.0.1", "--router", router.url,
        "--public-url", f"http://127.0.0.1:{port}", "--worker-id", name, *extra,
    ]  # fmt: skip
    variables = {
        "PATH": path_with_stand_in(),
        **({"MODEL_ID": "stand-in/model"} if backend == "tgi" else {}),
        "MODEL_LOG": str(model_log),
        "HF_TOKEN": HF_TOKEN,
        "TGIS_CACHE_DIR": str(cache),
        "TGIS_JOIN_TOKEN": cli_join_token(router.url, ADMIN_KEY),
        **env,
    }
    return ManagedProcess(name, args, variables, router.logs), model_log, port


def backend_pids(worker: ManagedProcess) -> list[int]:
    """The backends `worker` started, by the process ids its log says."""
    marker = "started the backend (pid "
    lines = [line for line in worker.output().splitlines() if marker in line]
    return [int(line.split(marker)[1].split(")")[0]) for line in lines]


def state_of(router: Router, name: str) -> tuple[str, str]:
    status, body = router_status(router.url)
    workers = body["endpoints"][0]["workers"] if status == 200 else []
    for worker in workers:
        if worker["id"] == name:
            return worker["state"], worker.get("error_msg", "")
    return "absent", ""


def test_a_tgi_worker_joins_serves_and_keeps_hf_token_out_of_arguments_and_logs(
    router: Router, tmp_path: Path, tgis_cache_dir: Path
) -> None:
    report = tmp_path / "launcher.json"
    worker, model_log, _ = start_worker(
        router, "tgi-1", "tgi", tmp_path, tgis_cache_dir,
        "--", "--max-total-tokens", "1536", "--quantize", "eetq",
        STAND_IN_REPORT=str(report),
    )  # fmt: skip
    with worker:
        wait_for("tgi-1 ready", lambda: state_of(router, "tgi-1")[0] == "ready", [worker], 300)
        with Client(router.url, api_key=API_KEY) as client:
            result = client.generate("The launcher", max_new_tokens=4, details=True)
        assert result.details is not None
        assert result.details.generated_tokens >= 1
        launched = read_report(report)
        assert launched["argv"] == [
            "--model-id", "stand-in/model", "--json-output", "--port", launched["args"]["port"],
            "--hostname", "127.0.0.1", "--max-total-tokens", "1536", "--quantize", "eetq",
        ]  # fmt: skip
        assert launched["hf_token_sha256"] == hashlib.sha256(HF_TOKEN.encode()).hexdigest()
        assert launched["join_token_seen"] is False
        assert '"message":"Connected","target":"text_generation_router::server"' in (
            model_log.read_text()
        )
    assert HF_TOKEN not in worker.output()
    assert HF_TOKEN not in model_log.read_text()


def test_the_embedded_backend_serves_and_stops_with_its_worker(
    router: Router, tmp_path: Path, tgis_cache_dir: Path
) -> None:
    worker, _, _ = start_worker(router, "cpu-1", "embedded", tmp_path, tgis_cache_dir)
    with worker:
        wait_for("cpu-1 ready", lambda: state_of(router, "cpu-1")[0] == "ready", [worker], 300)
        with Client(router.url, api_key=API_KEY) as client:
            assert client.generate("Embedded", max_new_tokens=2).generated_text
        pids = backend_pids(worker)
        assert len(pids) == 1
    assert wait_gone(pids, 30) == []


def test_a_second_worker_on_the_same_port_exits_before_starting_a_backend(
    router: Router, tmp_path: Path, tgis_cache_dir: Path
) -> None:
    first, _, port = start_worker(router, "port-1", "embedded", tmp_path, tgis_cache_dir)
    report = tmp_path / "second.json"
    with first:
        wait_for("port-1 ready", lambda: state_of(router, "port-1")[0] == "ready", [first], 300)
        second_args = [
            "worker", "--backend", "tgi", "--port", str(port), "--host", "127.0.0.1",
            "--router", router.url, "--backend-port", str(free_port()),
        ]  # fmt: skip
        env = {"PATH": path_with_stand_in(), "MODEL_ID": "m", "STAND_IN_REPORT": str(report)}
        with ManagedProcess("port-2", second_args, env, router.logs) as second:
            assert second.wait(60) == 1
            assert f"port {port} is taken" in second.output()
            assert "One worker per port" in second.output()
        assert not report.exists()  # no backend was started
        assert state_of(router, "port-1")[0] == "ready"


def test_a_crashing_backend_is_restarted_with_back_off_and_the_worker_recovers(
    router: Router, tmp_path: Path, tgis_cache_dir: Path
) -> None:
    worker, _, _ = start_worker(
        router, "crash-1", "tgi", tmp_path, tgis_cache_dir,
        STAND_IN_FAIL_FIRST="1", STAND_IN_STATE=str(tmp_path),
    )  # fmt: skip
    with worker:
        wait_for("crash-1 ready", lambda: state_of(router, "crash-1")[0] == "ready", [worker], 300)
        output = worker.output()
        assert "backend exited with code 1 (last log line: Error: ShardCannotStart)" in output
        assert "restarting in 2s" in output
        assert (tmp_path / "starts").read_text() == "2"


def test_a_backend_stuck_loading_is_an_error_with_the_logs_reason(
    router: Router, tmp_path: Path, tgis_cache_dir: Path
) -> None:
    worker, _, _ = start_worker(
        router, "hang-1", "tgi", tmp_path, tgis_cache_dir, "--load-timeout", "3",
        STAND_IN_HANG="1",
    )  # fmt: skip
    with worker:
        wait_for("hang-1 error", lambda: state_of(router, "hang-1")[0] == "error", [worker], 120)
        _, message = state_of(router, "hang-1")
        assert "did not load within 3s (last log line: Warming up model)" in message
        pids = backend_pids(worker)
        assert pids
        assert not pid_alive(pids[0])  # the hung one was stopped
