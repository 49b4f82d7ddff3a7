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

The backend (--backend):
  <URL>                relay to a backend someone else runs (what --backend-url does; default)
  tgi                  start and supervise `text-generation-launcher --model-id "$MODEL_ID"
                       --json-output --port 5001 --hostname 127.0.0.1 <flags after -->`
  embedded             start and supervise our backend (`tgi-serverless backend`) the same way
  A started backend logs to MODEL_LOG (default: a file in the temporary directory); it is
  started again with back-off when it exits, and reported as `error` (with its log's last
  line) when it is still loading after --load-timeout. It gets the worker's environment less
  the worker's own tokens: HF_TOKEN reaches it that way, never as an argument. TGI's flags go
  after `--` (or in TGI's variables: QUANTIZE, NUM_SHARD, MAX_TOTAL_TOKENS, ...).
  MODEL_ID             the model the started backend serves (or --model-id)

One worker per port: a second worker on a port another one holds exits at once (code 1), before
it starts any backend.

Examples:
  tgi-serverless backend --port 5001 &
  tgi-serverless worker --port 3000 --backend-url http://127.0.0.1:5001 --router http://127.0.0.1:8080
  MODEL_ID=HuggingFaceTB/SmolLM2-135M-Instruct tgi-serverless worker --backend tgi \\
      --router http://router:8080 -- --max-total-tokens 4096 --quantize eetq
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import gc
import os
import signal
import socket
import ssl
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pydantic
from aiohttp import web

from httpedge.connections import GuardedSite, connection_runner
from pyworker.backend.launch import (
    LaunchError,
    LaunchSpec,
    backend_environment,
    launch_spec,
    parse_backend,
)
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
    started = parser.add_argument_group("a backend the worker starts (--backend tgi|embedded)")
    started.add_argument(
        "--backend",
        metavar="tgi|embedded|URL",
        help="start TGI or our backend and supervise it, or relay to the backend at URL",
    )
    started.add_argument("--model-id", help="the model it serves (default $MODEL_ID)")
    started.add_argument(
        "--backend-port", type=int, default=5001, help="its port on 127.0.0.1 (default 5001)"
    )
    started.add_argument(
        "--load-timeout",
        type=float,
        default=1800.0,
        metavar="SECONDS",
        help="still loading after this long (download included): error, restart (default 1800)",
    )
    started.add_argument(
        "backend_args",
        nargs="*",
        metavar="-- BACKEND FLAGS",
        help="flags for the backend it starts (TGI's: --quantize, --num-shard, ...)",
    )


@dataclass(frozen=True)
class Plan:
    """What `worker` runs: its settings and, when it starts its backend, how."""

    settings: WorkerSettings
    launch: LaunchSpec | None = None


def plan(args: argparse.Namespace, environ: Mapping[str, str], python: str) -> Plan:
    """The worker's settings and its backend from the flags and `environ`.

    Raises LaunchError (or pydantic's ValidationError) on what cannot run.
    """
    if args.backend is None:
        if args.backend_args:
            raise LaunchError("flags after -- are for a backend the worker starts: --backend tgi")
        return Plan(build_settings(args, environ))
    choice = parse_backend(args.backend)
    if args.backend_url is not None:
        raise LaunchError("give --backend or --backend-url, not both")
    if not choice.managed:
        if args.backend_args:
            raise LaunchError("flags after -- are for a backend the worker starts, not a URL")
        return Plan(build_settings(args, environ, backend_url=choice.url))
    spec = launch_spec(
        choice,
        model_id=args.model_id or environ.get("MODEL_ID", ""),
        port=args.backend_port,
        extra_args=args.backend_args,
        python=python,
    )
    log_path = WorkerSettings.one_from_environment("model_log", environ) or str(
        Path(tempfile.gettempdir()) / f"tgi-serverless-backend-{args.backend_port}.log"
    )
    settings = build_settings(args, environ, backend_url=spec.url, model_log=log_path)
    return Plan(settings, spec)


def build_settings(
    args: argparse.Namespace, environ: Mapping[str, str], **over: str
) -> WorkerSettings:
    """Settings from the variables `environ` sets (docs/pyworker.md), the flags given over them
    (and `over` over those)."""
    settings = WorkerSettings.from_command_line(args, environ, report_addr=args.router, **over)
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

    try:
        worker = plan(args, os.environ, sys.executable)
    except (LaunchError, pydantic.ValidationError) as exc:
        print(f"tgi-serverless worker: {exc}", file=sys.stderr)
        return 2
    settings = worker.settings
    try:
        listener = listen_socket(settings.host, settings.port)
    except OSError as exc:
        print(f"tgi-serverless worker: {_why_not_listening(settings, exc)}", file=sys.stderr)
        return 1
    app = create_app(settings)
    if worker.launch is not None:
        launch, env = worker.launch, backend_environment(os.environ)
        app.cleanup_ctx.append(
            lambda app: supervised_backend(app, launch, env, load_timeout_s=args.load_timeout)
        )
    _tune_gc()
    print(f"PyWorker {settings.worker_id} on {settings.advertised_url}", flush=True)
    with asyncio.Runner(loop_factory=_event_loop) as runner:
        runner.run(serve(app, settings, ssl_context(settings), sock=listener))
    return 0


def listen_socket(host: str, port: int) -> socket.socket:
    """The worker's listening socket, bound before anything else starts: a second worker on
    the same port fails here, before it starts a backend (OSError EADDRINUSE)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=1024)


def _why_not_listening(settings: WorkerSettings, exc: OSError) -> str:
    where = f"{settings.host}:{settings.port}"
    if exc.errno == errno.EADDRINUSE:
        return (
            f"port {settings.port} is taken: another worker (or program) already listens on "
            f"{where}. One worker per port; this one exits without starting a backend."
        )
    return f"cannot listen on {where}: {exc.strerror or exc}"


async def supervised_backend(
    app: web.Application, launch: LaunchSpec, env: Mapping[str, str], *, load_timeout_s: float
) -> AsyncIterator[None]:
    """Run the worker's own backend (`ManagedBackend`) for the app's lifetime; its failures
    move the worker to `error`. Stopped after the drain, when the app cleans up."""
    from protocol import WorkerState
    from pyworker import state
    from pyworker.backend.managed import ManagedBackend
    from pyworker.backend.probe import BackendProbe

    settings, lifecycle = app[state.SETTINGS], app[state.LIFECYCLE]
    probe = BackendProbe(app[state.SESSION], settings.backend_url)
    backend = ManagedBackend(
        launch,
        env=env,
        log_path=settings.model_log,
        healthy=probe.healthy,
        on_error=lambda message: lifecycle.move_to(WorkerState.ERROR, message),
        load_timeout_s=load_timeout_s,
    )
    task = asyncio.create_task(backend.run(), name="backend")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def serve(
    app: web.Application,
    settings: WorkerSettings,
    ssl: ssl.SSLContext | None,
    *,
    started: Callable[[int], None] | None = None,
    sock: socket.socket | None = None,
) -> None:
    """Serve `app` until SIGTERM or SIGINT, through a `ConnectionGuard`; SIGUSR1 parks the
    worker and SIGUSR2 resumes it (`Lifecycle.park`).

    On SIGTERM or SIGINT, listening stops, the app drains for up to drain_grace_s (on_shutdown), and
    whatever still runs after a short extra allowance is cancelled. `started` is told the
    port listened on, once it listens. `sock`, when given, is the socket to listen on (bound
    already, by `listen_socket`).
    """
    limits = settings.connection_limits
    runner = connection_runner(app, limits, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    try:
        if sock is None:
            sock = listen_socket(settings.host, settings.port)
        site = GuardedSite(runner, limits, sock=sock, ssl_context=ssl)
        await site.start()
        if started is not None:
            started(site.port)
        from pyworker.state import LIFECYCLE

        lifecycle = app[LIFECYCLE]
        await _until_stopped(
            asyncio.get_running_loop(),
            {signal.SIGUSR1: lifecycle.park, signal.SIGUSR2: lifecycle.resume},
        )
    finally:
        await runner.cleanup()  # stops listening first, then drains and closes the connections


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
