"""Real processes for end-to-end tests: started with `python -m tgi_serverless`, logged to
files, awaited over HTTP with bounded loops, and always stopped. Every secret a process is given
and everything it writes are reported to `tests.e2e.leaks`, which the session checks at its end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.e2e.leaks import WATCH
from tests.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
ADMIN_KEY = "e2e-admin-key"
"""The routers' admin key in the e2e suite: /status, /ui and the autoscaler want it."""
ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


class ManagedProcess:
    """`python -m module *args` (or `program *args`: a script) in its own session, its output in
    `log_dir/name.log`; as a context manager, stopped on exit. `foreign`: a program not ours
    (Vast's PyWorker), whose output the leak check does not read (its secrets are still
    remembered)."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        env: Mapping[str, str],
        log_dir: Path,
        *,
        module: str = "tgi_serverless",
        cwd: Path = REPO_ROOT,
        foreign: bool = False,
        program: Sequence[str] = (),
    ):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        watch_name = WATCH.process(name, args, env)
        if not foreign:
            WATCH.log_file(watch_name, self.log_path)
        self.popen = subprocess.Popen(
            [*(program or (sys.executable, "-m", module)), *args],
            env={**os.environ, **env},
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def __enter__(self) -> ManagedProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

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


def run_command(
    args: Sequence[str],
    env: Mapping[str, str] | None = None,
    *,
    inherit_environment: bool = True,
    timeout_s: float = 120.0,
) -> subprocess.CompletedProcess[str]:
    """`python -m tgi_serverless *args` to its end, with `env` over this process's environment
    (or `env` alone, without `inherit_environment`), its output captured and watched for
    secrets."""
    env = dict(env or {})
    name = WATCH.process(args[0] if args else "tgi-serverless", args, env)
    done = subprocess.run(
        [sys.executable, "-m", "tgi_serverless", *args],
        env={**os.environ, **env} if inherit_environment else env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    WATCH.output(name, done.stdout + done.stderr)
    return done


def router_args(port: int, api_key: str, state_dir: Path, *extra: str) -> list[str]:
    """The arguments of `tgi-serverless router` on `port`, for the endpoint key `api_key`, its
    state in `state_dir`, with `extra` options."""
    return [
        "router",
        "--port", str(port),
        "--api-key", api_key,
        "--state-dir", str(state_dir),
        *extra,
    ]  # fmt: skip


def worker_args(port: int, backend_url: str, router_url: str, worker_id: str) -> list[str]:
    """The arguments of `tgi-serverless worker` on 127.0.0.1:`port` (its public URL too), in
    front of `backend_url`, reporting to `router_url` as `worker_id`."""
    return [
        "worker",
        "--port", str(port),
        "--host", "127.0.0.1",
        "--backend-url", backend_url,
        "--router", router_url,
        "--public-url", f"http://127.0.0.1:{port}",
        "--worker-id", worker_id,
    ]  # fmt: skip


def cli_join_token(
    router_url: str, admin_key: str, endpoint: str = "default", worker_id: str | None = None
) -> str:
    """A join token from `tgi-serverless endpoints join-token`, as an operator gets one (bound to
    `worker_id` when given: a restarted worker of that id may then take its place)."""
    command = [sys.executable, "-m", "tgi_serverless", "endpoints", "--router", router_url]
    command += ["--admin-key", admin_key, "join-token", endpoint]
    command += ["--worker-id", worker_id] if worker_id else []
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip()


def get_json(
    url: str, timeout_s: float = 2.0, headers: Mapping[str, str] | None = None
) -> tuple[int, Any]:
    """GET `url`; the status and the answer decoded from JSON, an HTTP error's included."""
    status, answer = _fetch(urllib.request.Request(url, headers=dict(headers or {})), timeout_s)
    return status, json.loads(answer or b"null")


def router_status(router_url: str) -> tuple[int, Any]:
    """GET the router's /status with the suite's admin key."""
    return get_json(f"{router_url}/status", headers=ADMIN_AUTH)


def post(
    url: str, body: Any, headers: Mapping[str, str] | None = None, timeout_s: float = 60.0
) -> tuple[int, bytes]:
    """POST `body` as JSON; the status and the raw answer, an HTTP error's included."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    return _fetch(request, timeout_s)


def post_json(url: str, body: Any, headers: Mapping[str, str] | None = None) -> tuple[int, Any]:
    """`post`, its answer decoded from JSON."""
    status, answer = post(url, body, headers)
    return status, json.loads(answer or b"null")


def _fetch(request: str | urllib.request.Request, timeout_s: float) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


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


def wait_gone(pids: Sequence[int], limit_s: float) -> list[int]:
    """Wait up to `limit_s` for every process in `pids` to end; those still alive."""
    deadline = time.monotonic() + limit_s
    while (alive := [pid for pid in pids if pid_alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive


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


def command_words(pid: int) -> list[str]:
    """Process `pid`'s command line as words: its arguments, or the one title a process forked
    by `up`'s fork server shows (`tgi-serverless --log-level INFO backend --port N`); [] once
    it has gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return []
    return raw.replace("\0", " ").split()


def worker_processes(up_pid: int) -> dict[int, list[str]]:
    """`up`'s workers' processes, backends and PyWorkers, with their command lines: its
    children, and those of its fork server (the backends it forked); not their shards."""
    found = {}
    for child in children_of(up_pid):
        words = command_words(child)
        if "tgi_serverless.fork_server" in words:
            found.update({pid: command_words(pid) for pid in children_of(child)})
        else:
            found[child] = words
    return found


def descendants(pid: int) -> list[int]:
    """Every process below `pid`: its children, theirs, and so on."""
    found, frontier = [], [pid]
    while frontier:
        children = children_of(frontier.pop())
        found.extend(children)
        frontier.extend(children)
    return found


def start_up(
    tmp_path: Path,
    cache_dir: Path,
    workers: int,
    *extra: str,
    api_key: str,
    env: dict[str, str] | None = None,
) -> tuple[ManagedProcess, str]:
    """`tgi-serverless up` with `workers` workers and `extra` options on a free port, its state
    and log under `tmp_path`, the API key `api_key` by flag and the suite's admin key by
    variable (plus `env`, which its workers inherit), once it prints its banner; the process and
    the router's URL. Stopped if the banner never comes."""
    port = free_port()
    args = [
        "up",
        "--port", str(port),
        "--workers", str(workers),
        "--api-key", api_key,
        "--state-dir", str(tmp_path / "state"),
        *extra,
    ]  # fmt: skip
    variables = {"TGIS_CACHE_DIR": str(cache_dir), "TGIS_ADMIN_KEY": ADMIN_KEY, **(env or {})}
    up = ManagedProcess("up", args, variables, tmp_path)
    try:
        wait_for("the up banner", lambda: "tgi-serverless is up" in up.output(), [up], limit_s=180)
    except BaseException:
        up.stop()
        raise
    return up, f"http://127.0.0.1:{port}"
