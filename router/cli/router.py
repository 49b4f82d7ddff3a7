"""Run the router alone: it signs routing tickets for its endpoints' workers.

Clients POST /route/ with {"endpoint", "cost"} and the endpoint's API key and get a signed
ticket for the ready worker with the least expected wait. Workers report to POST
/worker_status/ and fetch the public keys from GET /keys (or /pubkey/). The signing key is
created on first start and kept in the state directory, so tickets stay valid across restarts.

Endpoints are resources: `default` (or --endpoint) always exists; `tgi-serverless endpoints`
creates, lists, updates and deletes more through the management API (/api/v0/...), which
the admin key guards. Endpoints, keys and the reqnum high-water mark live in the state dir.
Status: GET /ui (HTML), GET /status (JSON), both with the admin key (a browser asks for it as
the password, any user name); GET /metrics (Prometheus), open.

Environment (names exactly as spelled; all of them in docs/router.md, Settings):
  TGIS_API_KEY        the default endpoint's API key (generated and printed when unset)
  TGIS_ADMIN_KEY      the operator's key: management API, autoscaler, /status and /ui
                      (generated and printed when unset; a key given is never printed)
  TGIS_WORKER_TOKEN   a shared token for anonymous workers (Vast's PyWorker's `mtoken`);
                      needs TGIS_ALLOW_ANONYMOUS_WORKERS=true
  TGIS_ALLOW_ANONYMOUS_WORKERS  accept workers without a credential of their own (weaker:
                      docs/router.md, Worker identity); off: each worker registers with a join
                      token (`tgi-serverless endpoints join-token NAME`, its TGIS_JOIN_TOKEN)
  TGIS_ALLOW_PRIVATE_WORKERS  true: the default endpoint accepts workers on loopback and
                      private addresses (workers on this machine or your own network)
  TGIS_STATE_DIR      where keys and endpoints live (default ~/.local/state/tgi-serverless)
  TGIS_TICKET_SCHEME  ed25519 (default), vast or vast-url: sign Vast's RSA tickets instead,
                      for Vast.ai's own PyWorker (see docs/vast.md)
  TGIS_PUBLIC_STATUS  true: /status, /ui and GET /autoscaler* without the admin key
                      (a private network only: they name every worker and its URL)
  TGIS_METRICS_ADDRESS  HOST:PORT to serve /metrics on instead of the main port
  TGIS_TLS_CERT, TGIS_TLS_KEY  serve HTTPS with this certificate (PEM) and key
  TGIS_STATE_URL, TGIS_STATE_SECRET  several routers on one Redis (--state; docs/scaleout.md)

Gateway mode: POST /endpoints/<name>/generate (also /generate_stream, /, /v1/chat/completions,
/v1/completions) with `Authorization: Bearer <API key>`: the router proxies to a worker itself.

Facing the internet: serve TLS, keep the admin key to yourself, give each worker a join token;
docs/security.md lists what to set.

Autoscaling on Vast.ai (--provider vastai, docs/deploy.md): the router's autoscaler creates,
stops, starts and destroys Vast instances from a Vast template (--vast-template), each with its
own join token, as the endpoint's parameters ask (`tgi-serverless endpoints update NAME --set
...`, or --set here). Vast's API key comes from VAST_API_KEY.

Autoscaling on Kubernetes (--provider kubernetes, docs/deploy.md): each worker is a Pod made
from a worker Pod template (--k8s-worker-template) with a model-cache volume claim and a join
token Secret of its own; parked workers keep their claim, not their Pod. The chart in
templates/k8s/ runs this router in a cluster.

Examples:
  TGIS_API_KEY=secret tgi-serverless router --port 8080
  VAST_API_KEY=... tgi-serverless router --host 0.0.0.0 --provider vastai \\
      --vast-template <hash> --set min_workers=1 --set max_workers=4
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import ssl
import sys
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr, ValidationError

from protocol.ticket_scheme import TicketScheme
from router.autoscaler.params import EndpointParams, ParamsError, add_params_flag
from router.autoscaler.policies import policy_names
from router.cli.kubernetes import (
    KubernetesSetupError,
    add_kubernetes_arguments,
    api_configuration,
    kubernetes_config,
    serve_with_kubernetes,
)
from router.cli.vastai import VastSetupError, add_vastai_arguments, serve_with_vastai, vastai_config
from router.settings import RouterSettings
from router.tls import certificate_fingerprint, server_ssl_context

if TYPE_CHECKING:
    from aiohttp import web

HELP = "run the router alone: sign routing tickets, take worker reports, publish keys"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_router_arguments(parser, default_port="8080")
    parser.add_argument(
        "--state",
        dest="state_url",
        metavar="redis://HOST:PORT/DB",
        help="share state with the other routers on this Redis (needs TGIS_STATE_SECRET; "
        "docs/scaleout.md); default $TGIS_STATE_URL, else in memory",
    )
    scaling = parser.add_argument_group("autoscaler (with --provider)")
    scaling.add_argument(
        "--provider",
        choices=["vastai", "kubernetes"],
        help="run the autoscaler with this provider (default: none; workers join by themselves)",
    )
    scaling.add_argument(
        "--policy", default="default", choices=policy_names(), help="autoscaling policy"
    )
    add_params_flag(scaling, help="an endpoint parameter to store (min_workers, ...); repeatable")
    add_vastai_arguments(parser)
    add_kubernetes_arguments(parser)


def add_router_arguments(parser: argparse.ArgumentParser, *, default_port: str) -> None:
    parser.add_argument("--port", type=int, help=f"port to listen on (default {default_port})")
    parser.add_argument("--host", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--api-key", help="the endpoint's API key (default $TGIS_API_KEY)")
    parser.add_argument("--endpoint", help="the endpoint's name (default 'default')")
    parser.add_argument(
        "--admin-key", help="key for the management API /api/v0 (default $TGIS_ADMIN_KEY)"
    )
    parser.add_argument(
        "--ticket-scheme",
        choices=[scheme.value for scheme in TicketScheme],
        help="how tickets are signed: ed25519 (native, default), vast (RSA, Vast's PyWorker v2) "
        "or vast-url (RSA, the vastai package's PyWorker); default $TGIS_TICKET_SCHEME",
    )
    parser.add_argument("--state-dir", type=Path, help="where keys, endpoints and reqnums are kept")
    parser.add_argument(
        "--allow-anonymous-workers",
        action="store_true",
        default=None,
        help="accept status reports from workers without their own credential (with the shared "
        "TGIS_WORKER_TOKEN if set, else from anyone): any such worker may speak for the others",
    )
    parser.add_argument(
        "--route-timeout",
        type=float,
        help="seconds /route/ waits for a ready worker before answering 'waiting' (default 10)",
    )
    parser.add_argument(
        "--public-status",
        action="store_true",
        default=None,
        help="answer /status, /ui and GET /autoscaler* without the admin key (private networks "
        "only: they name every worker and its URL); default $TGIS_PUBLIC_STATUS",
    )
    parser.add_argument(
        "--metrics-address",
        metavar="HOST:PORT",
        help="serve /metrics there instead of on the main port (default $TGIS_METRICS_ADDRESS)",
    )
    parser.add_argument(
        "--tls-cert", type=Path, help="serve HTTPS with this PEM certificate ($TGIS_TLS_CERT)"
    )
    parser.add_argument("--tls-key", type=Path, help="its private key, PEM ($TGIS_TLS_KEY)")


def build_settings(
    args: argparse.Namespace, environ: Mapping[str, str], **extra: object
) -> tuple[RouterSettings, frozenset[str]]:
    """Settings from the variables `environ` sets (docs/router.md), the flags given and `extra`
    over them; an API key and an admin key are generated when none is set. Also the names of
    the keys generated here (`api_key`, `admin_key`): only those may be printed."""
    settings = RouterSettings.from_command_line(
        args, environ, route_timeout_s=args.route_timeout, **extra
    )
    generated = {
        name: SecretStr(secrets.token_urlsafe(24))
        for name in ("api_key", "admin_key")
        if not getattr(settings, name).get_secret_value()
    }
    return settings.model_copy(update=generated), frozenset(generated)


def generated_key_lines(settings: RouterSettings, generated: frozenset[str]) -> list[str]:
    """What to print of the keys: those this start generated, none given by flag or variable
    (logs outlive the terminal)."""
    lines = []
    if "api_key" in generated:
        key = settings.api_key.get_secret_value()
        lines.append(f"API key for endpoint {settings.endpoint!r}: {key}")
    if "admin_key" in generated:
        key = settings.admin_key.get_secret_value()
        lines.append(f"admin key (management API, /status, /ui): {key}")
    return lines


def run(args: argparse.Namespace) -> int:
    from router.http.app import create_app
    from router.http.bodies import describe_validation

    try:
        settings, generated = build_settings(args, os.environ)
    except ValidationError as exc:
        print(f"tgi-serverless router: {describe_validation(exc)}", file=sys.stderr)
        return 2
    try:
        ssl_context = server_ssl_context(settings.tls_cert, settings.tls_key)
        pin = certificate_fingerprint(settings.tls_cert) if settings.tls_cert else None
    except (OSError, ValueError) as exc:
        print(f"tgi-serverless router: cannot load the TLS certificate: {exc}", file=sys.stderr)
        return 2
    if args.provider == "vastai":
        return _run_with_vastai(args, settings, generated)
    if args.provider == "kubernetes":
        return _run_with_kubernetes(args, settings, generated)
    if args.params:
        print("tgi-serverless router: --set needs --provider (the autoscaler)", file=sys.stderr)
        return 2
    for line in generated_key_lines(settings, generated):
        print(line)
    print(f"router on {settings.scheme}://{settings.host}:{settings.port}", flush=True)
    if pin is not None:
        print(f"its certificate's SHA-256 (workers: TGIS_ROUTER_FINGERPRINT): {pin}", flush=True)
    asyncio.run(_serve(create_app(settings), settings, ssl_context))
    return 0


async def _serve(
    app: web.Application, settings: RouterSettings, ssl_context: ssl.SSLContext | None
) -> None:
    """Serve `app` behind its connection limits until SIGINT or SIGTERM."""
    from httpedge.connections import GuardedSite, connection_runner

    stop = asyncio.Event()  # set from the start: a SIGTERM while starting stops it cleanly too
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    limits = settings.connection_limits
    runner = connection_runner(app, limits)
    await runner.setup()
    try:
        site = GuardedSite(runner, limits, settings.host, settings.port, ssl_context=ssl_context)
        await site.start()
        await stop.wait()
    finally:
        await runner.cleanup()


def _chosen_params(assignments: list[str], stored: EndpointParams) -> EndpointParams:
    """The endpoint's stored parameters with the command line's `--set` assignments over them."""
    return EndpointParams.from_assignments(assignments, stored.model_dump())


def _autoscaling_banner(settings: RouterSettings, generated: frozenset[str], where: str) -> str:
    router_url = f"{settings.scheme}://{settings.host}:{settings.port}"
    keys = generated_key_lines(settings, generated)
    return "\n".join([*keys, f"router on {router_url}; autoscaling on {where}"])


def _run_with_vastai(
    args: argparse.Namespace, settings: RouterSettings, generated: frozenset[str]
) -> int:
    """The router with its autoscaler on Vast.ai: `--set` changes the stored parameters."""
    import asyncio

    try:
        config = vastai_config(args, os.environ, settings.endpoint)
        EndpointParams.from_assignments(args.params)  # refuse a bad --set before starting
    except (VastSetupError, ParamsError) as exc:
        print(f"tgi-serverless router: {exc}", file=sys.stderr)
        return 2

    choose = partial(_chosen_params, args.params)
    banner = _autoscaling_banner(settings, generated, "Vast.ai")
    return asyncio.run(
        serve_with_vastai(settings, config, policy=args.policy, choose_params=choose, banner=banner)
    )


def _run_with_kubernetes(
    args: argparse.Namespace, settings: RouterSettings, generated: frozenset[str]
) -> int:
    """The router with its autoscaler on Kubernetes: `--set` changes the stored parameters."""
    import asyncio

    try:
        config = kubernetes_config(args, settings.endpoint)
        EndpointParams.from_assignments(args.params)  # refuse a bad --set before starting
        configuration = api_configuration(args.k8s_api, os.environ)
    except (KubernetesSetupError, ParamsError) as exc:
        print(f"tgi-serverless router: {exc}", file=sys.stderr)
        return 2

    choose = partial(_chosen_params, args.params)
    banner = _autoscaling_banner(settings, generated, "Kubernetes")
    serving = serve_with_kubernetes(
        settings,
        config,
        configuration,
        router_url=args.k8s_router_url,
        policy=args.policy,
        choose_params=choose,
        banner=banner,
    )
    return asyncio.run(serving)
