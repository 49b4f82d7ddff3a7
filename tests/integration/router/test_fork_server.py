"""The fork server, real: started as `up` starts it (it imports torch and the backend once), asked
for children over its socket, its children followed from the provider's side: output, exit
codes, signals, sessions, and what happens when the fork server itself dies."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from protocol.fork_server import MAX_REQUEST_BYTES, Exited, Ready, Spawned, parse_status
from router.providers.forked import ForkedProcess, ForkServerClient, ForkServerGone
from router.providers.local import free_port
from tests.e2e.processes import pid_alive


@pytest.fixture
async def fork_server(tgis_cache_dir: Path) -> AsyncIterator[ForkServerClient]:
    client = ForkServerClient(sys.executable, {**os.environ, "TGIS_CACHE_DIR": str(tgis_cache_dir)})
    await client.start()
    yield client
    await client.close()


async def output_of(process: ForkedProcess) -> str:
    assert process.stdout is not None
    return (await asyncio.wait_for(process.stdout.read(), 60)).decode()


async def test_a_child_runs_the_command_and_its_exit_code_comes_back(
    fork_server: ForkServerClient,
) -> None:
    version = await fork_server.spawn(["--version"])
    assert "tgi-serverless" in await output_of(version)
    assert await asyncio.wait_for(version.wait(), 30) == 0
    refused = await fork_server.spawn(["backend", "--port", "not-a-port"])
    assert "invalid int value" in await output_of(refused)
    assert await asyncio.wait_for(refused.wait(), 30) == 2  # argparse's, as a new interpreter's
    assert fork_server.running


async def test_a_child_is_a_session_of_its_own_and_takes_signals(
    fork_server: ForkServerClient, tmp_path: Path
) -> None:
    router = await fork_server.spawn(router_argv(tmp_path, "a"))
    assert await until_listening(router)
    assert os.getsid(router.pid) == router.pid  # a Ctrl-C in up's terminal does not reach it
    router.terminate()  # the router stops cleanly on SIGTERM
    assert await asyncio.wait_for(router.wait(), 30) == 0
    await output_of(router)  # to its end: the pipe closes
    with pytest.raises(ProcessLookupError):
        router.kill()  # gone: no signal reaches a later process with its pid
    killed = await fork_server.spawn(router_argv(tmp_path, "b"))
    assert await until_listening(killed)
    killed.kill()
    assert await asyncio.wait_for(killed.wait(), 30) == -signal.SIGKILL
    await output_of(killed)


async def test_children_go_with_a_fork_server_that_dies(
    fork_server: ForkServerClient, tmp_path: Path
) -> None:
    router = await fork_server.spawn(router_argv(tmp_path, "c"))
    assert await until_listening(router)
    assert fork_server.process is not None
    fork_server.process.kill()
    # Its children get SIGTERM (parent-death signal) and stop; their exit codes are lost with
    # the fork server, which reaped them: wait() reads -SIGTERM once the pidfd says it is gone.
    assert await asyncio.wait_for(router.wait(), 30) == -signal.SIGTERM
    assert not pid_alive(router.pid)
    await output_of(router)
    await asyncio.wait_for(fork_server.process.wait(), 10)
    with pytest.raises(ForkServerGone):
        await fork_server.spawn(["--version"])


def router_argv(tmp_path: Path, name: str) -> list[str]:
    return [
        "router", "--host", "127.0.0.1", "--port", str(free_port()),
        "--state-dir", str(tmp_path / name), "--api-key", "k", "--admin-key", "a",
    ]  # fmt: skip


async def until_listening(process: ForkedProcess) -> bool:
    """Whether the forked router says it is listening within a minute."""
    assert process.stdout is not None
    async with asyncio.timeout(60):
        while line := await process.stdout.readline():
            if b"router_started" in line:
                return True
    return False


def test_malformed_requests_leave_the_fork_server_serving(tgis_cache_dir: Path) -> None:
    """Packets that are not requests (no descriptors, the wrong number, not JSON, a field
    more) are logged and dropped; the next request is served."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server = subprocess.Popen(
        [sys.executable, "-m", "tgi_serverless.fork_server", str(theirs.fileno())],
        pass_fds=(theirs.fileno(),),
        stderr=subprocess.PIPE,
    )
    theirs.close()
    try:
        ours.settimeout(120)
        assert Ready.model_validate_json(ours.recv(MAX_REQUEST_BYTES)).preload_s > 0
        with open(os.devnull, "rb") as devnull:
            fd = devnull.fileno()
            ours.send(b'{"argv": ["--version"]}')  # no descriptors
            socket.send_fds(ours, [b'{"argv": ["--version"]}'], [fd])
            for packet in (b"not json", b'{"argv": ["--version"], "env": {}}'):
                status, status_theirs = socket.socketpair()
                with status, status_theirs:
                    socket.send_fds(ours, [packet], [fd, fd, status_theirs.fileno()])
                    status_theirs.close()
                    status.settimeout(30)
                    assert status.recv(100) == b""  # closed without a word
            status, status_theirs = socket.socketpair()
            with status, status_theirs:
                socket.send_fds(
                    ours, [b'{"argv": ["--version"]}'], [fd, fd, status_theirs.fileno()]
                )
                status_theirs.close()
                status.settimeout(30)
                with status.makefile("rb") as reader:
                    lines = reader.read().splitlines()
        assert isinstance(parse_status(lines[0]), Spawned)
        assert parse_status(lines[1]) == Exited(returncode=0)
    finally:
        ours.close()  # the provider's end closes: the fork server exits
        assert server.wait(timeout=30) == 0
    assert server.stderr is not None
    with server.stderr:
        errors = server.stderr.read().decode()
    assert "a request came with 0 descriptors" in errors
    assert "a request came with 1 descriptors" in errors
    assert errors.count("a request is not valid") == 2


async def test_a_fork_server_that_never_answers_is_killed_and_waiters_told(
    tmp_path: Path,
) -> None:
    """A hung fork server (here: a program that reads nothing) is killed after
    `answer_timeout_s`; whoever waits for its `Ready` hears that it has gone."""
    hung = tmp_path / "hung-python"
    hung.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(600)\n")
    hung.chmod(0o755)
    client = ForkServerClient(str(hung), dict(os.environ))
    await client.start()
    client.answer_timeout_s = 0.5
    ready = asyncio.create_task(client.wait_ready())
    try:
        with pytest.raises(ForkServerGone, match=r"did not fork within 0\.5 s"):
            await asyncio.wait_for(client.spawn(["--version"]), 30)
        assert not client.running
        with pytest.raises(ForkServerGone):
            await asyncio.wait_for(ready, 30)
    finally:
        ready.cancel()
        await client.close()
