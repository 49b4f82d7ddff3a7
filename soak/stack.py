"""The stack under soak, started as a user starts it: `tgi-serverless up --workers N` in a
process of its own (and its own session), its output in a log file, stopped with SIGTERM
(`up` stops its workers), killed if it outlives the grace period."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

__all__ = ["BANNER", "Stack", "StackError"]

BANNER = "tgi-serverless is up"
"""What `up` prints once every worker is ready."""


class StackError(Exception):
    """The stack did not come up; the message says why and where its log is."""


class Stack:
    """`up` with `workers` workers on a free loopback port, state and log under `directory`,
    `env` its whole environment (the keys included: `TGIS_API_KEY` and `TGIS_ADMIN_KEY`)."""

    def __init__(self, workers: int, directory: Path, env: Mapping[str, str]) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = directory / "up.log"
        args = ["--port", str(self.port), "--workers", str(workers), "--max-workers", str(workers)]
        args += ["--state-dir", str(directory / "state")]
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tgi_serverless", "up", *args],
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, limit_s: float) -> None:
        """Return once `up` printed its banner; StackError if it exits or `limit_s` passes."""
        deadline = time.monotonic() + limit_s
        while BANNER not in self.log_path.read_text(errors="replace"):
            if self.process.poll() is not None:
                raise StackError(f"`up` exited with {self.process.returncode}; see {self.log_path}")
            if time.monotonic() > deadline:
                raise StackError(f"`up` not ready after {limit_s:.0f} s; see {self.log_path}")
            time.sleep(0.5)

    def stop(self, grace_s: float = 60.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self._log.close()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
