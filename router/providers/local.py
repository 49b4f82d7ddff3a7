"""The local provider: each worker is an embedded backend plus a PyWorker, as child processes.

A cold (parked) worker keeps both its processes: the backend with its model loaded, and the
PyWorker, parked by SIGUSR1: it takes no requests and reports `parked`, keeping its keys, its
registration and its measured capacity. Resuming is SIGUSR2: the PyWorker reports `ready` at
once and the router routes to it, a few milliseconds from the call (a PyWorker that died while
parked is started again instead). Destroying a worker stops both.

Each PyWorker it starts gets a new one-time join token (`TGIS_JOIN_TOKEN`), bound to its
worker's name, from `join_token(name)`: the worker registers with it, and a resumed one replaces
its earlier registration.

Backends are forked from a fork server (`router.providers.forked`, `tgi_serverless.fork_server`)
that the provider starts first thing (`prepare`) with the backends' environment: it imports
torch, transformers and the backend once, so a backend started from nothing begins with its
model's load instead of about 4 s of imports. Where the fork server cannot serve (it failed
to start, or died), a backend is a new interpreter as before; `fork_server=False` asks for
that always. PyWorkers are always new interpreters (light: no torch).

Children get ports that were free a moment ago, start in their own session (so a Ctrl-C in the
terminal reaches only the supervisor, which then stops them in order), and die with their
parent even if it is killed outright (Linux parent-death signal; a forked backend dies with the
fork server, which dies with the provider's process). Their output is relayed line by line,
prefixed with the worker's name.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import ctypes
import logging
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from router.providers.base import ProviderError, ProviderState, ProviderWorker
from router.providers.forked import ForkServerClient, ForkServerGone

__all__ = ["ChildProcess", "JoinTokenMinter", "LocalProvider", "LocalWorker", "free_port"]

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1

JoinTokenMinter = Callable[[str], Awaitable[str]]
"""A new one-time join token for the worker of this name."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: ask Linux to SIGTERM it when the parent dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class ChildProcess(Protocol):
    """A worker's process: a child of ours (`asyncio.subprocess.Process`) or of the fork
    server (`ForkedProcess`)."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    @property
    def stdout(self) -> asyncio.StreamReader | None: ...

    def send_signal(self, signum: int) -> None: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...

    async def wait(self) -> int: ...


@dataclass
class LocalWorker:
    name: str
    backend_port: int
    worker_port: int
    processes: list[ChildProcess] = field(default_factory=list)
    relays: list[asyncio.Task[None]] = field(default_factory=list)
    cold: bool = False
    started_at: float = field(default_factory=time.time)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.worker_port}"

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def exited(self) -> list[int]:
        """Return codes of the processes that have already exited."""
        return [p.returncode for p in self.processes if p.returncode is not None]

    @property
    def state(self) -> ProviderState:
        if self.exited() or not self.processes:
            return ProviderState.EXITED
        return ProviderState.STOPPED if self.cold else ProviderState.RUNNING


class LocalProvider:
    def __init__(
        self,
        *,
        router_url: str,
        endpoint: str,
        env: Mapping[str, str],
        join_token: JoinTokenMinter,
        backend_args: Sequence[str] = (),
        log_level: str = "INFO",
        python: str = sys.executable,
        output: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
        fork_server: bool = True,
    ) -> None:
        self._router_url = router_url
        self._endpoint = endpoint
        self._env = dict(env)
        self._join_token = join_token
        self._backend_args = list(backend_args)
        self._log_level = log_level
        self._python = python
        self._output = output
        self.workers: list[LocalWorker] = []
        self.grace_s = 15.0
        self._fork_server = (
            ForkServerClient(python, self._env, preexec_fn=_die_with_parent)
            if fork_server
            else None
        )
        self._fork_server_started = False
        self._fork_server_failed = False
        self._fork_server_ready: asyncio.Task[bool] | None = None
        self._relays: list[asyncio.Task[None]] = []

    async def prepare(self) -> None:
        """Start the fork server, so that its imports are done before the first worker starts
        (`up` calls this first thing). Idempotent; `start_worker` calls it too."""
        if self._fork_server is None or self._fork_server_started:
            return
        self._fork_server_started = True
        try:
            output = await self._fork_server.start()
        except OSError as exc:
            log.warning("no fork server (%s): each backend starts a new interpreter", exc)
            self._fork_server = None
            return
        if output is not None:
            self._relays.append(asyncio.create_task(self._relay_output("[fork-server]", output)))
        self._fork_server_ready = asyncio.create_task(self._until_fork_server_ready())

    async def prepared(self) -> bool:
        """Wait until the fork server has imported the backend's libraries; whether it has
        (False: no fork server, or it exited first)."""
        await self.prepare()
        return self._fork_server_ready is not None and await self._fork_server_ready

    async def _until_fork_server_ready(self) -> bool:
        if self._fork_server is None:
            return False
        try:
            ready = await self._fork_server.wait_ready()
        except ForkServerGone as exc:
            log.warning("%s; backends start a new interpreter", exc)
            return False
        log.info("fork server ready: backends start without imports (%.1f s)", ready.preload_s)
        return True

    async def start_worker(self, name: str) -> LocalWorker:
        await self.prepare()
        worker = LocalWorker(name, backend_port=free_port(), worker_port=free_port())
        self.workers.append(worker)
        await self._spawn_backend(worker)
        await self._spawn_pyworker(worker)
        return worker

    async def _spawn_backend(self, worker: LocalWorker) -> None:
        args = ["backend", "--port", str(worker.backend_port), *self._backend_args]
        if self._fork_server is not None and not self._fork_server_failed:
            try:
                forked = await self._fork_server.spawn(self._command(args))
            except ForkServerGone as exc:
                log.warning("%s; backends start a new interpreter from now on", exc)
                self._fork_server_failed = True
            else:
                log.debug("forked %s backend (pid %d)", worker.name, forked.pid)
                self._adopt(worker, "backend", forked)
                return
        await self._spawn(worker, "backend", args)

    async def _spawn_pyworker(self, worker: LocalWorker) -> None:
        backend_url = f"http://127.0.0.1:{worker.backend_port}"
        token = await self._join_token(worker.name)
        await self._spawn(
            worker,
            "worker",
            [
                "worker",
                "--port", str(worker.worker_port),
                "--host", "127.0.0.1",
                "--backend-url", backend_url,
                "--router", self._router_url,
                "--public-url", worker.url,
                "--worker-id", worker.name,
                "--endpoint", self._endpoint,
            ],
            env={"TGIS_JOIN_TOKEN": token},
        )  # fmt: skip

    # The Provider protocol (router.providers.base), for the autoscaler loop.

    async def start(self) -> ProviderWorker:
        taken = {worker.name for worker in self.workers}
        index = len(self.workers) + 1
        while f"worker-{index}" in taken:
            index += 1
        return _view(await self.start_worker(f"worker-{index}"))

    async def stop_to_cold(self, worker_id: str) -> None:
        """Park the PyWorker (SIGUSR1: it reports `parked`); both processes keep running."""
        worker = self._get(worker_id)
        if worker.cold or len(worker.processes) < 2:
            return
        with contextlib.suppress(ProcessLookupError):
            worker.processes[-1].send_signal(signal.SIGUSR1)
        worker.cold = True

    async def resume(self, worker_id: str) -> None:
        """Resume the parked PyWorker (SIGUSR2); start a new one if it has gone."""
        worker = self._get(worker_id)
        if not worker.cold:
            return
        pyworker = worker.processes[-1] if len(worker.processes) > 1 else None
        if pyworker is not None and pyworker.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                pyworker.send_signal(signal.SIGUSR2)
        else:
            if pyworker is not None:
                worker.processes.remove(pyworker)
            worker.worker_port = free_port()
            await self._spawn_pyworker(worker)
        worker.cold = False

    async def destroy(self, worker_id: str) -> None:
        worker = self._get(worker_id)
        self.workers.remove(worker)
        await self._stop([worker], self.grace_s)

    async def list(self) -> builtins.list[ProviderWorker]:
        return [_view(worker) for worker in self.workers]

    def _get(self, worker_id: str) -> LocalWorker:
        for worker in self.workers:
            if worker.name == worker_id:
                return worker
        raise ProviderError(f"no local worker named {worker_id!r}")

    async def _spawn(
        self,
        worker: LocalWorker,
        role: str,
        args: builtins.list[str],
        env: Mapping[str, str] | None = None,
    ) -> None:
        process = await asyncio.create_subprocess_exec(
            self._python, "-m", "tgi_serverless", *self._command(args),
            env={**self._env, **(env or {})},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )  # fmt: skip
        log.debug("started %s %s (pid %d)", worker.name, role, process.pid)
        self._adopt(worker, role, process)

    def _command(self, args: Sequence[str]) -> builtins.list[str]:
        """The words after `tgi-serverless` for a child running `args`."""
        return ["--log-level", self._log_level, *args]

    def _adopt(self, worker: LocalWorker, role: str, process: ChildProcess) -> None:
        worker.processes.append(process)
        if process.stdout is not None:
            relay = self._relay_output(f"[{worker.name} {role}]", process.stdout)
            worker.relays.append(asyncio.create_task(relay))

    async def _relay_output(self, prefix: str, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self._output(f"{prefix} {line.decode('utf-8', errors='replace').rstrip()}")

    async def stop_all(self, grace_s: float = 15.0) -> None:
        """SIGTERM every child (PyWorkers first, so they report `stopped`), SIGKILL stragglers,
        then close the fork server."""
        await self._stop(self.workers, grace_s)
        if self._fork_server_ready is not None:
            self._fork_server_ready.cancel()
            await asyncio.gather(self._fork_server_ready, return_exceptions=True)
        if self._fork_server is not None:
            await self._fork_server.close()
        await asyncio.gather(*self._relays, return_exceptions=True)

    @staticmethod
    async def _stop(workers: Sequence[LocalWorker], grace_s: float) -> None:
        processes = [p for w in workers for p in reversed(w.processes)]
        for process in processes:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
        await _wait_or_kill(processes, grace_s)
        relays = [task for worker in workers for task in worker.relays]
        await asyncio.gather(*relays, return_exceptions=True)


def _view(worker: LocalWorker) -> ProviderWorker:
    return ProviderWorker(worker.name, worker.state, worker.url, worker.started_at)


async def _wait_or_kill(processes: Sequence[ChildProcess], grace_s: float) -> None:
    waits = [asyncio.create_task(process.wait()) for process in processes]
    if not waits:
        return
    _, pending = await asyncio.wait(waits, timeout=grace_s)
    for process in processes:
        if process.returncode is None:
            log.warning("pid %d did not stop within %.0fs; killing it", process.pid, grace_s)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
    if pending:
        await asyncio.wait(pending)
