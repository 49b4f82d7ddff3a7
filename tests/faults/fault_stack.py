"""One router, one backend and one PyWorker as real processes, for the fault cases: each
piece started on its own (so a case can put one in a network namespace, under a skewed clock,
or behind a stalling proxy), every wait bounded, and what a case reads back (the router's view
of a worker, the worker's metrics) in one place."""

from __future__ import annotations

import contextlib
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from client import Client, Ticket
from tests.e2e.processes import (
    ADMIN_KEY,
    ManagedProcess,
    cli_join_token,
    get_json,
    post,
    router_args,
    router_status,
    wait_for,
    worker_args,
)
from tests.ports import free_port

API_KEY = "faults-api-key"
PROMPT = "A fault is injected"
FAST_REPORTS = {"TGIS_REPORT_INTERVAL_S": "0.5", "TGIS_HEALTH_INTERVAL_S": "0.5"}
"""The worker reports twice a second, so staleness and recovery show within seconds."""


@dataclass
class Stack:
    router_url: str
    worker_url: str
    backend_url: str
    router: ManagedProcess
    worker: ManagedProcess
    backend: ManagedProcess

    @property
    def processes(self) -> list[ManagedProcess]:
        return [self.router, self.worker, self.backend]

    def ticket(self, cost: int = 8) -> Ticket:
        with Client(self.router_url, api_key=API_KEY) as client:
            return client.route(cost)

    def generate(
        self, ticket: Ticket, max_new_tokens: int = 8, *, stream: bool = False
    ) -> tuple[int, bytes]:
        """POST a generation with `ticket` straight to its worker: the status and the body."""
        path = "/generate_stream" if stream else "/generate"
        payload = {"inputs": PROMPT, "parameters": {"max_new_tokens": max_new_tokens}}
        body = {"auth_data": ticket.auth_data(), "payload": payload}
        return post(ticket.worker_url(path), body)

    def worker_view(self) -> str | None:
        """The worker's state as the router shows it (`ready`, `stale`, ...), None if unknown."""
        return worker_state(self.router_url)

    def wait(self, what: str, condition: Callable[[], bool], limit_s: float = 60.0) -> float:
        """Wait for `condition` (bounded, failing with the logs); the seconds it took."""
        started = time.monotonic()
        wait_for(what, condition, self.processes, limit_s=limit_s)
        return time.monotonic() - started


def worker_state(router_url: str) -> str | None:
    status, body = router_status(router_url)
    if status != 200:
        return None
    workers = [w for endpoint in body["endpoints"] for w in endpoint["workers"]]
    return str(workers[0]["state"]) if workers else None


def worker_metric(worker_url: str, name: str, labels: str = "") -> float:
    """One sample of the worker's /metrics (`name{labels}`); 0 when it is not there yet."""
    with urllib.request.urlopen(f"{worker_url}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    wanted = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[-1])
    return 0.0


def start_router(
    logs: Path, state_dir: Path, env: Mapping[str, str], *, host: str = "127.0.0.1"
) -> tuple[ManagedProcess, str]:
    """A router bound to `host`, its state in `state_dir`, once /health answers; its URL on
    this machine."""
    port = free_port()
    args = router_args(port, API_KEY, state_dir, "--admin-key", ADMIN_KEY, "--host", host)
    variables = {"TGIS_ALLOW_PRIVATE_WORKERS": "true", **env}
    router = ManagedProcess("router", args, variables, logs)
    url = f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}"
    try:
        wait_for("the router", lambda: get_json(f"{url}/health")[0] == 200, [router])
    except BaseException:
        router.stop()
        raise
    return router, url


@contextlib.contextmanager
def running_stack(
    logs: Path,
    cache_dir: Path,
    *,
    state_dir: Path | None = None,
    router_env: Mapping[str, str] | None = None,
    worker_env: Mapping[str, str] | None = None,
    router_host: str = "127.0.0.1",
    worker_host: str = "127.0.0.1",
    inside: Sequence[str] = (),
    backend_url_for_worker: Callable[[str], str] = lambda url: url,
    router_url_for_worker: Callable[[str], str] = lambda url: url,
) -> Iterator[Stack]:
    """Router, backend and worker, once the router shows the worker ready. `inside`: a prefix
    the backend and the worker are started under (`ip netns exec NAME`, which execs the
    program: a prefix that forks would leave them running when stopped).
    `backend_url_for_worker`, `router_url_for_worker`: the URLs the worker is given (a
    proxy's, an address on another network)."""
    cache = {"TGIS_CACHE_DIR": str(cache_dir)}
    router_state = state_dir if state_dir is not None else logs / "router-state"
    program = (*inside, sys.executable, "-m", "tgi_serverless") if inside else ()
    variables = {**cache, **(router_env or {})}
    router, router_url = start_router(logs, router_state, variables, host=router_host)
    with router:
        backend_port, worker_port = free_port(), free_port()
        backend_url = f"http://127.0.0.1:{backend_port}"
        backend = ManagedProcess(
            "backend", ["backend", "--port", str(backend_port)], cache, logs, program=program
        )
        with backend:
            token = cli_join_token(router_url, ADMIN_KEY)
            args = worker_args(
                worker_port,
                backend_url_for_worker(backend_url),
                router_url_for_worker(router_url),
                "fault-worker",
            )
            args[args.index("--host") + 1] = worker_host
            worker_url = f"http://{worker_host}:{worker_port}"
            args[args.index("--public-url") + 1] = worker_url
            variables = {**cache, **FAST_REPORTS, "TGIS_JOIN_TOKEN": token, **(worker_env or {})}
            with ManagedProcess("worker", args, variables, logs, program=program) as worker:
                stack = Stack(router_url, worker_url, backend_url, router, worker, backend)
                stack.wait("the worker ready", lambda: stack.worker_view() == "ready", 180)
                yield stack
