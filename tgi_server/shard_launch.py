"""Starting the shard process, kept light: this module imports neither torch nor transformers.

`tgi-serverless backend` calls `start_shard` first thing, so the shard imports and loads the
model while the HTTP server imports its own libraries and loads the tokenizer: the two starts
overlap instead of adding up. `PendingShard.wait_until_ready` then blocks until the model is
loaded. The shard fits the token limits to the model's context itself, exactly as the HTTP
server does from the model's config (`loading.fit_to_context`), so both hold the same limits.
"""

from __future__ import annotations

import logging
import multiprocessing
import socket
import sys
from dataclasses import dataclass
from typing import Protocol

from tgi_server.settings import BackendSettings
from tgi_server.shard_wire import FrameReader

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
    """What the engine does with the shard's process (`multiprocessing.Process` has it)."""

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

    process: multiprocessing.process.BaseProcess
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
    """Spawn a shard for `settings`, logging as this process does; it starts loading the model
    at once."""
    ours, theirs = socket.socketpair()
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked threads
    logs = LogSetup.of_this_process()
    process = context.Process(
        target=_run_shard, args=(theirs, settings, logs), name="tgis-shard", daemon=True
    )
    process.start()
    theirs.close()
    return PendingShard(process, ours)


def launch_shard(settings: BackendSettings) -> ShardProcess:
    """Start a shard for `settings` and wait (blocking) until its model is loaded."""
    return start_shard(settings).wait_until_ready()


def _run_shard(sock: socket.socket, settings: BackendSettings, logs: LogSetup) -> None:
    """The shard process's entry point (it imports the heavy modules, not the launcher)."""
    logs.apply()
    from tgi_server.shard import run_shard

    run_shard(sock, settings)


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
