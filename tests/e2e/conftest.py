from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.processes import ManagedProcess, get_json, running, wait_for
from tests.ports import free_port

API_KEY = "e2e-api-key"
WORKER_TOKEN = "e2e-worker-token"


@dataclass
class Stack:
    router_url: str
    worker_url: str
    backend_url: str
    router: ManagedProcess
    worker: ManagedProcess
    backend: ManagedProcess


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, tgis_cache_dir: Path) -> Iterator[Stack]:
    """Router, backend and PyWorker as three real processes on free ports."""
    logs = tmp_path_factory.mktemp("e2e-logs")
    ports = {name: free_port() for name in ("router", "worker", "backend")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    env = {"TGIS_CACHE_DIR": str(tgis_cache_dir), "TGIS_WORKER_TOKEN": WORKER_TOKEN}
    router_args = [
        "router",
        "--port", str(ports["router"]),
        "--api-key", API_KEY,
        "--state-dir", str(tmp_path_factory.mktemp("router-state")),
    ]  # fmt: skip
    worker_args = [
        "worker",
        "--port", str(ports["worker"]),
        "--host", "127.0.0.1",
        "--backend-url", urls["backend"],
        "--router", urls["router"],
        "--public-url", urls["worker"],
        "--worker-id", "e2e-worker",
    ]  # fmt: skip
    with (
        running("router", router_args, env, logs) as router,
        running("backend", ["backend", "--port", str(ports["backend"])], env, logs) as backend,
        running("worker", worker_args, env, logs) as worker,
    ):
        processes = [router, backend, worker]
        wait_for("the worker to be ready", lambda: _worker_ready(urls["router"]), processes)
        yield Stack(urls["router"], urls["worker"], urls["backend"], router, worker, backend)


def _worker_ready(router_url: str) -> bool:
    status, body = get_json(f"{router_url}/status")
    workers = body["endpoints"][0]["workers"] if status == 200 else []
    return any(worker["state"] == "ready" for worker in workers)
