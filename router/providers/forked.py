"""The local provider's side of the fork server (`tgi_serverless.fork_server`): start it, ask it
for a child, and follow that child as `asyncio.subprocess.Process` follows one of its own.

`ForkServerClient.start` launches the fork server at once (it imports the backend's libraries
while nothing waits for it); `spawn` sends one request (`protocol.fork_server`) with the
child's standard input, a pipe for its output, and a status line, and returns a
`ForkedProcess` once the fork server has said the child's pid. The child is the fork server's,
not ours: its exit comes on its status line, and signals go through a pidfd, which names that
process and no later one with its pid. If the fork server cannot be started or has gone,
`spawn` raises `ForkServerGone` and the caller starts a new interpreter instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable, Mapping, Sequence

import pydantic

from protocol.fork_server import MAX_REQUEST_BYTES, Ready, Spawned, SpawnRequest, parse_status

__all__ = ["ForkServerClient", "ForkServerGone", "ForkedProcess"]

log = logging.getLogger(__name__)

MODULE = "tgi_serverless.fork_server"


class ForkServerGone(Exception):
    """The fork server is not running: it could not start, or it has exited."""


class ForkedProcess:
    """A child of the fork server, with the parts of `asyncio.subprocess.Process` the local
    provider uses: `pid`, `returncode`, `stdout`, `send_signal`, `terminate`, `kill`, `wait`."""

    def __init__(
        self, pid: int, status: asyncio.StreamReader, status_writer: asyncio.StreamWriter
    ) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.stdout: asyncio.StreamReader | None = None
        self._pidfd = _open_pidfd(pid)
        self._status_writer = status_writer
        self._exited = asyncio.Event()
        self._follower = asyncio.create_task(self._follow(status))

    async def _follow(self, status: asyncio.StreamReader) -> None:
        """Read the exit off the status line; if it ends without one, the fork server has
        gone (its children are sent SIGTERM as it goes): wait for ours to exit, exit code
        unknown (-SIGTERM)."""
        try:
            line = await status.readline()
            exited = parse_status(line) if line else None
        except (pydantic.ValidationError, ConnectionError):
            exited = None
        if exited is not None and not isinstance(exited, Spawned):
            self.returncode = exited.returncode
        else:
            await self._gone()
            self.returncode = -signal.SIGTERM
        self._status_writer.close()
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        self._exited.set()

    async def _gone(self) -> None:
        """Until this child has exited, known only by its pidfd (readable once it has)."""
        if self._pidfd is not None:
            await _ready(self._pidfd, write=False)

    def send_signal(self, signum: int) -> None:
        """Signal the child; nothing once it has exited (ProcessLookupError, as Process does)."""
        if self.returncode is not None or self._pidfd is None:
            raise ProcessLookupError(self.pid)
        signal.pidfd_send_signal(self._pidfd, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    async def wait(self) -> int:
        await self._exited.wait()
        assert self.returncode is not None
        return self.returncode


class ForkServerClient:
    """One fork server, started with `env`, and the requests sent to it."""

    def __init__(
        self,
        python: str,
        env: Mapping[str, str],
        *,
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        self._python = python
        self._env = dict(env)
        self._preexec_fn = preexec_fn
        self._control: socket.socket | None = None
        self.process: asyncio.subprocess.Process | None = None
        self.answer_timeout_s = 120.0
        """How long a request may wait for its child's pid: the imports (4 s on a quiet 2-core
        machine, 25 s on a loaded one) and the fork; past it the fork server is stopped."""

    async def start(self) -> asyncio.StreamReader | None:
        """Launch the fork server (it imports in the background); its output, to relay."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            self.process = await asyncio.create_subprocess_exec(
                self._python, "-m", MODULE, str(theirs.fileno()),
                env=self._env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
                preexec_fn=self._preexec_fn,
            )  # fmt: skip
        ours.setblocking(False)
        self._control = ours
        return self.process.stdout

    async def wait_ready(self) -> Ready:
        """Until the fork server's imports are done (ForkServerGone if it exits first)."""
        if self._control is None:
            raise ForkServerGone("the fork server is not running")
        while True:
            try:
                packet = self._control.recv(MAX_REQUEST_BYTES)
            except BlockingIOError:
                await _ready(self._control.fileno(), write=False)
                continue
            except OSError as exc:
                raise ForkServerGone(f"the fork server went while importing: {exc}") from exc
            if not packet:
                raise ForkServerGone("the fork server went while importing")
            return Ready.model_validate_json(packet)

    @property
    def running(self) -> bool:
        return self._control is not None and (
            self.process is not None and self.process.returncode is None
        )

    async def spawn(self, argv: Sequence[str]) -> ForkedProcess:
        """Fork `tgi-serverless ARGV...`; its output comes on the returned process's `stdout`."""
        if self._control is None or not self.running:
            raise ForkServerGone("the fork server is not running")
        request = SpawnRequest(argv=list(argv)).model_dump_json().encode()
        status_ours, status_theirs = socket.socketpair()
        output_read, output_write = os.pipe()
        devnull = os.open(os.devnull, os.O_RDONLY)
        try:
            fds = [devnull, output_write, status_theirs.fileno()]
            await _send_fds(self._control, request, fds)
        except OSError as exc:
            status_ours.close()
            os.close(output_read)
            raise ForkServerGone(f"the fork server took no request: {exc}") from exc
        finally:
            os.close(devnull)
            os.close(output_write)
            status_theirs.close()
        try:
            return await asyncio.wait_for(_spawned(status_ours, output_read), self.answer_timeout_s)
        except TimeoutError as exc:
            # Killed, not closed: our end stays open until `close`, so whatever waits on it
            # (`wait_ready`) sees the fork server go, never a descriptor closed under it.
            if self.process is not None and self.process.returncode is None:
                self.process.kill()
                await self.process.wait()
            raise ForkServerGone(
                f"the fork server did not fork within {self.answer_timeout_s:g} s; stopped it"
            ) from exc

    async def close(self) -> None:
        """Close our end: the fork server exits (its children, already stopped, with it)."""
        if self._control is not None:
            self._control.close()
            self._control = None
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.process.wait(), 5)
            if self.process.returncode is None:
                self.process.kill()
                await self.process.wait()


async def _send_fds(control: socket.socket, data: bytes, fds: Sequence[int]) -> None:
    """`socket.send_fds` on a non-blocking socket: wait while the fork server is busy (it reads
    its first request once its imports are done)."""
    while True:
        try:
            socket.send_fds(control, [data], list(fds))
            return
        except BlockingIOError:
            await _ready(control.fileno(), write=True)


async def _ready(fd: int, *, write: bool) -> None:
    """Until `fd` is writable (`write`) or readable."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    if write:
        loop.add_writer(fd, wake)
    else:
        loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        if write:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)


async def _spawned(status: socket.socket, output_read: int) -> ForkedProcess:
    """The `ForkedProcess` once the fork server says its pid (ForkServerGone if it does not);
    `status` and `output_read` are closed unless they end up in it."""
    loop = asyncio.get_running_loop()
    output = os.fdopen(output_read, "rb", buffering=0)
    writer: asyncio.StreamWriter | None = None
    try:
        reader, writer = await asyncio.open_unix_connection(sock=status)
        line = await reader.readline()
        spawned = parse_status(line) if line else None
        if not isinstance(spawned, Spawned):
            raise ForkServerGone("the fork server went before it forked")
        stdout = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdout), output)
    except BaseException as exc:  # cancelled (timed out) too: close what we hold, then raise
        output.close()
        if writer is not None:
            writer.close()
        else:
            status.close()
        if isinstance(exc, (OSError, pydantic.ValidationError)):
            raise ForkServerGone(f"the fork server did not fork: {exc}") from exc
        raise
    process = ForkedProcess(spawned.pid, reader, writer)
    process.stdout = stdout
    return process


def _open_pidfd(pid: int) -> int | None:
    """A pidfd for `pid`; None if it has exited already (its exit still comes on the status
    line)."""
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None
