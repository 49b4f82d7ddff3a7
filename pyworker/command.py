"""Run a PyWorker: the ticket-checking proxy in front of one TGI backend.

It fetches the router's public keys, waits until the backend answers /health, measures how
many tokens per second it sustains (max_perf), then reports `ready` to the router and serves
POST /generate and /generate_stream with {"auth_data": <ticket>, "payload": <TGI body>}.
Nothing reaches the backend without a valid ticket for this worker.

Environment (Vast.ai's names, so its templates work unchanged; names exactly as spelled; all
of them in docs/pyworker.md, Settings):
  WORKER_PORT          port to listen on (default 3000)
  REPORT_ADDR          router URL(s), comma-separated (default http://127.0.0.1:8080)
  CONTAINER_ID         this worker's id (default: <hostname>-<port>)
  PUBLIC_IPADDR, VAST_TCP_PORT_<WORKER_PORT>
                       the public address clients reach this worker at
  TGIS_PUBLIC_URL      the public URL, when not on Vast (default http://127.0.0.1:<port>)
  TGIS_BACKEND_URL     the TGI backend (default http://127.0.0.1:5001)
  TGIS_ENDPOINT        the endpoint this worker serves (default "default")
  TGIS_WORKER_TOKEN    token the router expects on status reports
  TGIS_TICKET_SCHEME   ed25519 (default, keys from /keys), vast or vast-url (RSA, /pubkey/)
  UNSECURED=true       check no tickets at all (testing only; warned about everywhere)
  MODEL_LOG            the backend's log: TGI --json-output lines tell loaded / failed
  TGIS_MAX_QUEUE_TIME  seconds of expected wait above which requests get 429 (default 30)
  TGIS_MAX_CONCURRENCY requests relayed at once (default: the backend's max_concurrent_requests)
  TGIS_DRAIN_GRACE     seconds in-flight requests get to finish after SIGTERM (default 30)
  USE_SSL=true         serve HTTPS with TGIS_SSL_CERT / TGIS_SSL_KEY
                       (default /etc/instance.crt and /etc/instance.key, as on Vast)

Example:
  tgi-serverless backend --port 5001 &
  tgi-serverless worker --port 3000 --backend-url http://127.0.0.1:5001 --router http://127.0.0.1:8080
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import socket
import ssl
from collections.abc import Callable, Mapping

from aiohttp import web

from pyworker.connections import KEEPALIVE_TIMEOUT_S, LINGERING_TIME_S, ConnectionGuard
from pyworker.settings import WorkerSettings

SHUTDOWN_TIMEOUT_S = 2.0  # after the drain, what still runs gets this long, then is cancelled

HELP = "run a PyWorker: check routing tickets, relay requests to a TGI backend"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, help="port to listen on (default 3000, $WORKER_PORT)")
    parser.add_argument("--host", help="address to bind (default 0.0.0.0)")
    parser.add_argument("--backend-url", help="TGI backend URL (default http://127.0.0.1:5001)")
    parser.add_argument(
        "--router", help="router URL(s) to report to, comma-separated (default $REPORT_ADDR)"
    )
    parser.add_argument("--public-url", help="URL clients reach this worker at")
    parser.add_argument("--worker-id", help="this worker's id (default $CONTAINER_ID)")
    parser.add_argument("--endpoint", help="endpoint this worker serves (default 'default')")


def build_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> WorkerSettings:
    """Settings from the variables `environ` sets (docs/pyworker.md), the flags given over them."""
    settings = WorkerSettings.from_command_line(args, environ, report_addr=args.router)
    if settings.worker_id:
        return settings
    return settings.model_copy(update={"worker_id": f"{socket.gethostname()}-{settings.port}"})


def ssl_context(settings: WorkerSettings) -> ssl.SSLContext | None:
    """The server's TLS context when `USE_SSL` is set (Vast's certificate paths by default)."""
    if not settings.use_ssl:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.ssl_cert, settings.ssl_key)
    return context


def run(args: argparse.Namespace) -> int:
    from pyworker.app import create_app

    settings = build_settings(args, os.environ)
    app = create_app(settings)
    _tune_gc()
    print(f"PyWorker {settings.worker_id} on {settings.advertised_url}", flush=True)
    with asyncio.Runner(loop_factory=_event_loop) as runner:
        runner.run(serve(app, settings, ssl_context(settings)))
    return 0


async def serve(
    app: web.Application,
    settings: WorkerSettings,
    ssl: ssl.SSLContext | None,
    *,
    started: Callable[[int], None] | None = None,
) -> None:
    """Serve `app` until SIGTERM or SIGINT, through a `ConnectionGuard`; SIGUSR1 parks the
    worker and SIGUSR2 resumes it (`Lifecycle.park`).

    On SIGTERM or SIGINT, listening stops, the app drains for up to drain_grace_s (on_shutdown), and
    whatever still runs after a short extra allowance is cancelled. `started` is told the
    port listened on, once it listens.
    """
    runner = web.AppRunner(
        app,
        handler_cancellation=True,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        keepalive_timeout=KEEPALIVE_TIMEOUT_S,
        lingering_time=LINGERING_TIME_S,
    )
    await runner.setup()
    try:
        assert runner.server is not None
        guard = ConnectionGuard(
            runner.server,
            max_connections=settings.max_connections,
            header_timeout_s=settings.header_timeout_s,
        )
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            guard,
            settings.host,
            settings.port,
            ssl=ssl,
            ssl_handshake_timeout=settings.header_timeout_s if ssl else None,
        )
        try:
            if started is not None:
                started(server.sockets[0].getsockname()[1])
            from pyworker.state import LIFECYCLE

            lifecycle = app[LIFECYCLE]
            await _until_stopped(
                loop, {signal.SIGUSR1: lifecycle.park, signal.SIGUSR2: lifecycle.resume}
            )
        finally:
            server.close()  # stop listening; runner.cleanup drains and closes the connections
    finally:
        await runner.cleanup()


async def _until_stopped(
    loop: asyncio.AbstractEventLoop, also: Mapping[signal.Signals, Callable[[], None]]
) -> None:
    """Until SIGTERM or SIGINT; meanwhile the `also` signals call their handlers."""
    stop = asyncio.Event()
    handlers = {signal.SIGTERM: stop.set, signal.SIGINT: stop.set, **also}
    for signum, handler in handlers.items():
        loop.add_signal_handler(signum, handler)
    try:
        await stop.wait()
    finally:
        for signum in handlers:
            loop.remove_signal_handler(signum)


# Young-generation collections every 700 allocations cost the hot path about 7% of its CPU
# (perf, under benchmarks/pyworker_overhead.py): a request allocates a few hundred objects,
# almost all gone when it ends, so collecting every 20,000 finds the same garbage far less often.
GC_YOUNG_THRESHOLD = 20_000


def _tune_gc() -> None:
    """Freeze what start-up built (full collections then skip it) and collect the young less often.

    Garbage is still collected: reference counting frees almost everything at once, and cycles
    (an exception's traceback, say) go at the next young collection.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def _event_loop() -> asyncio.AbstractEventLoop:
    """uvloop (a project dependency) when it is installed, else asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
