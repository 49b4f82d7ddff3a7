"""A fork server for backends: one process imports the backend's libraries once, and each
backend `up` starts is forked from it, so a worker starting from nothing skips the imports.

    python -m tgi_serverless.fork_server FD

`FD` is this process's end of a `SOCK_SEQPACKET` socket pair (`protocol.fork_server` has the
wire). `up`'s local provider starts it with the backends' environment (what torch and
transformers read as they are imported) as soon as `up` starts; it imports torch, transformers
and our backend (about 4 s of CPU, the bulk of a backend's start), then answers requests: each
is forked into a child that runs `tgi-serverless ARGV...` exactly as a new interpreter would,
with the standard input and output the request passed, in a session of its own, and dies with
this process (Linux parent-death signal), which dies with `up`.

The parent runs no torch operation and starts no thread, so a child starts as clean as a new
interpreter (the backend then forks its shard from itself the same way: `start_shard`). A child
shows its command line in `ps` (`setproctitle`). This process reaps its children and reports
each exit on the child's own status line. It exits when the provider's end closes.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import os
import selectors
import signal
import socket
import sys
import time
import traceback
from collections.abc import Sequence

import pydantic
import setproctitle

from protocol.fork_server import (
    MAX_REQUEST_BYTES,
    PASSED_FDS,
    Exited,
    Ready,
    Spawned,
    SpawnRequest,
    encode_status,
)

__all__ = ["PRELOADED", "ForkServer", "main", "preload"]

PRELOADED = (
    "tgi_serverless.cli",
    "tgi_server.command",
    "tgi_server.server",
    "tgi_server.model.loading",
    "tgi_server.engine.shard.process",
    "tgi_server.engine.shard.engine",
    "tgi_server.http.app",
)
"""What a backend imports on its way to loading a model: imported here once, for every child."""

_PR_SET_PDEATHSIG = 1


class ForkServer:
    """Forks children on request (`serve`); reaps them and reports their exits."""

    def __init__(self, control: socket.socket) -> None:
        self._control = control
        self._wake_read, self._wake_write = socket.socketpair()
        self._status: dict[int, socket.socket] = {}  # child pid -> its status line

    def serve(self) -> int:
        """Answer requests until the provider's end closes; the exit status."""
        for end in (self._wake_read, self._wake_write):
            end.setblocking(False)
        signal.set_wakeup_fd(self._wake_write.fileno())
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        with selectors.DefaultSelector() as selector:
            selector.register(self._control, selectors.EVENT_READ)
            selector.register(self._wake_read, selectors.EVENT_READ)
            while True:
                for key, _ in selector.select():
                    if key.fileobj is self._wake_read:
                        self._drain_wakeups()
                        self._reap()
                    elif not self._take_request():
                        return 0

    def _take_request(self) -> bool:
        """Read one request and fork it; False once the provider has gone."""
        try:
            data, fds, _, _ = socket.recv_fds(self._control, MAX_REQUEST_BYTES, PASSED_FDS)
        except ConnectionError:
            return False
        if not data:
            _close_all(fds)
            return False
        if len(fds) != PASSED_FDS:
            _close_all(fds)
            print(f"fork server: a request came with {len(fds)} descriptors", file=sys.stderr)
            return True
        stdin, stdout, status_fd = fds
        status = socket.socket(fileno=status_fd)
        try:
            request = SpawnRequest.model_validate_json(data)
        except pydantic.ValidationError as exc:
            print(f"fork server: a request is not valid: {exc}", file=sys.stderr)
            _close_all([stdin, stdout])
            status.close()
            return True
        pid = self._fork(request.argv, stdin, stdout)
        _close_all([stdin, stdout])
        self._status[pid] = status
        with contextlib.suppress(OSError):
            status.sendall(encode_status(Spawned(pid=pid)))
        return True

    def _fork(self, argv: Sequence[str], stdin: int, stdout: int) -> int:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns into this loop
            status = 1
            try:
                self._become_child(argv, stdin, stdout)
                status = _run_command(argv)
            except BaseException:  # noqa: BLE001  # anything: print it, then exit
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(status)
        return pid

    def _become_child(self, argv: Sequence[str], stdin: int, stdout: int) -> None:
        """What a new interpreter started by the provider would be: its own session, its
        standard streams, default signal handling, none of this server's sockets."""
        os.setsid()
        _die_with_parent()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.dup2(stdin, 0)
        os.dup2(stdout, 1)
        os.dup2(stdout, 2)
        _close_all([stdin, stdout])
        for end in (self._control, self._wake_read, self._wake_write, *self._status.values()):
            end.close()
        sys.argv = ["tgi-serverless", *argv]
        setproctitle.setproctitle(" ".join(["tgi-serverless", *argv]))

    def _drain_wakeups(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while self._wake_read.recv(4096):
                pass

    def _reap(self) -> None:
        while self._status:
            try:
                pid, wait_status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            status = self._status.pop(pid, None)
            if status is not None:
                returncode = os.waitstatus_to_exitcode(wait_status)
                with contextlib.suppress(OSError):  # a provider that closed its end misses it
                    status.sendall(encode_status(Exited(returncode=returncode)))
                status.close()


def _run_command(argv: Sequence[str]) -> int:
    from tgi_serverless.cli import main

    try:
        return main(list(argv))
    except SystemExit as exit_:  # argparse's errors and --help, as a new interpreter's
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when the fork server dies; exit if it already has."""
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        os._exit(1)


def _close_all(fds: Sequence[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def preload() -> None:
    """Import `PRELOADED`, then move what they made out of the collector's way: a child that
    collects garbage would otherwise write to every page it shares with this process."""
    for module in PRELOADED:
        importlib.import_module(module)
    gc.freeze()


def main(argv: Sequence[str]) -> int:
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -m tgi_serverless.fork_server FD", file=sys.stderr)
        return 2
    control = socket.socket(fileno=int(argv[0]))
    started = time.perf_counter()
    preload()
    with contextlib.suppress(OSError):  # a provider already gone: `serve` notices
        control.send(Ready(preload_s=time.perf_counter() - started).model_dump_json().encode())
    return ForkServer(control).serve()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
