"""Starting the shard process, kept light: this module imports neither torch nor transformers.

`tgi-serverless backend` calls `start_shard` first thing, so the shard imports and loads the
model while the HTTP server imports its own libraries and loads the tokenizer: the two starts
overlap instead of adding up. The shard is `python -m tgi_server.engine.shard FD`, a plain
child process given one end of a socket pair; its first message is the settings and how to log.
`PendingShard.wait_until_ready` then blocks until the model is loaded. The shard fits the token
limits to the model's context itself, exactly as the HTTP server does from the model's config
(`model.loading.fit_to_context`), so both hold the same limits.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import subprocess
import sys
from dataclasses import dataclass
from typing import Protocol

from tgi_server.engine.shard.wire import FrameReader, frame
from tgi_server.settings import BackendSettings

__all__ = [
    "STOP_TIMEOUT_S",
    "ChildProcess",
    "LogSetup",
    "PendingShard",
    "ShardFailedError",
    "ShardProcess",
    "launch_shard",
    "start_shard",
]

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


def start_shard(settings: BackendSettings) -> PendingShard:
    """Start a shard for `settings`, logging as this process does; it starts loading the model
    at once."""
    ours, theirs = socket.socketpair()
    command = [sys.executable, "-m", "tgi_server.engine.shard", str(theirs.fileno())]
    process = subprocess.Popen(command, pass_fds=(theirs.fileno(),))
    theirs.close()
    ours.sendall(frame(("start", settings, LogSetup.of_this_process())))
    return PendingShard(_Subprocess(process), ours)


def launch_shard(settings: BackendSettings) -> ShardProcess:
    """Start a shard for `settings` and wait (blocking) until its model is loaded."""
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
