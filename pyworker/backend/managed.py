"""A backend the worker starts itself (`--backend tgi|embedded`), and keeps running.

The backend runs as a child process whose output (stdout and stderr) is appended to the model
log, as Vast's templates do with `&>> $MODEL_LOG`; the worker's supervisor reads that log too.
It is watched through one start at a time (`pyworker.backend.restarts`):

- it exits: the worker reports `error` with the exit code and the log's last line, and starts
  it again after the back-off;
- it is still loading after the load timeout: `error` with the log's last line (TGI hung in
  "Warming up model", say); it is stopped and started again after the back-off.

The child is started in a session of its own (a terminal's Ctrl-C reaches only the worker,
which stops it in order) and dies with the worker even if the worker is killed outright (Linux
parent-death signal). Stopping: SIGTERM, then SIGKILL to its whole process group (TGI's shards
included) after the grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from pyworker.backend.launch import LaunchSpec
from pyworker.backend.model_log import last_message
from pyworker.backend.restarts import Backoff, LoadPhase, LoadWatchdog

__all__ = ["ManagedBackend"]

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: ask Linux to SIGTERM it when the worker dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class ManagedBackend:
    def __init__(
        self,
        spec: LaunchSpec,
        *,
        env: Mapping[str, str],
        log_path: str | os.PathLike[str],
        healthy: Callable[[], Awaitable[bool]],
        on_error: Callable[[str], None],
        load_timeout_s: float,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        poll_s: float = 1.0,
        stop_grace_s: float = 30.0,
    ) -> None:
        self._spec = spec
        self._env = dict(env)
        self._log_path = Path(log_path)
        self._healthy = healthy
        self._on_error = on_error
        self._load_timeout_s = load_timeout_s
        self._backoff = backoff or Backoff()
        self._clock = clock
        self._sleep = sleep
        self._poll_s = poll_s
        self._stop_grace_s = stop_grace_s
        self._process: asyncio.subprocess.Process | None = None
        self.starts = 0

    @property
    def pid(self) -> int | None:
        """The running backend's process id (None between starts)."""
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    async def run(self) -> None:
        """Start the backend and start it again whenever it fails, until cancelled (which
        stops it)."""
        try:
            while True:
                problem = await self._run_once()
                delay = self._backoff.next_delay(self._clock())
                message = f"{problem}; restarting in {delay:.0f}s"
                log.error("backend: %s", message)
                self._on_error(message)
                await self._sleep(delay)
        finally:
            await self.stop()

    async def _run_once(self) -> str:
        """Start the backend once and watch it; return what went wrong when it is gone."""
        try:
            process = await self._spawn()
        except OSError as exc:
            return f"cannot start {self._spec.argv[0]}: {exc.strerror or exc}"
        watchdog = LoadWatchdog(self._clock(), self._load_timeout_s)
        self._backoff.started(self._clock())
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_s):
                    await process.wait()
            if process.returncode is not None:
                self._process = None
                return f"backend exited with code {process.returncode}{await self._last_line()}"
            if watchdog.phase is LoadPhase.LOADING and await self._healthy():
                watchdog.loaded()
                self._backoff.served()
                log.info("backend loaded and healthy on %s", self._spec.url)
            if watchdog.check(self._clock()) is LoadPhase.HUNG:
                reason = await self._last_line()
                await self.stop()
                return f"backend did not load within {self._load_timeout_s:.0f}s{reason}"

    async def _spawn(self) -> asyncio.subprocess.Process:
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._log_path.open("ab") as output:
            process = await asyncio.create_subprocess_exec(
                *self._spec.argv,
                env=self._env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        self._process = process
        self.starts += 1
        log.info(
            "started the backend (pid %d): %s; its log: %s",
            process.pid,
            " ".join(self._spec.argv),
            self._log_path,
        )
        return process

    async def _last_line(self) -> str:
        message = await asyncio.to_thread(last_message, self._log_path)
        return f" (last log line: {message})" if message else ""

    async def stop(self) -> None:
        """SIGTERM the backend; SIGKILL its process group if it outlives the grace period."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            async with asyncio.timeout(self._stop_grace_s):
                await process.wait()
        except TimeoutError:
            log.warning("backend pid %d ignored SIGTERM for %.0fs; killing it", process.pid,
                        self._stop_grace_s)  # fmt: skip
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # its shards too, whatever they did
        await process.wait()
