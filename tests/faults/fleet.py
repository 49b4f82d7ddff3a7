"""A fleet of real processes to break on purpose: one router, and backends with their PyWorkers,
each a separate process on 127.0.0.1 (not `tgi-serverless up`, whose children die with it), so
that one of them can be killed, stopped or restarted while the others go on. Plus what the fault
cases share: a stopwatch, the line each case prints, and a stream read event by event."""

from __future__ import annotations

import http.client
import json
import os
import signal
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocol import Ticket
from protocol.router_status import EndpointStatus, RouterStatus, WorkerStatus
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

API_KEY = "faults-api-key"
WORKER_STALE_S = 4.0
"""The fleet router's staleness limit (`TGIS_WORKER_STALE_S`): short, so a case outlives it."""
REPORT_INTERVAL_S = 0.5
"""How often the fleet's PyWorkers report (`TGIS_REPORT_INTERVAL_S`)."""
TICKET_TTL_S = 20.0
"""The fleet router's ticket lifetime: an unspent ticket's cost comes back after it."""


@dataclass
class Fleet:
    """Router, backends and PyWorkers as separate processes; `workers[id]` and `backends[id]`
    are the processes of worker `id`, restartable one by one."""

    logs: Path
    env: dict[str, str]
    state_dir: Path
    router_port: int = field(default_factory=free_port)
    router: ManagedProcess | None = None
    backends: dict[str, ManagedProcess] = field(default_factory=dict)
    workers: dict[str, ManagedProcess] = field(default_factory=dict)
    worker_ports: dict[str, int] = field(default_factory=dict)
    backend_ports: dict[str, int] = field(default_factory=dict)
    _starts: int = 0

    @property
    def router_url(self) -> str:
        return f"http://127.0.0.1:{self.router_port}"

    def worker_url(self, worker_id: str) -> str:
        return f"http://127.0.0.1:{self.worker_ports[worker_id]}"

    def processes(self) -> list[ManagedProcess]:
        every = [self.router, *self.backends.values(), *self.workers.values()]
        return [process for process in every if process is not None]

    def start_router(self) -> None:
        """Start the router on its port (again, after a kill), and wait for its /health."""
        args = router_args(self.router_port, API_KEY, self.state_dir, "--admin-key", ADMIN_KEY)
        env = {
            **self.env,
            "TGIS_ALLOW_PRIVATE_WORKERS": "true",
            "TGIS_WORKER_STALE_S": str(WORKER_STALE_S),
            "TGIS_TICKET_TTL_S": str(TICKET_TTL_S),
        }
        self.router = ManagedProcess(self._name("router"), args, env, self.logs)
        wait_for(
            "the router", lambda: get_json(f"{self.router_url}/health")[0] == 200, [self.router]
        )

    def start_backend(self, worker_id: str) -> None:
        port = self.backend_ports.setdefault(worker_id, free_port())
        args = ["backend", "--port", str(port)]
        env = {**self.env, "OMP_NUM_THREADS": "1"}
        self.backends[worker_id] = ManagedProcess(
            self._name(f"backend-{worker_id}"), args, env, self.logs
        )

    def start_worker(self, worker_id: str) -> None:
        """Start worker `worker_id`'s PyWorker with a new join token (a restarted worker needs
        one); its backend must have been started."""
        port = self.worker_ports.setdefault(worker_id, free_port())
        backend_url = f"http://127.0.0.1:{self.backend_ports[worker_id]}"
        args = worker_args(port, backend_url, self.router_url, worker_id)
        env = {
            **self.env,
            "TGIS_JOIN_TOKEN": cli_join_token(self.router_url, ADMIN_KEY, worker_id=worker_id),
            "TGIS_REPORT_INTERVAL_S": str(REPORT_INTERVAL_S),
        }
        self.workers[worker_id] = ManagedProcess(self._name(worker_id), args, env, self.logs)

    def wait_ready(self, *worker_ids: str, limit_s: float = 180.0) -> None:
        """Wait until the router routes to every one of `worker_ids`."""
        wait_for(
            f"{', '.join(worker_ids)} ready",
            lambda: set(worker_ids) <= set(self.ids_in("ready")),
            self.processes(),
            limit_s=limit_s,
        )

    def ensure(self, *worker_ids: str) -> None:
        """Every one of `worker_ids` up and ready, restarting whatever an earlier case broke."""
        if self.router is None or self.router.popen.poll() is not None:
            self.start_router()
        for worker_id in worker_ids:
            backend = self.backends.get(worker_id)
            if backend is None or backend.popen.poll() is not None:
                self.start_backend(worker_id)
            worker = self.workers.get(worker_id)
            if worker is None or worker.popen.poll() is not None:
                self.start_worker(worker_id)
        self.wait_ready(*worker_ids)

    def endpoint(self) -> EndpointStatus:
        status, body = router_status(self.router_url)
        assert status == 200, body
        found = RouterStatus.model_validate(body).endpoint("default")
        assert found is not None
        return found

    def worker(self, worker_id: str) -> WorkerStatus | None:
        return next((w for w in self.endpoint().workers if w.id == worker_id), None)

    def ids_in(self, state: str) -> list[str]:
        return sorted(w.id for w in self.endpoint().workers if w.state == state)

    def stop(self) -> None:
        for process in reversed(self.processes()):
            if process.popen.poll() is None:
                os.kill(process.pid, signal.SIGCONT)  # a stopped one must hear SIGTERM
            process.stop()

    def _name(self, base: str) -> str:
        self._starts += 1
        return f"{base}-{self._starts}"


def kill(target: ManagedProcess | int) -> float:
    """SIGKILL a process (ours, then reaped, or any by pid); the monotonic time of the kill."""
    killed_at = time.monotonic()
    if isinstance(target, ManagedProcess):
        os.kill(target.pid, signal.SIGKILL)
        target.popen.wait(10)
        target.stop()  # reaped already: this closes its log
    else:
        os.kill(target, signal.SIGKILL)
    return killed_at


def until(what: str, condition: Callable[[], bool], limit_s: float) -> float:
    """Poll `condition` every 50 ms until it holds; the monotonic time it did. Fails after
    `limit_s`."""
    deadline = time.monotonic() + limit_s
    while True:
        try:
            if condition():
                return time.monotonic()
        except (OSError, ValueError):
            pass
        assert time.monotonic() < deadline, f"{what}: not within {limit_s:g} s"
        time.sleep(0.05)


def report(case: str, **figures: float | int | str) -> None:
    """Print what a case measured, one line: `FAULT case: name=value ...` (seconds as 0.00)."""
    shown = " ".join(
        f"{name}={value:.2f}" if isinstance(value, float) else f"{name}={value}"
        for name, value in figures.items()
    )
    print(f"\nFAULT {case}: {shown}")


@dataclass
class StreamOutcome:
    """One stream, read to its end: its events (decoded JSON) and when it ended."""

    status: int
    events: list[Any]
    ended_at: float
    error: str = ""
    """How reading failed, when the connection broke rather than the stream ending."""

    @property
    def tokens(self) -> int:
        return sum(1 for event in self.events if isinstance(event, dict) and "token" in event)

    @property
    def error_event(self) -> Mapping[str, Any] | None:
        last = self.events[-1] if self.events else None
        return last if isinstance(last, dict) and "error" in last else None

    @property
    def finished(self) -> bool:
        last = self.events[-1] if self.events else None
        return isinstance(last, dict) and last.get("generated_text") is not None


def read_stream(
    ticket: Ticket, payload: Mapping[str, Any], first_event: Callable[[], None]
) -> StreamOutcome:
    """POST `payload` to the ticket's worker `/generate_stream` and read every SSE event;
    `first_event` is called when the first one arrives."""
    body = json.dumps(ticket.worker_body(payload)).encode()
    request = urllib.request.Request(
        ticket.worker_url("/generate_stream"),
        data=body,
        headers={"Content-Type": "application/json"},
    )
    events: list[Any] = []
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            for line in response:
                if line.startswith(b"data:"):
                    events.append(json.loads(line[5:]))
                    if len(events) == 1:
                        first_event()
            return StreamOutcome(int(response.status), events, time.monotonic())
    except (OSError, http.client.HTTPException) as error:  # cut off: IncompleteRead, reset
        return StreamOutcome(0, events, time.monotonic(), error=repr(error))
