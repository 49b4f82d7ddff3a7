"""The PyWorker's lifetime around its routes: the client session and the relay, the bring-up
(keys, then the backend's supervision) and status reports in the background, and the drain on
shutdown (SIGTERM): refuse new requests (503), report `draining`, let in-flight requests finish
for up to `drain_grace_s`, then report `stopped`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp import web

from protocol import Info, WorkerState
from pyworker import state
from pyworker.backend.benchmark_cache import BenchmarkCache
from pyworker.backend.model_log import LogFollower
from pyworker.backend.probe import BackendProbe
from pyworker.backend.supervisor import Supervisor
from pyworker.relay import Relay
from pyworker.reporter import UNSECURED_WARNING, StatusReporter, build_report
from pyworker.router_tls import router_ssl
from pyworker.settings import WorkerSettings
from pyworker.tickets.keys import KeyRefresher, RouterKeys, fetch_keys_until_success

__all__ = ["background_tasks", "client_session", "drain"]

log = logging.getLogger(__name__)


async def client_session(app: web.Application) -> AsyncIterator[None]:
    settings = app[state.SETTINGS]
    connector = aiohttp.TCPConnector(
        limit=0,
        limit_per_host=0,
        keepalive_timeout=60,
        ssl=router_ssl(settings.router_ca_file, settings.router_fingerprint),
    )
    async with aiohttp.ClientSession(connector=connector) as session:
        app[state.SESSION] = session
        app[state.RELAY] = Relay(
            settings.backend_url,
            connect_timeout_s=settings.connect_timeout_s,
            first_byte_timeout_s=settings.first_byte_timeout_s,
            idle_timeout_s=settings.stream_idle_timeout_s,
        )
        router_keys = RouterKeys(session, settings.report_addresses, settings.ticket_scheme)
        app[state.REFRESHER] = KeyRefresher(
            app[state.VERIFIER],
            router_keys.fetch,
            clock=time.monotonic,
            min_interval_s=settings.key_refresh_interval_s,
        )
        yield
        await app[state.RELAY].close()


async def background_tasks(app: web.Application) -> AsyncIterator[None]:
    settings = app[state.SETTINGS]
    if settings.unsecured:
        _warn_unsecured()
    reporter = StatusReporter(
        app[state.SESSION],
        settings.report_addresses,
        lambda: build_report(
            worker_id=settings.worker_id,
            url=settings.advertised_url,
            endpoint=settings.endpoint,
            lifecycle=app[state.LIFECYCLE],
            load=app[state.LOAD],
            unsecured=settings.unsecured,
            epoch=app[state.VERIFIER].epoch,
        ),
        app[state.LIFECYCLE].changed,
        interval_s=settings.report_interval_s,
        token=settings.worker_token.get_secret_value() if settings.worker_token else None,
        join_tokens=settings.join_tokens,
        router_clock=app[state.ROUTER_CLOCK],
    )
    app[state.REPORTER] = reporter
    tasks = [
        asyncio.create_task(_bring_up(app), name="bring-up"),
        asyncio.create_task(reporter.run(), name="status-reporter"),
    ]
    if not settings.unsecured:
        refresh = app[state.REFRESHER].run_every(settings.key_poll_interval_s)
        tasks.append(asyncio.create_task(refresh, name="key-refresh"))
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    app[state.LIFECYCLE].move_to(WorkerState.STOPPED)
    await reporter.send_final()


def _warn_unsecured() -> None:
    banner = "!" * 78
    log.warning("%s\n%s\n%s", banner, UNSECURED_WARNING, banner)


async def _bring_up(app: web.Application) -> None:
    """Keys (unless unsecured), then supervise the backend: loading → ... → ready ⇄ error."""
    settings, lifecycle = app[state.SETTINGS], app[state.LIFECYCLE]
    session = app[state.SESSION]
    if not settings.unsecured:
        keys = await fetch_keys_until_success(app[state.REFRESHER].fetch)
        app[state.REFRESHER].install(keys)

    def on_ready(info: Info, perf: float) -> None:
        limit = settings.max_concurrency or max(1, info.max_concurrent_requests)
        app[state.GATE].set_limit(limit)
        # Saturated: as many requests in flight as the benchmark ran at once (or all it may).
        app[state.LOAD].capacity.start_from(perf, min(limit, settings.benchmark_concurrency))

    follower = LogFollower(settings.model_log).lines() if settings.model_log else None
    supervisor = Supervisor(
        BackendProbe(session, settings.backend_url),
        lifecycle,
        on_ready=on_ready,
        health_interval_s=settings.health_interval_s,
        benchmark_tokens=settings.benchmark_tokens,
        benchmark_concurrency=settings.benchmark_concurrency,
        benchmark_repeats=settings.benchmark_repeats,
        benchmark_budget_s=settings.benchmark_budget_s,
        log_lines=follower,
        benchmark_cache=BenchmarkCache(Path(settings.benchmark_cache))
        if settings.benchmark_cache
        else None,
        machine=_machine(settings),
    )
    await supervisor.run()


def _machine(settings: WorkerSettings) -> str:
    """This machine as a cached start-up figure's key names it: what decides its speed."""
    return (
        f"{socket.gethostname()} gpus={settings.cuda_visible_devices or '-'}"
        f" threads={settings.omp_num_threads or '-'}"
    )


async def drain(app: web.Application) -> None:
    """Stop taking requests, say so, and give in-flight ones up to the grace period to end."""
    lifecycle, load = app[state.LIFECYCLE], app[state.LOAD]
    lifecycle.move_to(WorkerState.DRAINING)
    reporter = app.get(state.REPORTER)
    if reporter is not None:
        with contextlib.suppress(asyncio.CancelledError):
            await reporter.send_final(WorkerState.DRAINING)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(app[state.SETTINGS].drain_grace_s):
            await load.idle.wait()
    if load.requests_working:
        log.warning("drain grace over with %d request(s) still in flight", load.requests_working)
