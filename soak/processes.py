"""The stack's processes, sampled: `up` itself (the router runs in it) and every process below
it (each local worker's backend and PyWorker), their resident memory and open file descriptors
read with psutil every few seconds on a thread of their own."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Collection, Iterable, Mapping, Sequence

import psutil  # type: ignore[import-untyped]  # no stubs offline (types-psutil)

from soak.verdict import ProcessSample
from tgi_server.engine.shard.launch import SHARD_PROCESS_NAME

__all__ = ["ProcessSampler", "process_names", "worker_urls"]


def process_names(
    root_pid: int,
    commands: Mapping[int, Sequence[str]],
    parents: Mapping[int, int],
    shards: Collection[int] = (),
) -> dict[int, str]:
    """A readable name for each process of the stack, from its command line and its parent:
    "router" for `root_pid` (`up`), "fork server" for `up`'s fork server, "worker-1 pyworker"
    for a PyWorker (its `--worker-id`), "worker-1 backend" for the backend that PyWorker's
    `--backend-url` names (by port), "worker-1 shard" for that backend's model process, and
    "<parent's name> child <program>" otherwise. A command line is its words, or one title
    (a backend forked by the fork server shows `tgi-serverless ... backend --port N`). A shard
    forked from its backend has the backend's command line: `shards` are the pids whose
    process name is the shard's (`SHARD_PROCESS_NAME`). Each name ends with the pid, so that a
    replaced process is not confused with the one before it."""
    commands = {pid: _words(command) for pid, command in commands.items()}
    ports: dict[str, str] = {}  # a backend's port -> the worker in front of it
    for command in commands.values():
        if _subcommand(command) == "worker":
            url = _option(command, "--backend-url") or ""
            ports[url.rsplit(":", 1)[-1]] = _option(command, "--worker-id") or "worker"
    roles = {}
    for pid, command in commands.items():
        if pid == root_pid:
            roles[pid] = "router"
        elif pid in shards:
            continue  # named after its parent, below
        elif _option(command, "-m") == "tgi_serverless.fork_server":
            roles[pid] = "fork server"
        elif _subcommand(command) == "worker":
            roles[pid] = f"{_option(command, '--worker-id') or 'worker'} pyworker"
        elif _subcommand(command) == "backend":
            roles[pid] = f"{ports.get(_option(command, '--port') or '', 'unknown')} backend"
    for pid, command in commands.items():
        if pid not in roles:
            parent = roles.get(parents.get(pid, 0), "process")
            roles[pid] = _child_role(parent, command, pid in shards)
    return {pid: f"{role} [{pid}]" for pid, role in roles.items()}


def worker_urls(commands: Iterable[Sequence[str]]) -> dict[str, str]:
    """Each worker's URL by its name, from its PyWorker's command line (`--worker-id`,
    `--public-url`)."""
    found = {}
    for command in commands:
        words = _words(command)
        if _subcommand(words) == "worker":
            name, url = _option(words, "--worker-id"), _option(words, "--public-url")
            if name is not None and url is not None:
                found[name] = url
    return found


def _child_role(parent: str, command: Sequence[str], shard: bool) -> str:
    module = _option(command, "-m")
    if (shard or module == "tgi_server.engine.shard") and parent.endswith(" backend"):
        return parent.removesuffix(" backend") + " shard"
    program = module or (_program(command[0]) if command else "?")
    return f"{parent} child {program}"


def _words(command: Sequence[str]) -> list[str]:
    """A command line's words, also where it is one title padded with empty strings."""
    return " ".join(command).split()


def _subcommand(command: Sequence[str]) -> str | None:
    """The `tgi-serverless` command a command line runs (`python -m tgi_serverless [--log-level
    L] backend ...` or the title `tgi-serverless ... backend ...` -> "backend"); None for
    another program."""
    programs = ("tgi_serverless", "tgi-serverless")
    start = next((i for i, word in enumerate(command) if _program(word) in programs), None)
    if start is None:
        return None
    words = iter(command[start + 1 :])
    for word in words:
        if word == "--log-level":
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def _program(word: str) -> str:
    return word.rsplit("/", 1)[-1]


def _option(command: Sequence[str], flag: str) -> str | None:
    for index, word in enumerate(command[:-1]):
        if word == flag:
            return command[index + 1]
    return None


class ProcessSampler:
    """Samples `root_pid` and its descendants every `interval_s` from `start(t0)` until `stop()`;
    `samples` maps each process's name (`process_names`) to its samples, their times in
    seconds since `t0` (a `time.monotonic()` reading), and `machine_load` holds the machine's
    1-minute load average at each of those times. A process that cannot be read (gone, or not
    ours) is skipped at that moment. `snapshot()` reads every process once, outside the
    series."""

    def __init__(self, root_pid: int, interval_s: float = 5.0) -> None:
        self._root = psutil.Process(root_pid)
        self._t0 = time.monotonic()
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)
        self._names: dict[int, str] = {}
        self.worker_urls: dict[str, str] = {}
        """Each worker's URL (its PyWorker's `--public-url`) by its name (`--worker-id`)."""
        self.samples: dict[str, list[ProcessSample]] = {}
        self.machine_load: list[tuple[float, float]] = []

    def start(self, t0: float) -> None:
        self._t0 = t0
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def latest(self) -> dict[str, ProcessSample]:
        """Each process's last sample."""
        return {name: samples[-1] for name, samples in list(self.samples.items()) if samples}

    def snapshot(self) -> dict[str, ProcessSample]:
        """Every process now, by name."""
        return self._read(time.monotonic() - self._t0)

    def sample_once(self) -> None:
        t = time.monotonic() - self._t0
        for name, sample in self._read(t).items():
            self.samples.setdefault(name, []).append(sample)
        self.machine_load.append((t, os.getloadavg()[0]))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample_once()
            self._stop.wait(self._interval_s)

    def _read(self, t: float) -> dict[str, ProcessSample]:
        try:
            processes = [self._root, *self._root.children(recursive=True)]
        except psutil.Error:
            return {}  # `up` is gone: nothing left to sample
        self._name_new(processes)
        read = {}
        for process in processes:
            try:
                with process.oneshot():
                    cpu = process.cpu_times()
                    sample = ProcessSample(
                        t, process.memory_info().rss, process.num_fds(), cpu.user + cpu.system
                    )
            except psutil.Error:
                continue
            read[self._names[process.pid]] = sample
        return read

    def _name_new(self, processes: Sequence[psutil.Process]) -> None:
        if all(process.pid in self._names for process in processes):
            return
        commands, parents, shards = {}, {}, []
        for process in processes:
            try:
                commands[process.pid], parents[process.pid] = process.cmdline(), process.ppid()
                if process.name() == SHARD_PROCESS_NAME:
                    shards.append(process.pid)
            except psutil.Error:
                commands[process.pid] = []
        names = process_names(self._root.pid, commands, parents, shards)
        self._names = {**names, **self._names}
        self.worker_urls.update(worker_urls(commands.values()))
