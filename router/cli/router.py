"""Run the router alone: it signs routing tickets for its endpoints' workers.

Clients POST /route/ with {"endpoint", "cost"} and the endpoint's API key and get a signed
ticket for the ready worker with the least expected wait. Workers report to POST
/worker_status/ and fetch the public keys from GET /keys (or /pubkey/). The signing key is
created on first start and kept in the state directory, so tickets stay valid across restarts.

Endpoints are resources: `default` (or --endpoint) always exists; `tgi-serverless endpoints`
creates, lists, updates and deletes more through the management API (/api/v0/...), which
the admin key guards. Endpoints, keys and the reqnum high-water mark live in the state dir.
Status: GET /ui (HTML), GET /status (JSON), GET /metrics (Prometheus).

Environment (names exactly as spelled; all of them in docs/router.md, Settings):
  TGIS_API_KEY        the default endpoint's API key (generated and printed when unset)
  TGIS_ADMIN_KEY      the management API's key (generated and printed when unset)
  TGIS_WORKER_TOKEN   a shared token for anonymous workers (Vast's PyWorker's `mtoken`);
                      needs TGIS_ALLOW_ANONYMOUS_WORKERS=true
  TGIS_ALLOW_ANONYMOUS_WORKERS  accept workers without a credential of their own (weaker:
                      docs/router.md, Worker identity); off: each worker registers with a join
                      token (`tgi-serverless endpoints join-token NAME`, its TGIS_JOIN_TOKEN)
  TGIS_STATE_DIR      where keys and endpoints live (default ~/.local/state/tgi-serverless)
  TGIS_TICKET_SCHEME  ed25519 (default), vast or vast-url: sign Vast's RSA tickets instead,
                      for Vast.ai's own PyWorker (see docs/vast.md)

Gateway mode: POST /endpoints/<name>/generate (also /generate_stream, /, /v1/chat/completions,
/v1/completions) with `Authorization: Bearer <API key>`: the router proxies to a worker itself.

Example:
  TGIS_API_KEY=secret tgi-serverless router --port 8080
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections.abc import Mapping
from pathlib import Path

from pydantic import SecretStr, ValidationError

from protocol.ticket_scheme import TicketScheme
from router.settings import RouterSettings

HELP = "run the router alone: sign routing tickets, take worker reports, publish keys"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_router_arguments(parser, default_port="8080")


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


def build_settings(
    args: argparse.Namespace, environ: Mapping[str, str], **extra: object
) -> RouterSettings:
    """Settings from the variables `environ` sets (docs/router.md), the flags given and `extra`
    over them; an API key and an admin key are generated when none is set."""
    settings = RouterSettings.from_command_line(
        args, environ, route_timeout_s=args.route_timeout, **extra
    )
    if not settings.api_key.get_secret_value():
        settings = settings.model_copy(update={"api_key": SecretStr(secrets.token_urlsafe(24))})
    if not settings.admin_key.get_secret_value():
        settings = settings.model_copy(update={"admin_key": SecretStr(secrets.token_urlsafe(24))})
    return settings


def run(args: argparse.Namespace) -> int:
    from aiohttp import web

    from router.http.app import create_app
    from router.http.bodies import describe_validation

    try:
        settings = build_settings(args, os.environ)
    except ValidationError as exc:
        print(f"tgi-serverless router: {describe_validation(exc)}", file=sys.stderr)
        return 2
    if not args.api_key:
        print(f"API key for endpoint {settings.endpoint!r}: {settings.api_key.get_secret_value()}")
    if not args.admin_key:
        print(f"admin key (management API): {settings.admin_key.get_secret_value()}")
    print(f"router on http://{settings.host}:{settings.port}", flush=True)
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        print=None,
        handler_cancellation=True,
    )
    return 0
