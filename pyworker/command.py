"""Run a PyWorker: the ticket-checking proxy in front of one TGI backend.

It fetches the router's public keys, waits until the backend answers /health, measures how
many tokens per second it sustains (max_perf), then reports `ready` to the router and serves
POST /generate and /generate_stream with {"auth_data": <ticket>, "payload": <TGI body>}.
Nothing reaches the backend without a valid ticket for this worker.

Environment (Vast.ai's names, so its templates work unchanged):
  WORKER_PORT          port to listen on (default 3000)
  REPORT_ADDR          router URL(s), comma-separated (default http://127.0.0.1:8080)
  CONTAINER_ID         this worker's id (default: <hostname>-<port>)
  PUBLIC_IPADDR, VAST_TCP_PORT_<WORKER_PORT>
                       the public address clients reach this worker at
  TGIS_PUBLIC_URL      the public URL, when not on Vast (default http://127.0.0.1:<port>)
  TGIS_BACKEND_URL     the TGI backend (default http://127.0.0.1:5001)
  TGIS_ENDPOINT        the endpoint this worker serves (default "default")
  TGIS_WORKER_TOKEN    token the router expects on status reports

Example:
  tgi-serverless backend --port 5001 &
  tgi-serverless worker --port 3000 --backend-url http://127.0.0.1:5001 --router http://127.0.0.1:8080
"""

from __future__ import annotations

import argparse
import os
import socket

from pyworker.settings import WorkerSettings, public_url_from_env

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


def build_settings(args: argparse.Namespace) -> WorkerSettings:
    flags = {
        "port": args.port,
        "host": args.host,
        "backend_url": args.backend_url,
        "report_addr": args.router,
        "public_url": args.public_url,
        "worker_id": args.worker_id,
        "endpoint": args.endpoint,
    }
    settings = WorkerSettings(**{name: value for name, value in flags.items() if value is not None})
    derived: dict[str, str] = {}
    if not settings.public_url:
        derived["public_url"] = public_url_from_env(os.environ, settings.port)
    if not settings.worker_id:
        derived["worker_id"] = f"{socket.gethostname()}-{settings.port}"
    return settings.model_copy(update=derived)


def run(args: argparse.Namespace) -> int:
    from aiohttp import web

    from pyworker.app import create_app

    settings = build_settings(args)
    app = create_app(settings)
    print(f"PyWorker {settings.worker_id} on {settings.advertised_url}", flush=True)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        print=None,
        handler_cancellation=True,
        shutdown_timeout=10.0,
    )
    return 0
