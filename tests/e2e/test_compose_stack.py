"""templates/compose.yaml's services as processes on this machine, with a real Prometheus.

Each service runs the command and environment the compose file gives it, where this machine has
them (`tests.templates.compose.HostPlan`: names become 127.0.0.1, ports free ports, volumes
folders), in the order its `depends_on` conditions set. Grafana is the one service not run: its
dashboard's every query is run against that Prometheus instead, with Grafana's `$__rate_interval`
worked out as Grafana does, and each must return data while clients use the stack.

Needs Debian's `prometheus` package (CI's .ci/run installs it); skipped, and says so, without it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from client import Client
from tests.e2e.leaks import WATCH
from tests.e2e.processes import get_json, post_json
from tests.ports import free_port
from tests.templates.compose import REPO, TEMPLATES, HostPlan, HostService, load

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        shutil.which("prometheus") is None,
        reason="no `prometheus` binary: install Debian's package (apt-get install prometheus); "
        "CI's .ci/run does",
    ),
]

KEYS = {
    "TGIS_API_KEY": "compose-e2e-api-key",
    "TGIS_ADMIN_KEY": "compose-e2e-admin-key",
    "GRAFANA_ADMIN_PASSWORD": "compose-e2e-grafana",
}
NOT_RUN = {"grafana"}  # not installed here: its dashboard's queries are checked instead
SCRAPE_INTERVAL_S = 1
STEP_S = 1
RATE_INTERVAL_S = max(4 * SCRAPE_INTERVAL_S, STEP_S + SCRAPE_INTERVAL_S)
"""Grafana's $__rate_interval: four scrape intervals at least, or a step plus one."""
DASHBOARD = TEMPLATES / "grafana" / "dashboards" / "tgi-serverless.json"
READY_LIMIT_S = 240.0  # two workers load, benchmark and register on a loaded 2-core machine


@dataclass
class Running:
    """The services started so far, each in its own session, its output in a log file."""

    logs: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    completed: set[str] = field(default_factory=set)
    """One-shot services that ran to their end, as they should."""

    def start(self, service: HostService, env: Mapping[str, str]) -> None:
        for path, text in service.files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        log_path = self.logs / f"{service.name}.log"
        watch_name = WATCH.process(service.name, service.argv, service.env)
        WATCH.log_file(watch_name, log_path)
        with log_path.open("wb") as log:
            self.processes[service.name] = subprocess.Popen(
                service.argv,
                env={**env, **service.env},
                cwd=self.logs,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]

    def fail(self, what: str) -> None:
        logs = "\n".join(f"--- {name} ---\n{self.output(name)}" for name in self.processes)
        raise AssertionError(f"{what}\n{logs}")

    def wait_until(
        self, what: str, condition: Callable[[], bool], limit_s: float, *, may_exit: str = ""
    ) -> None:
        """Poll `condition` until it holds; fail with the logs if a service that should still
        run has exited, or when time runs out."""
        deadline = time.monotonic() + limit_s
        while True:
            try:
                if condition():
                    return
            except (OSError, ValueError):
                pass
            dead = [
                name
                for name, process in self.processes.items()
                if name != may_exit and name not in self.completed and process.poll() is not None
            ]
            if dead:
                self.fail(f"waiting for {what}: {dead[0]} exited")
            if time.monotonic() > deadline:
                self.fail(f"waiting for {what}: timed out after {limit_s:g}s")
            time.sleep(0.3)

    def stop_all(self) -> None:
        """SIGTERM to every service's session (the workers' backends included), last started
        first; SIGKILL to what is still there after a grace period."""
        for process in reversed(self.processes.values()):
            _signal_session(process, signal.SIGTERM)
        deadline = time.monotonic() + 30.0
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(deadline - time.monotonic(), 0.1))
            _signal_session(process, signal.SIGKILL)
            process.wait(10)


def _signal_session(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


@dataclass
class ComposeStack:
    plan: HostPlan
    running: Running
    root: Path

    @property
    def router_url(self) -> str:
        return self.plan.url("router", 8080)

    @property
    def prometheus_url(self) -> str:
        return self.plan.url("prometheus", 9090)


def image_copies() -> dict[str, Path]:
    """Where the CPU image copies this repository (its Dockerfile's `COPY . <folder>`): a path
    there is the same path in this checkout."""
    dockerfile = (TEMPLATES / "cpu" / "Dockerfile").read_text()
    (folder,) = [line.split()[2] for line in dockerfile.splitlines() if line.startswith("COPY . ")]
    return {folder: REPO}


def _shorter_scrapes(target: str, text: str) -> str:
    """Prometheus' configuration as the compose file mounts it, scraping every second."""
    if not target.endswith("prometheus.yml"):
        return text
    config = yaml.safe_load(text)
    config["global"]["scrape_interval"] = f"{SCRAPE_INTERVAL_S}s"
    config["global"]["evaluation_interval"] = f"{SCRAPE_INTERVAL_S}s"
    return yaml.safe_dump(config)


def _start_order(services: Mapping[str, HostService]) -> list[str]:
    order: list[str] = []
    while len(order) < len(services):
        ready = [
            name
            for name, service in services.items()
            if name not in order and set(service.depends_on) <= set(order)
        ]
        assert ready, "depends_on has a cycle"
        order.extend(sorted(ready))
    return order


def _run_healthcheck(argv: list[str], env: Mapping[str, str]) -> bool:
    done = subprocess.run(argv, env=dict(env), capture_output=True, timeout=30, check=False)
    return done.returncode == 0


@pytest.fixture(scope="module")
def compose(
    tmp_path_factory: pytest.TempPathFactory, tgis_cache_dir: Path
) -> Iterator[ComposeStack]:
    root = tmp_path_factory.mktemp("compose")
    plan = HostPlan(
        load(KEYS), root, free_port, image_paths=image_copies(), edit_file=_shorter_scrapes
    )
    running = Running(root)
    bin_dir = str(Path(sys.executable).parent)  # tgi-serverless and python, as in the image
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "TGIS_CACHE_DIR": str(tgis_cache_dir),
    }
    for volume in load(KEYS)["volumes"]:
        (root / "volumes" / volume).mkdir(parents=True, exist_ok=True)
    try:
        for name in _start_order(plan.services):
            if name in NOT_RUN:
                continue
            service = plan.services[name]
            for needed, condition in service.depends_on.items():
                _wait_for_condition(running, plan, needed, condition, env)
            model_log = root / f"{name}-model.log"  # the image's ENV sets one in each container
            running.start(service, {**env, "MODEL_LOG": str(model_log)})
        stack = ComposeStack(plan, running, root)
        running.wait_until(
            "both workers to serve", lambda: _serving_workers(stack) == 2, READY_LIMIT_S
        )
        yield stack
    finally:
        running.stop_all()


def _wait_for_condition(
    running: Running, plan: HostPlan, name: str, condition: str, env: Mapping[str, str]
) -> None:
    if condition == "service_healthy":
        check = plan.services[name].healthcheck
        assert check is not None, f"{name} has no healthcheck to wait on"
        running.wait_until(f"{name} to be healthy", lambda: _run_healthcheck(check, env), 120.0)
    elif condition == "service_completed_successfully":
        process = running.processes[name]
        running.wait_until(
            f"{name} to finish", lambda: process.poll() is not None, 120.0, may_exit=name
        )
        if process.returncode != 0:
            running.fail(f"{name} exited {process.returncode}")
        running.completed.add(name)
        if name == "join-tokens":
            _watch_join_tokens(plan)


def _watch_join_tokens(plan: HostPlan) -> None:
    """The tokens the minting service wrote are secrets: no process may log one."""
    for path in _token_files(plan):
        WATCH.process(path.name, [], {"TGIS_JOIN_TOKEN": path.read_text().strip()})


def _token_files(plan: HostPlan) -> list[Path]:
    folder = Path(plan.rewrite("worker-1", "/var/lib/tgi-serverless/join-tokens"))
    return sorted(folder.iterdir())


def _serving_workers(stack: ComposeStack) -> float:
    admin = {"Authorization": f"Bearer {KEYS['TGIS_ADMIN_KEY']}"}
    status, body = get_json(f"{stack.router_url}/status", headers=admin)
    if status != 200:
        return 0
    workers = body["endpoints"][0]["workers"]
    return sum(worker["state"] in ("ready", "busy") for worker in workers)


class Traffic:
    """Clients using the stack from a thread until stopped: routed requests, streamed and not,
    and once a replayed ticket (which a worker refuses). Its first error fails the test."""

    def __init__(self, router_url: str) -> None:
        self._router_url = router_url
        self._stop = threading.Event()
        self.requests = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(60)
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            with Client(self._router_url, api_key=KEYS["TGIS_API_KEY"]) as client:
                self._replay_once(client)
                while not self._stop.is_set():
                    client.generate("Compose runs the fleet", max_new_tokens=4)
                    list(client.generate_stream("Prometheus scrapes it", max_new_tokens=4))
                    self.requests += 2
        except Exception as error:  # noqa: BLE001 - handed to the test's thread
            self.error = error

    @staticmethod
    def _replay_once(client: Client) -> None:
        ticket = client.route(4)
        payload = {"inputs": "replayed", "parameters": {"max_new_tokens": 4}}
        body = {"auth_data": ticket.auth_data(), "payload": payload}
        assert post_json(f"{ticket.url}/generate", body)[0] == 200
        status, answer = post_json(f"{ticket.url}/generate", body)
        assert (status, answer["reason"]) == (403, "replayed")


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of every panel."""
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]


def as_grafana_sends_it(expr: str) -> str:
    return expr.replace("$__rate_interval", f"{RATE_INTERVAL_S}s")


def query_range(prometheus_url: str, expr: str, start: float, end: float) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode(
        {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{STEP_S}s"}
    )
    status, body = get_json(f"{prometheus_url}/api/v1/query_range?{query}")
    assert status == 200, (expr, body)
    assert body["status"] == "success", (expr, body)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def finite_values(result: list[dict[str, Any]]) -> list[float]:
    return [
        float(value)
        for series in result
        for _, value in series["values"]
        if math.isfinite(float(value))
    ]


def test_every_dashboard_query_returns_data_from_prometheus(compose: ComposeStack) -> None:
    started = time.time()
    missing = dashboard_queries()
    with Traffic(compose.router_url) as traffic:
        deadline = time.monotonic() + 120.0
        while missing and time.monotonic() < deadline:
            time.sleep(2.0)
            missing = [
                (title, expr)
                for title, expr in missing
                if not finite_values(
                    query_range(
                        compose.prometheus_url, as_grafana_sends_it(expr), started, time.time()
                    )
                )
            ]
    assert traffic.requests > 0
    assert not missing, f"queries without data after {traffic.requests} requests: {missing}"


def test_the_dashboard_shows_two_workers_wanted_and_serving(compose: ComposeStack) -> None:
    """Desired: the endpoint's min_workers, which the minting service set; serving: both."""
    queries = dict(
        (expr, title) for title, expr in dashboard_queries() if title == "Desired vs actual workers"
    )
    now = time.time()
    for expr in queries:
        values = finite_values(
            query_range(compose.prometheus_url, as_grafana_sends_it(expr), now - 5, now)
        )
        assert values, expr
        assert values[-1] == 2, expr


def test_the_join_tokens_are_readable_by_their_owner_only(compose: ComposeStack) -> None:
    files = _token_files(compose.plan)
    assert [path.name for path in files] == ["worker-1", "worker-2"]
    for path in files:
        assert path.stat().st_mode & 0o777 == 0o600, path
