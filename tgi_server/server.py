"""The backend process: load the model, then serve until SIGTERM or SIGINT.

As with TGI, nothing listens until the model is ready: a refused connection means "still
loading", and the `Connected` log line means "ready". A failure to load ends the process with
TGI's `Error: ShardCannotStart`; a port that cannot be bound with `Error: WebserverFailed`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from aiohttp import web

from httpedge.connections import GuardedSite, connection_runner
from tgi_server.engine.shard.launch import PendingShard, ShardFailedError, start_shard
from tgi_server.json_logging import LAUNCHER_TARGET, SERVER_TARGET
from tgi_server.model.launch_flags import asks_the_device
from tgi_server.settings import BackendSettings

if TYPE_CHECKING:
    from tgi_server.engine.base import ModelEngine

__all__ = ["serve"]

log = logging.getLogger(__name__)

GIL_SWITCH_INTERVAL_S = 0.0002
"""The model thread and the event loop hand tokens to each other at every step; with Python's
default 5 ms switch interval each hand-off can wait that long for the GIL."""


def serve(settings: BackendSettings) -> int:
    """Run the backend with `settings`; the process exit status."""
    # The shard starts loading the model before this process imports the rest of its own
    # libraries: forked once those it shares with the shard are imported (`launch`), while
    # this process still has one thread and has run no model.
    fork = not asks_the_device(settings)
    shard = start_shard(settings, fork=fork) if settings.engine == "shard" else None
    from transformers.utils import logging as transformers_logging

    from tgi_server.engine.shard.engine import ShardEngine
    from tgi_server.http.app import create_app

    cast(Any, transformers_logging).disable_progress_bar()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    try:
        engine, settings = _start_engine(settings, shard)
    except BaseException as exc:
        if shard is not None:
            shard.abandon()
        if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit: not ours to keep
            raise
        if isinstance(exc, ShardFailedError):  # the shard has logged its traceback already
            log.error("Shard 0 failed to start: %s", exc, extra={"target": LAUNCHER_TARGET})
        else:
            log.exception("Error when initializing model", extra={"target": LAUNCHER_TARGET})
            log.error("Shard 0 failed to start", extra={"target": LAUNCHER_TARGET})
        print("Error: ShardCannotStart", file=sys.stderr, flush=True)
        return 1
    app = create_app(settings, engine)
    _freeze_the_heap()
    crashed = engine.failed if isinstance(engine, ShardEngine) else None
    with asyncio.Runner(loop_factory=_event_loop_factory()) as runner:
        return runner.run(_serve(app, settings, crashed))


def _start_engine(
    settings: BackendSettings, pending: PendingShard | None
) -> tuple[ModelEngine, BackendSettings]:
    """The engine `settings.engine` asks for (`pending`: its shard, loading), with its model
    loaded, and `settings` with token limits fitted to the model's context."""
    from tgi_server.engine.base import ServedModel
    from tgi_server.engine.shard.engine import ShardEngine
    from tgi_server.model.codec import HFTextCodec
    from tgi_server.model.loading import (
        build_engine,
        fit_to_context,
        grammar_compiler,
        load_model,
        load_tokenizer,
        model_context,
    )

    if pending is None:
        loaded = load_model(settings)
        settings = fit_to_context(settings, model_context(loaded.model))
        return build_engine(loaded, settings), settings
    tokenizer = load_tokenizer(settings)
    settings = fit_to_context(settings, tokenizer.context)
    shard = pending.wait_until_ready()
    served = ServedModel(
        model_id=tokenizer.model_id,
        codec=HFTextCodec(tokenizer.tokenizer),
        device_type=shard.device_type,
        device_name=shard.device_name,
        grammar=grammar_compiler(tokenizer.tokenizer),
    )
    return ShardEngine(shard, served), settings


def _freeze_the_heap() -> None:
    """Leave what loading made (the model, the tokenizer, the libraries: ~390 000 objects for
    the tiny model) out of garbage collection from now on. Otherwise every full collection
    walks all of it: 261 ms for the last one while loading, a stall whenever one runs."""
    gc.collect()
    gc.freeze()


def _event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop's loop (a project dependency) when it is installed, else asyncio's own: every
    streamed token is a socket write and every engine step a cross-thread wake-up, both cheaper
    on uvloop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


async def _serve(
    app: web.Application, settings: BackendSettings, crashed: asyncio.Event | None
) -> int:
    limits = settings.connection_limits
    runner = connection_runner(
        app, limits, shutdown_timeout=settings.shutdown_timeout_s, access_log=None
    )
    await runner.setup()
    try:
        await GuardedSite(runner, limits, settings.host, settings.port).start()
    except OSError as exc:
        log.error("Webserver Crashed: %s", exc, extra={"target": LAUNCHER_TARGET})
        print("Error: WebserverFailed", file=sys.stderr, flush=True)
        await runner.cleanup()
        return 1
    log.info("Connected", extra={"target": SERVER_TARGET})
    log.info("Serving on http://%s:%d", settings.host, settings.port)
    if await _wait_for_signal(crashed):
        log.info("signal received, starting graceful shutdown", extra={"target": SERVER_TARGET})
        status = 0
    else:
        log.error("Shard 0 crashed: shutting down", extra={"target": LAUNCHER_TARGET})
        status = 1
    await runner.cleanup()
    log.info("webserver terminated", extra={"target": LAUNCHER_TARGET})
    return status


async def _wait_for_signal(crashed: asyncio.Event | None) -> bool:
    """True on the first SIGTERM or SIGINT (a second one gets the default behaviour); False
    if `crashed` is set first."""
    loop = asyncio.get_running_loop()
    received = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, received.set)
    waits = [asyncio.ensure_future(received.wait())]
    if crashed is not None:
        waits.append(asyncio.ensure_future(crashed.wait()))
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        return received.is_set()
    finally:
        for wait in waits:
            wait.cancel()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
