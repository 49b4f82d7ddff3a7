"""The local provider parks and resumes a worker by signalling its PyWorker, keeping both of its
processes; real child processes, of a stand-in program that writes down the signals it gets."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from router.providers.base import ProviderState
from router.providers.local import LocalProvider, LocalWorker

STAND_IN = """#!{python}
import os, signal, sys, time
if "tgi_serverless.fork_server" in sys.argv:
    sys.exit(3)  # a fork server that cannot start (its imports failed)
log = open(os.path.join({folder!r}, str(os.getpid())), "a", buffering=1)
log.write(" ".join(sys.argv[1:]) + "\\n")
for signum in (signal.SIGUSR1, signal.SIGUSR2):
    signal.signal(signum, lambda s, f: log.write(signal.Signals(s).name + "\\n"))
signal.signal(signal.SIGTERM, lambda s, f: sys.exit(0))
while True:
    time.sleep(0.02)
"""


@pytest.fixture
async def provider(tmp_path: Path) -> AsyncIterator[LocalProvider]:
    local = stand_in_provider(tmp_path, fork_server=False)  # the stand-in is the backend too
    yield local
    await local.stop_all(grace_s=5)


def stand_in_provider(tmp_path: Path, *, fork_server: bool) -> LocalProvider:
    program = tmp_path / "stand-in-python"
    program.write_text(STAND_IN.format(python=sys.executable, folder=str(tmp_path)))
    program.chmod(0o755)

    async def join_token(name: str) -> str:
        return f"token-{name}"

    local = LocalProvider(
        router_url="http://127.0.0.1:1",
        endpoint="default",
        env=dict(os.environ),
        join_token=join_token,
        python=str(program),
        output=lambda line: None,
        fork_server=fork_server,
    )
    return local


def lines_of(tmp_path: Path, pid: int) -> list[str]:
    path = tmp_path / str(pid)
    return path.read_text().splitlines() if path.exists() else []


async def until(condition: Callable[[], bool], limit_s: float = 30.0) -> None:
    async with asyncio.timeout(limit_s):
        while not condition():
            await asyncio.sleep(0.02)


def state_of(worker: LocalWorker) -> ProviderState:
    return worker.state


def pyworker_pid(worker: LocalWorker) -> int:
    return worker.processes[-1].pid


async def test_parking_signals_the_pyworker_and_keeps_both_processes(
    provider: LocalProvider, tmp_path: Path
) -> None:
    worker = await provider.start_worker("worker-1")
    pid = pyworker_pid(worker)
    await until(lambda: len(lines_of(tmp_path, pid)) == 1)
    assert " worker " in f" {lines_of(tmp_path, pid)[0]} "
    await provider.stop_to_cold("worker-1")
    await until(lambda: lines_of(tmp_path, pid)[1:] == ["SIGUSR1"])
    assert state_of(worker) is ProviderState.STOPPED
    assert len(worker.processes) == 2
    assert worker.exited() == []
    await provider.resume("worker-1")
    await until(lambda: lines_of(tmp_path, pid)[1:] == ["SIGUSR1", "SIGUSR2"])
    assert state_of(worker) is ProviderState.RUNNING
    assert pyworker_pid(worker) == pid  # the same process: nothing to start, load or measure


async def test_a_pyworker_gone_while_parked_is_started_again_on_resume(
    provider: LocalProvider, tmp_path: Path
) -> None:
    worker = await provider.start_worker("worker-1")
    await provider.stop_to_cold("worker-1")
    gone = worker.processes[-1]
    os.kill(gone.pid, signal.SIGKILL)
    await gone.wait()
    await provider.resume("worker-1")
    assert len(worker.processes) == 2
    assert pyworker_pid(worker) != gone.pid
    await until(lambda: len(lines_of(tmp_path, pyworker_pid(worker))) == 1)
    assert state_of(worker) is ProviderState.RUNNING


async def test_backends_start_as_new_interpreters_when_the_fork_server_fails(
    tmp_path: Path,
) -> None:
    local = stand_in_provider(tmp_path, fork_server=True)
    try:
        assert not await local.prepared()  # it exited (status 3) instead of saying ready
        worker = await local.start_worker("worker-1")
        backend, pyworker = (process.pid for process in worker.processes)
        await until(lambda: len(lines_of(tmp_path, backend)) == 1)
        assert lines_of(tmp_path, backend)[0].startswith(
            "-m tgi_serverless --log-level INFO backend"
        )
        await until(lambda: len(lines_of(tmp_path, pyworker)) == 1)
        assert state_of(worker) is ProviderState.RUNNING
    finally:
        await local.stop_all(grace_s=5)
