"""Engines on a scripted model for the engine tests: the thread engine, and the shard engine with
its shard loop on a thread of this process instead of a process of its own."""

from __future__ import annotations

import asyncio
import socket
import threading

from tests.unit.tgi_server.conftest import ByteCodec, ScriptedRunner
from tgi_server.engine.base import ServedModel
from tgi_server.engine.shard.engine import ShardEngine
from tgi_server.engine.shard.launch import ShardProcess
from tgi_server.engine.shard.process import CompileKey, ShardLoop
from tgi_server.engine.thread import Engine
from tgi_server.generation.events import EngineEvent, FailureEvent
from tgi_server.scheduler.base import Scheduler
from tgi_server.scheduler.sequential import SequentialScheduler
from tgi_server.validation import SamplingParams, ValidatedRequest

CODEC = ByteCodec()
MODEL = ServedModel(model_id="scripted", codec=CODEC, device_type="cpu")


def request(max_new_tokens: int, grammar: object = None) -> ValidatedRequest:
    """The prompt "Hi", for `max_new_tokens` tokens."""
    return ValidatedRequest(
        inputs="Hi",
        input_ids=tuple(CODEC.encode("Hi")),
        sampling=SamplingParams(),
        max_new_tokens=max_new_tokens,
        grammar=grammar,
    )


def scheduler(script: str) -> SequentialScheduler:
    """A scheduler whose model writes `script` over and over."""
    return SequentialScheduler(ScriptedRunner([ord(char) for char in script]), CODEC, set())


class ThreadProcess:
    """A shard loop on a thread, standing in for the shard's process."""

    def __init__(self, loop: ShardLoop) -> None:
        self.thread = threading.Thread(target=loop.run, daemon=True)
        self.thread.start()

    @property
    def pid(self) -> int:
        return 0  # no process of its own

    def join(self, timeout: float | None = None) -> None:
        self.thread.join(timeout)

    def is_alive(self) -> bool:
        return self.thread.is_alive()

    def kill(self) -> None:
        raise AssertionError("the shard should have stopped when told to")


def start_shard(
    scheduler: Scheduler, compile_key: CompileKey | None = None
) -> tuple[ShardProcess, socket.socket]:
    """A shard loop running `scheduler` on a thread, and the shard's end of its socket."""
    ours, theirs = socket.socketpair()
    loop = ShardLoop(theirs, scheduler, compile_key)
    return ShardProcess(ThreadProcess(loop), ours, "cpu", None), theirs


def thread_engine(script: str) -> Engine:
    """A thread engine (not started) whose model writes `script` over and over."""
    return Engine(scheduler(script), MODEL)


def shard_engine(script: str, compile_key: CompileKey | None = None) -> ShardEngine:
    """A shard engine (not started) whose shard's model writes `script` over and over."""
    shard, _ = start_shard(scheduler(script), compile_key)
    return ShardEngine(shard, MODEL)


class ListSink:
    """An EventSink that records its events and the thread they arrived on."""

    def __init__(self) -> None:
        self.events: list[EngineEvent] = []
        self.threads: set[int] = set()
        self.done = asyncio.Event()

    def put_nowait(self, item: EngineEvent, /) -> None:
        self.events.append(item)
        self.threads.add(threading.get_ident())
        if isinstance(item, FailureEvent) or item.completion is not None:
            self.done.set()
