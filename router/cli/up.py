"""Bring the whole stack up on this machine: the router plus N local workers, autoscaled.

Each worker is two child processes on free ports: the embedded TGI-compatible backend (the
built-in tiny model unless --model-id names another) and a PyWorker in front of it. When every
worker has reported `ready`, it prints the router URL, the keys it generated (never one given
through a flag or the environment) and a command to try. The status page (/ui) asks for the
admin key as its password; `--public-status` opens it instead. With --tls-cert/--tls-key the
router serves HTTPS and the local workers pin its certificate's fingerprint. The workers share
this machine's cores: each backend's torch gets cores / --max-workers threads (OMP_NUM_THREADS,
unless you set it), not a thread per core each, which oversubscribes them.
Then the autoscaler keeps the endpoint between --workers (the minimum) and --max-workers:
it adds workers under load (resuming cold ones first), drains and parks them when load falls,
and replaces any that die. Ctrl-C (or SIGTERM) stops everything; no child process outlives it.

Example:
  tgi-serverless up --workers 2 --max-workers 4
  TGIS_API_KEY=<key> tgi-serverless generate "Hello" --stream     (from another shell)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shlex
import signal
import sys
import time
from collections.abc import Mapping
from functools import partial
from pathlib import Path

from pydantic import SecretStr, ValidationError

from httpedge.connections import GuardedSite, connection_runner
from protocol import WorkerState
from router.autoscaler.endpoint_seam import follow_endpoint, publish_params
from router.autoscaler.http import add_autoscaler_routes
from router.autoscaler.loop import AutoscalerLoop, stop_task
from router.autoscaler.params import EndpointParams, ParamsError, add_params_flag
from router.autoscaler.policies import make_policy, policy_names
from router.cli.router import add_router_arguments, build_settings
from router.cli.vastai import VastSetupError, add_vastai_arguments, serve_with_vastai, vastai_config
from router.http.app import ADMISSION, DEMAND, IDENTITIES, REGISTRY, STORE, create_app
from router.http.bodies import describe_validation
from router.providers.local import LocalProvider
from router.routing.registry import WorkerRegistry
from router.settings import RouterSettings
from router.tls import certificate_fingerprint, server_ssl_context

HELP = "run router + local workers (backend and PyWorker each) until Ctrl-C"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_router_arguments(parser, default_port="8080")
    parser.add_argument(
        "--workers", type=int, default=1, help="number of local workers to start (default 1)"
    )
    parser.add_argument(
        "--model-id", help="model for the backends: a hub id or local path (default: built-in tiny)"
    )
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=600.0,
        help="seconds to wait for every worker to be ready (default 600)",
    )
    parser.add_argument(
        "--no-fork-server",
        dest="fork_server",
        action="store_false",
        help="start each local backend as a new interpreter, which imports torch and "
        "transformers itself (about 4 s of CPU a start), instead of forking it from a process "
        "that imported them once when up started (which holds about 300 MB while idle)",
    )
    autoscaler = parser.add_argument_group("autoscaler")
    autoscaler.add_argument(
        "--max-workers", type=int, help="most workers, cold ones included (default: --workers)"
    )
    autoscaler.add_argument(
        "--cold-workers", type=int, default=0, help="workers kept ready-quick (default 0)"
    )
    autoscaler.add_argument(
        "--policy", default="default", choices=policy_names(), help="autoscaling policy"
    )
    add_params_flag(
        autoscaler, help="another endpoint parameter (target_util, cold_mult, ...); repeatable"
    )
    autoscaler.add_argument(
        "--provider",
        choices=["local", "vastai"],
        default="local",
        help="where workers run: processes on this machine (default) or Vast.ai instances",
    )
    add_vastai_arguments(parser)


def endpoint_params(args: argparse.Namespace) -> EndpointParams:
    """The endpoint's parameters: --workers is the floor of active workers."""
    defaults: dict[str, object] = {
        "min_workers": args.workers,
        "max_workers": args.max_workers if args.max_workers is not None else args.workers,
        "cold_workers": args.cold_workers,
        "ready_timeout_s": args.ready_timeout,
    }
    return EndpointParams.from_assignments(args.params, defaults)


def run(args: argparse.Namespace) -> int:
    if args.workers < 0 or (args.workers == 0 and (args.max_workers or 0) < 1):
        print(
            "tgi-serverless up: --workers must be at least 1, or 0 (scale from zero) "
            "with --max-workers at least 1",
            file=sys.stderr,
        )
        return 2
    try:
        params = endpoint_params(args)
    except ParamsError as exc:
        print(f"tgi-serverless up: {exc}", file=sys.stderr)
        return 2
    local = args.provider == "local"
    try:
        settings, generated = build_settings(
            args, os.environ, accept_unknown_workers=False, allow_private_workers=local
        )
    except ValidationError as exc:
        print(f"tgi-serverless up: {describe_validation(exc)}", file=sys.stderr)
        return 2
    if not local:
        return _up_on_vastai(args, settings, generated, params)
    backend_args = ["--model-id", args.model_id] if args.model_id else []
    return asyncio.run(_serve(settings, generated, args, backend_args, params))


async def _serve(
    settings: RouterSettings,
    generated: frozenset[str],
    args: argparse.Namespace,
    backend_args: list[str],
    params: EndpointParams,
) -> int:
    try:
        ssl_context = server_ssl_context(settings.tls_cert, settings.tls_key)
    except (OSError, ValueError) as exc:
        print(f"tgi-serverless up: cannot load the TLS certificate: {exc}", file=sys.stderr)
        return 2
    app = create_app(settings)
    router_url = f"{settings.scheme}://{settings.host}:{settings.port}"
    env = worker_env(
        settings, os.environ, cpus=len(os.sched_getaffinity(0)), max_workers=params.max_workers
    )
    identities = app[IDENTITIES]

    async def join_token(worker_name: str) -> str:
        ttl_s = settings.join_token_ttl_s
        return await identities.mint(
            settings.endpoint, now=time.time(), ttl_s=ttl_s, worker_id=worker_name
        )

    provider = LocalProvider(
        router_url=router_url,
        endpoint=settings.endpoint,
        env=env,
        join_token=join_token,
        backend_args=backend_args,
        log_level=args.log_level,
        fork_server=args.fork_server,
    )
    await provider.prepare()  # the fork server imports while the router starts
    loop = AutoscalerLoop(make_policy(args.policy, params), provider, app[REGISTRY], app[DEMAND])
    add_autoscaler_routes(app, loop, app[STORE], settings.endpoint)
    app[ADMISSION] = lambda worker_id: any(w.name == worker_id for w in provider.workers)
    runner = connection_runner(app, settings.connection_limits)
    await runner.setup()
    await publish_params(  # the local provider's workers listen on loopback
        app[STORE],
        settings.endpoint,
        params,
        model_id=args.model_id or "",
        allow_private_workers=True,
    )
    follow_endpoint(app[STORE], loop, settings.endpoint, partial(make_policy, args.policy))
    try:
        limits = settings.connection_limits
        site = GuardedSite(runner, limits, settings.host, settings.port, ssl_context=ssl_context)
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        print(f"tgi-serverless up: cannot listen on {settings.host}:{settings.port}: {exc}")
        return 1
    stop = _stop_event()
    autoscaler: asyncio.Task[None] | None = None
    try:
        print(
            f"router listening on {router_url}; starting {args.workers} worker(s) ...", flush=True
        )
        for index in range(1, args.workers + 1):
            await provider.start_worker(f"worker-{index}")
        names = [worker.name for worker in provider.workers]
        ready = await _wait_until_ready(app[REGISTRY], names, provider, stop, args.ready_timeout)
        if ready:
            print(_banner(settings, generated, router_url, len(names)), flush=True)
            autoscaler = asyncio.create_task(loop.run(stop))
            await stop.wait()
        return 0 if ready else 1
    finally:
        if autoscaler is not None:
            await stop_task(autoscaler)
        print("stopping workers ...", file=sys.stderr, flush=True)
        await provider.stop_all()
        await runner.cleanup()
        print("stopped.", file=sys.stderr, flush=True)


def _up_on_vastai(
    args: argparse.Namespace,
    settings: RouterSettings,
    generated: frozenset[str],
    params: EndpointParams,
) -> int:
    """`up --provider vastai`: the router, and the autoscaler starting --workers Vast instances
    (and more under load, up to --max-workers); they join as they come up, in minutes."""
    try:
        config = vastai_config(args, os.environ, settings.endpoint)
    except VastSetupError as exc:
        print(f"tgi-serverless up: {exc}", file=sys.stderr)
        return 2

    router_url = f"{settings.scheme}://{settings.host}:{settings.port}"
    lines = _banner(settings, generated, router_url, 0).splitlines()
    lines[1] = (
        f"tgi-serverless is up: endpoint {settings.endpoint!r} scales on Vast.ai "
        f"({args.workers} to {params.max_workers} workers; they join in minutes)"
    )
    ending = "Ctrl-C stops the router; its Vast instances keep running."
    banner = "\n".join(ending if line == "Ctrl-C stops everything." else line for line in lines)
    return asyncio.run(
        serve_with_vastai(
            settings,
            config,
            policy=args.policy,
            choose_params=lambda stored: params,
            banner=banner,
            model_id=args.model_id or "",
        )
    )


def worker_env(
    settings: RouterSettings, base: Mapping[str, str], *, cpus: int, max_workers: int
) -> dict[str, str]:
    """The environment of the local workers: the router's ticket scheme (a worker checks
    tickets by the scheme the router signs them with), when it serves TLS its certificate's
    fingerprint, which they pin, and each worker's share of this machine's `cpus` for torch.
    Each PyWorker also gets its own join token (`LocalProvider`).

    The workers share the machine's cores, and torch's default, a thread per core in every
    backend, oversubscribes them: two backends on two cores run four threads, each spinning at
    OpenMP barriers while another holds the core it waits for (the capacity test's two workers
    answered 600 requests in 30 s so, 10 700 with a thread each). So unless `base` sets
    `OMP_NUM_THREADS`, each backend gets the cores divided among `max_workers`, at least one.
    The workers keep their start-up benchmark's figure in the state folder
    (`TGIS_BENCHMARK_CACHE`, unless `base` sets it), so a worker started again skips it."""
    env = {**base, "TGIS_TICKET_SCHEME": settings.ticket_scheme}
    env.setdefault("TGIS_BENCHMARK_CACHE", str(settings.state_dir / "benchmarks.json"))
    if settings.tls_cert is not None:
        env["TGIS_ROUTER_FINGERPRINT"] = certificate_fingerprint(settings.tls_cert)
    env.setdefault("OMP_NUM_THREADS", str(max(1, cpus // max(1, max_workers))))
    return env


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return stop


async def _wait_until_ready(
    registry: WorkerRegistry,
    names: list[str],
    provider: LocalProvider,
    stop: asyncio.Event,
    timeout_s: float,
) -> bool:
    """Poll the registry until every worker is ready; False on stop, timeout or a dead child."""
    deadline = time.monotonic() + timeout_s
    while not stop.is_set():
        dead = [w.name for w in provider.workers if w.exited()]
        if dead:
            print(f"tgi-serverless up: {', '.join(dead)} exited during start-up (see above)")
            return False
        states = {name: _state_of(registry, name) for name in names}
        if all(state == WorkerState.READY.value for state in states.values()):
            return True
        if time.monotonic() > deadline:
            print(f"tgi-serverless up: workers not ready after {timeout_s:.0f}s: {states}")
            return False
        await asyncio.sleep(0.2)
    return False


def _state_of(registry: WorkerRegistry, name: str) -> str:
    record = registry.get(name)
    return record.state.value if record else "starting"


def _banner(
    settings: RouterSettings, generated: frozenset[str], router_url: str, workers: int
) -> str:
    """What `up` prints once ready; a key appears only when this start generated it."""
    command = shlex.join([_console_script(), "generate", "Hello, world", "--stream"])
    api_key = _shown(settings.api_key, "api_key" in generated)
    admin_key = _shown(settings.admin_key, "admin_key" in generated)
    page_note = "open to all (--public-status)" if settings.public_status else "password: admin key"
    try_key = settings.api_key.get_secret_value() if "api_key" in generated else "<your API key>"
    return "\n".join(
        [
            "",
            _readiness_line(workers, settings.endpoint),
            f"  router URL  {router_url}",
            f"  API key     {api_key}",
            f"  admin key   {admin_key}   (management API, autoscaler, status page)",
            f"  status page {router_url}/ui   ({page_note})",
            "",
            "Try it from another shell:",
            f"  TGIS_API_KEY={try_key} {command} --router {router_url}",
            "",
            "Ctrl-C stops everything.",
            "",
        ]
    )


def _shown(key: SecretStr, generated: bool) -> str:
    """A key as the banner shows it: itself when this start generated it, else not at all."""
    return key.get_secret_value() if generated else "(as given; not printed)"


def _readiness_line(workers: int, endpoint: str) -> str:
    if workers == 0:
        return (
            f"tgi-serverless is up: endpoint {endpoint!r} has no worker yet; "
            "the first request starts one (scale from zero)"
        )
    return f"tgi-serverless is up: {workers} worker(s) ready on endpoint {endpoint!r}"


def _console_script() -> str:
    """How to call `tgi-serverless` from this directory: the venv's script if not on PATH."""
    script = Path(sys.executable).parent / "tgi-serverless"
    if not script.exists():
        return "tgi-serverless"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)
