from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.leaks import WATCH
from tests.e2e.processes import (
    ADMIN_KEY,
    ManagedProcess,
    cli_join_token,
    get_json,
    router_args,
    router_status,
    wait_for,
    worker_args,
)
from tests.ports import free_port

API_KEY = "e2e-api-key"
__all__ = ["ADMIN_KEY", "API_KEY", "Stack"]


@dataclass
class Stack:
    router_url: str
    worker_url: str
    backend_url: str
    router: ManagedProcess
    worker: ManagedProcess
    backend: ManagedProcess


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_log() -> Iterator[None]:
    """After the last e2e test: no output of any process the suite started holds a key or token
    the suite gave it (`tests.e2e.leaks`)."""
    yield
    leaks = WATCH.leaks()
    assert not leaks, "secrets in process output:\n" + "\n".join(leaks[:20])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, tgis_cache_dir: Path) -> Iterator[Stack]:
    """Router, backend and PyWorker as three real processes on free ports; the worker registers
    with a join token from `tgi-serverless endpoints join-token`, as an operator's would."""
    logs = tmp_path_factory.mktemp("e2e-logs")
    ports = {name: free_port() for name in ("router", "worker", "backend")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    env = {"TGIS_CACHE_DIR": str(tgis_cache_dir)}
    state = tmp_path_factory.mktemp("router-state")
    args = {
        "router": router_args(ports["router"], API_KEY, state, "--admin-key", ADMIN_KEY),
        "backend": ["backend", "--port", str(ports["backend"])],
        "worker": worker_args(ports["worker"], urls["backend"], urls["router"], "e2e-worker"),
    }
    router_env = {**env, "TGIS_ALLOW_PRIVATE_WORKERS": "true"}  # its worker is on 127.0.0.1
    with (
        ManagedProcess("router", args["router"], router_env, logs) as router,
        ManagedProcess("backend", args["backend"], env, logs) as backend,
    ):
        wait_for("the router", lambda: get_json(f"{urls['router']}/health")[0] == 200, [router])
        token = cli_join_token(urls["router"], ADMIN_KEY)
        worker_env = {**env, "TGIS_JOIN_TOKEN": token}
        with ManagedProcess("worker", args["worker"], worker_env, logs) as worker:
            processes = [router, backend, worker]
            wait_for("the worker to be ready", lambda: _worker_ready(urls["router"]), processes)
            yield Stack(urls["router"], urls["worker"], urls["backend"], router, worker, backend)


def _worker_ready(router_url: str) -> bool:
    status, body = router_status(router_url)
    workers = body["endpoints"][0]["workers"] if status == 200 else []
    return any(worker["state"] == "ready" for worker in workers)
