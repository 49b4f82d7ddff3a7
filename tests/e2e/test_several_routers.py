"""Two real routers that share no state, one worker reporting to both (a join token each), and
clients given both: every request is served while a router is down, and after one is killed."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from client import Client
from tests.e2e.conftest import ADMIN_KEY, API_KEY
from tests.e2e.processes import (
    ManagedProcess,
    cli_join_token,
    get_json,
    router_args,
    router_status,
    run_command,
    wait_for,
    worker_args,
)
from tests.ports import free_port

pytestmark = pytest.mark.e2e

PROMPT = "Two routers"


@dataclass
class Fleet:
    routers: list[str]
    router_processes: list[ManagedProcess]
    others: list[ManagedProcess]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, tgis_cache_dir: Path) -> Iterator[Fleet]:
    logs = tmp_path_factory.mktemp("several-routers-logs")
    env = {"TGIS_CACHE_DIR": str(tgis_cache_dir)}
    router_env = {**env, "TGIS_ALLOW_PRIVATE_WORKERS": "true"}
    router_ports = [free_port(), free_port()]
    routers = [f"http://127.0.0.1:{port}" for port in router_ports]
    backend_port, worker_port = free_port(), free_port()
    backend_url = f"http://127.0.0.1:{backend_port}"
    started: list[ManagedProcess] = []
    try:
        for index, port in enumerate(router_ports):
            state = tmp_path_factory.mktemp(f"router-{index}-state")
            args = router_args(port, API_KEY, state, "--admin-key", ADMIN_KEY)
            started.append(ManagedProcess(f"router-{index}", args, router_env, logs))
        backend = ManagedProcess("backend", ["backend", "--port", str(backend_port)], env, logs)
        started.append(backend)
        for url in routers:
            wait_for(url, partial(_healthy, url), started)
        tokens = ",".join(cli_join_token(url, ADMIN_KEY) for url in routers)
        args = worker_args(worker_port, backend_url, ",".join(routers), "two-routers-worker")
        worker = ManagedProcess("worker", args, {**env, "TGIS_JOIN_TOKEN": tokens}, logs)
        started.append(worker)
        for url in routers:
            wait_for(f"the worker ready at {url}", partial(_ready_at, url), started)
        yield Fleet(routers, started[:2], [backend, worker])
    finally:
        for process in reversed(started):
            process.stop()


def _healthy(router_url: str) -> bool:
    return get_json(f"{router_url}/health")[0] == 200


def _ready_at(router_url: str) -> bool:
    status, body = router_status(router_url)
    workers = body["endpoints"][0]["workers"] if status == 200 else []
    return any(worker["state"] == "ready" for worker in workers)


def generate(routers: list[str], *, stream: bool = False) -> str:
    with Client(routers, api_key=API_KEY) as client:
        if stream:
            events = list(client.generate_stream(PROMPT, max_new_tokens=4))
            text = events[-1].generated_text
            assert text is not None
            return text
        return client.generate(PROMPT, max_new_tokens=4).generated_text


def test_each_router_routes_to_the_worker_with_tickets_it_accepts(fleet: Fleet) -> None:
    first, second = fleet.routers
    # Each router numbers this worker's tickets from 1, with a key of its own.
    assert generate([first]) == generate([second]) == generate([second, first])
    assert generate([first], stream=True) == generate([second], stream=True)


def test_clients_pass_over_a_router_that_is_down(fleet: Fleet) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    assert generate([down, *fleet.routers]) == generate(fleet.routers)
    done = run_command(
        ["generate", PROMPT, "--router", down, "--router", ",".join(fleet.routers)],
        {"TGIS_API_KEY": API_KEY},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()


def test_a_killed_router_leaves_the_other_serving(fleet: Fleet) -> None:
    # Last in this module: the first router does not come back.
    expected = generate(fleet.routers)
    fleet.router_processes[0].stop(signal.SIGKILL)
    assert generate(fleet.routers) == expected
    assert generate(fleet.routers, stream=True).startswith(expected)
    done = run_command(
        [
            "generate",
            PROMPT,
            "--max-new-tokens",
            "4",
            "--stream",
            "--router",
            ",".join(fleet.routers),
        ],
        {"TGIS_API_KEY": API_KEY},
    )
    assert done.returncode == 0, done.stderr
    assert expected in done.stdout
    assert fleet.others[1].popen.poll() is None  # the worker goes on, reporting to the other
