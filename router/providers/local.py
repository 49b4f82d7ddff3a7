"""The local provider: each worker is an embedded backend plus a PyWorker, as child processes.

Children get ports that were free a moment ago, start in their own session (so a Ctrl-C in the
terminal reaches only the supervisor, which then stops them in order), and die with their
parent even if it is killed outright (Linux parent-death signal). Their output is relayed line
by line, prefixed with the worker's name.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import signal
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["LocalProvider", "LocalWorker", "free_port"]

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: ask Linux to SIGTERM it when the parent dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class LocalWorker:
    name: str
    backend_port: int
    worker_port: int
    processes: list[asyncio.subprocess.Process] = field(default_factory=list)
    relays: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.worker_port}"

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def exited(self) -> list[int]:
        """Return codes of the processes that have already exited."""
        return [p.returncode for p in self.processes if p.returncode is not None]


class LocalProvider:
    def __init__(
        self,
        *,
        router_url: str,
        endpoint: str,
        env: Mapping[str, str],
        backend_args: Sequence[str] = (),
        log_level: str = "INFO",
        python: str = sys.executable,
        output: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
    ) -> None:
        self._router_url = router_url
        self._endpoint = endpoint
        self._env = dict(env)
        self._backend_args = list(backend_args)
        self._log_level = log_level
        self._python = python
        self._output = output
        self.workers: list[LocalWorker] = []

    async def start_worker(self, name: str) -> LocalWorker:
        worker = LocalWorker(name, backend_port=free_port(), worker_port=free_port())
        self.workers.append(worker)
        backend_url = f"http://127.0.0.1:{worker.backend_port}"
        await self._spawn(
            worker,
            "backend",
            ["backend", "--port", str(worker.backend_port), *self._backend_args],
        )
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
                "--worker-id", name,
                "--endpoint", self._endpoint,
            ],
        )  # fmt: skip
        return worker

    async def _spawn(self, worker: LocalWorker, role: str, args: list[str]) -> None:
        command = [self._python, "-m", "tgi_serverless", "--log-level", self._log_level, *args]
        process = await asyncio.create_subprocess_exec(
            *command,
            env=self._env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        log.debug("started %s %s (pid %d)", worker.name, role, process.pid)
        worker.processes.append(process)
        if process.stdout is not None:
            relay = self._relay_output(f"[{worker.name} {role}]", process.stdout)
            worker.relays.append(asyncio.create_task(relay))

    async def _relay_output(self, prefix: str, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self._output(f"{prefix} {line.decode('utf-8', errors='replace').rstrip()}")

    async def stop_all(self, grace_s: float = 15.0) -> None:
        """SIGTERM every child (PyWorkers first, so they report `stopped`), SIGKILL stragglers."""
        processes = [p for w in self.workers for p in reversed(w.processes)]
        for process in processes:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
        await _wait_or_kill(processes, grace_s)
        relays = [task for worker in self.workers for task in worker.relays]
        await asyncio.gather(*relays, return_exceptions=True)


async def _wait_or_kill(processes: Sequence[asyncio.subprocess.Process], grace_s: float) -> None:
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
