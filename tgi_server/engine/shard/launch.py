"""Starting the shard process, kept light: this module imports neither torch nor transformers.

`tgi-serverless backend` calls `start_shard` first thing. The shard is forked from the HTTP
server's process once that has imported what the shard runs on (torch, transformers and our
model code: about 4 s of CPU), so those are imported once per backend, not once in each
process; the shard then loads the model while the HTTP server imports the rest of its own
libraries and loads the tokenizer, so the two starts overlap instead of adding up. Where this
process has already asked CUDA something (`--quantize` bitsandbytes checks for a GPU:
`launch_flags.asks_the_device`), a forked child could not use CUDA, so the shard starts as
`python -m tgi_server.engine.shard FD` instead and imports them itself, as it does for any
other caller (tests embed shards in processes that are not safe to fork). Either way it is given
one end of a socket pair. `PendingShard.wait_until_ready` then blocks until the model is
loaded. The shard fits the token limits to the model's context itself, exactly as the HTTP
server does from the model's config (`model.loading.fit_to_context`), so both hold the same
limits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Protocol

from tgi_server.engine.shard.wire import FrameReader, frame
from tgi_server.settings import BackendSettings

__all__ = [
    "SHARD_PROCESS_NAME",
    "STOP_TIMEOUT_S",
    "ChildProcess",
    "LogSetup",
    "PendingShard",
    "ShardFailedError",
    "ShardProcess",
    "launch_shard",
    "start_shard",
]

log = logging.getLogger(__name__)

SHARD_PROCESS_NAME = "tgis-shard"
"""The shard's name among processes (`ps`, `top`, /proc/PID/comm): its command line is the
HTTP server's when forked from it."""
STOP_TIMEOUT_S = 30.0
"""How long a stopping shard may take to finish before it is killed."""


class ShardFailedError(Exception):
    """The shard could not load the model, or exited before it had."""


class ChildProcess(Protocol):
    """What the engine does with the shard's process."""

    @property
    def pid(self) -> int: ...

    def join(self, timeout: float | None = None) -> None: ...

    def is_alive(self) -> bool: ...

    def kill(self) -> None: ...


@dataclass(frozen=True)
class LogSetup:
    """How this process logs, for the shard to log the same way (same lines, same stream)."""

    level: int
    formatter: logging.Formatter | None
    to_stdout: bool

    @classmethod
    def of_this_process(cls) -> LogSetup:
        root = logging.getLogger()
        handler = next((h for h in root.handlers if isinstance(h, logging.StreamHandler)), None)
        formatter = handler.formatter if handler is not None else None
        to_stdout = handler is not None and handler.stream is sys.stdout
        return cls(root.getEffectiveLevel(), formatter, to_stdout)

    def apply(self) -> None:
        """Log as described, in this (the shard's) process."""
        handler = logging.StreamHandler(sys.stdout if self.to_stdout else sys.stderr)
        if self.formatter is not None:
            handler.setFormatter(self.formatter)
        root = logging.getLogger()
        for existing in list(root.handlers):
            root.removeHandler(existing)
        root.addHandler(handler)
        root.setLevel(self.level)


@dataclass
class ShardProcess:
    """A started shard that has loaded its model."""

    process: ChildProcess
    socket: socket.socket
    device_type: str
    device_name: str | None


@dataclass
class PendingShard:
    """A shard that is still loading its model."""

    process: ChildProcess
    socket: socket.socket

    def wait_until_ready(self) -> ShardProcess:
        """Block until the model is loaded; ShardFailedError (the shard's reason) if it
        cannot be."""
        try:
            device_type, device_name = _wait_for_ready(self.socket)
        except ShardFailedError:
            self.abandon()
            raise
        return ShardProcess(self.process, self.socket, device_type, device_name)

    def abandon(self) -> None:
        """Stop the shard at once: the HTTP server will not start."""
        self.socket.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join()


def start_shard(settings: BackendSettings, *, fork: bool = False) -> PendingShard:
    """Start a shard for `settings`, logging as this process does; it starts loading the model
    at once. With `fork`, forked from this process once it has imported what the shard needs;
    else a new interpreter, which imports them itself.

    Fork only from a process that has no other thread, has run no torch operation and has
    asked CUDA nothing, as the backend's process is at its start: a lock another thread held,
    OpenMP's thread pool and CUDA do not survive a fork (a shard forked from a test process
    that had run models hung while loading its own)."""
    ours, theirs = socket.socketpair()
    logs = LogSetup.of_this_process()
    if fork:
        process: ChildProcess = _fork_shard(ours, theirs, settings, logs)
    else:
        command = [sys.executable, "-m", "tgi_server.engine.shard", str(theirs.fileno())]
        process = _Subprocess(subprocess.Popen(command, pass_fds=(theirs.fileno(),)))
        ours.sendall(frame(("start", settings, logs)))
    theirs.close()
    return PendingShard(process, ours)


def _fork_shard(
    ours: socket.socket, theirs: socket.socket, settings: BackendSettings, logs: LogSetup
) -> ChildProcess:
    """Fork the shard: it serves on `theirs` and never returns into the caller's code."""
    import tgi_server.engine.shard.process
    import tgi_server.model.loading  # torch, transformers, our model code: imported once

    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the shard
        status = 1
        try:
            ours.close()  # else the HTTP server's end never closes, and we never notice it go
            logs.apply()
            status = 0 if tgi_server.engine.shard.process.run_shard(theirs, settings) else 1
        except Exception:  # logged; then exit, whatever happened
            log.exception("the model server failed")
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
    return _ForkedProcess(pid)


def launch_shard(settings: BackendSettings) -> ShardProcess:
    """Start a shard for `settings` in a new interpreter and wait (blocking) until its model
    is loaded."""
    return start_shard(settings).wait_until_ready()


class _Subprocess:
    """A `subprocess.Popen` as a `ChildProcess`."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process

    @property
    def pid(self) -> int:
        return self._process.pid

    def join(self, timeout: float | None = None) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):  # then `is_alive` says so
            self._process.wait(timeout)

    def is_alive(self) -> bool:
        return self._process.poll() is None

    def kill(self) -> None:
        self._process.kill()


class _ForkedProcess:
    """A child forked from this process, as a `ChildProcess`."""

    POLL_S = 0.01

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self._exited = False

    @property
    def pid(self) -> int:
        return self._pid

    def join(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_alive() and (deadline is None or time.monotonic() < deadline):
            time.sleep(self.POLL_S)

    def is_alive(self) -> bool:
        if not self._exited:
            try:
                pid, _ = os.waitpid(self._pid, os.WNOHANG)
            except ChildProcessError:  # reaped already
                pid = self._pid
            self._exited = pid == self._pid
        return not self._exited

    def kill(self) -> None:
        if self.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)


def _wait_for_ready(sock: socket.socket) -> tuple[str, str | None]:
    reader = FrameReader()
    while True:
        data = sock.recv(1 << 16)
        if not data:
            raise ShardFailedError("the model server exited while loading the model")
        for message in reader.feed(data):
            if message[0] == "ready":
                return str(message[1]), message[2]
            if message[0] == "failed":
                raise ShardFailedError(str(message[1]))
