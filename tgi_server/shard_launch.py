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
from dataclasses import dataclass
from typing import Protocol

from tgi_server.settings import BackendSettings
from tgi_server.shard_wire import FrameReader

__all__ = [
    "STOP_TIMEOUT_S",
    "ChildProcess",
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


def start_shard(settings: BackendSettings, *, log_level: int = logging.INFO) -> PendingShard:
    """Spawn a shard for `settings`; it starts loading the model at once."""
    ours, theirs = socket.socketpair()
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked threads
    process = context.Process(
        target=_run_shard, args=(theirs, settings, log_level), name="tgis-shard", daemon=True
    )
    process.start()
    theirs.close()
    return PendingShard(process, ours)


def launch_shard(settings: BackendSettings, *, log_level: int = logging.INFO) -> ShardProcess:
    """Start a shard for `settings` and wait (blocking) until its model is loaded."""
    return start_shard(settings, log_level=log_level).wait_until_ready()


def _run_shard(sock: socket.socket, settings: BackendSettings, log_level: int) -> None:
    """The shard process's entry point (it imports the heavy modules, not the launcher)."""
    from tgi_server.shard import run_shard

    run_shard(sock, settings, log_level)


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
