"""Real processes for end-to-end tests: started with `python -m tgi_serverless`, logged to
files, awaited over HTTP with bounded loops, and always stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


class ManagedProcess:
    def __init__(
        self,
        name: str,
        args: Sequence[str],
        env: Mapping[str, str],
        log_dir: Path,
        *,
        module: str = "tgi_serverless",
        cwd: Path = REPO_ROOT,
    ):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            env={**os.environ, **env},
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait(self, limit_s: float) -> int:
        """Wait for the process to exit by itself; its return code."""
        try:
            return self.popen.wait(limit_s)
        finally:
            self.stop()

    def stop(self, sig: int = signal.SIGTERM, grace_s: float = 20.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        if not self._log.closed:
            self._log.close()
        return self.popen.returncode


@contextmanager
def running(
    name: str,
    args: Sequence[str],
    env: Mapping[str, str],
    log_dir: Path,
    *,
    module: str = "tgi_serverless",
    cwd: Path = REPO_ROOT,
) -> Iterator[ManagedProcess]:
    process = ManagedProcess(name, args, env, log_dir, module=module, cwd=cwd)
    try:
        yield process
    finally:
        process.stop()


def get_json(url: str, timeout_s: float = 2.0) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def wait_for(
    what: str,
    condition: Callable[[], bool],
    processes: Sequence[ManagedProcess],
    limit_s: float = 120.0,
) -> None:
    """Poll `condition` until it holds; fail with the logs if a process dies or time runs out."""
    deadline = time.monotonic() + limit_s
    while True:
        try:
            if condition():
                return
        except (OSError, ValueError):
            pass
        dead = [p for p in processes if p.popen.poll() is not None]
        if dead or time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.name} ---\n{p.output()[-3000:]}" for p in processes)
            reason = f"{dead[0].name} exited" if dead else "timed out"
            raise AssertionError(f"waiting for {what}: {reason}\n{logs}")
        time.sleep(0.2)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"))


def children_of(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children
