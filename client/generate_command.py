"""Send one prompt through the router and a worker, and print the generated text.

What happens: the command asks the router (POST ROUTER/route/) for a signed ticket to spend
--max-new-tokens tokens on the endpoint, waiting while the endpoint scales up from zero; then it
posts the prompt with that ticket straight to the worker the router chose (/generate, or
/generate_stream with --stream, which prints tokens as they arrive).

The API key is --api-key, or else the environment variable TGIS_API_KEY
(`tgi-serverless up` prints the key it generated). A router (or worker) on HTTPS with a
private CA: --ca-file CA.pem, or TGIS_CA_FILE. Several routers (--router repeated, or a
comma-separated list; else TGIS_ROUTER_URL): a router that does not answer, or answers 5xx, is
skipped for the next one before any byte of the answer.

Examples:
  export TGIS_API_KEY=<key printed by tgi-serverless up>
  tgi-serverless generate "What is a GPU?"
  tgi-serverless generate "Tell me a story" --stream --max-new-tokens 200 --temperature 0.7
  tgi-serverless generate "Hello" --router http://10.0.0.5:8080 --endpoint llama --details
  tgi-serverless generate "Hello" --router http://10.0.0.5:8080 --router http://10.0.0.6:8080
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import sys
from collections.abc import AsyncIterator

from client._async import DEFAULT_ENDPOINT, DEFAULT_ROUTER_URL, AsyncClient
from client.errors import (
    AuthenticationError,
    ConnectionFailed,
    EndpointNotFound,
    NoCapacityError,
    OverloadedError,
    TGISError,
    TicketRejected,
    ValidationError,
)
from client.generation import DEFAULT_MAX_NEW_TOKENS, GenerateOptions
from client.routing import PollPolicy
from client.settings import (
    API_KEY_VARIABLE,
    command_api_key,
    command_router_urls,
    command_ssl_context,
)
from common.flags import number, whole_number
from protocol.tgi import Details, GenerateResponse, StreamDetails, StreamResponse

__all__ = ["HELP", "add_arguments", "run"]

HELP = "send one prompt through the router and a worker and print the generated text"


DEFAULT_WAIT = 120.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", help="the text to continue")
    parser.add_argument(
        "--router",
        metavar="URL",
        action="append",
        help="router URL; repeat it (or give a comma-separated list) for routers to fail over "
        f"to before the first byte (default: $TGIS_ROUTER_URL, else {DEFAULT_ROUTER_URL})",
    )
    parser.add_argument(
        "--endpoint",
        metavar="NAME",
        default=DEFAULT_ENDPOINT,
        help=f"endpoint name (default: {DEFAULT_ENDPOINT})",
    )
    parser.add_argument(
        "--api-key", metavar="KEY", help=f"the endpoint's API key (default: ${API_KEY_VARIABLE})"
    )
    parser.add_argument(
        "--ca-file",
        metavar="PEM",
        help="CA certificate(s) an HTTPS router must chain to (default: $TGIS_CA_FILE, else "
        "the system's)",
    )
    parser.add_argument(
        "--max-new-tokens",
        type=whole_number(at_least=1),
        metavar="N",
        default=DEFAULT_MAX_NEW_TOKENS,
        help=f"most tokens to generate; also the ticket's cost (default: {DEFAULT_MAX_NEW_TOKENS})",
    )
    parser.add_argument("--stream", action="store_true", help="print tokens as they arrive")
    parser.add_argument(
        "--temperature",
        type=number(at_least=0, note="0: greedy"),
        metavar="T",
        help="sampling temperature; 0 decodes greedily",
    )
    parser.add_argument(
        "--seed", type=whole_number(at_least=0), metavar="N", help="random seed for sampling"
    )
    parser.add_argument(
        "--details", action="store_true", help="also print why and after how many tokens it ended"
    )
    parser.add_argument(
        "--wait",
        type=number(above=0),
        default=DEFAULT_WAIT,
        metavar="SECONDS",
        help=f"how long to wait for a worker to become ready (default: {DEFAULT_WAIT:g})",
    )


def run(args: argparse.Namespace) -> int:
    api_key = command_api_key(args.api_key, os.environ)
    if not api_key:
        _fail(
            f"no API key: pass --api-key KEY or set {API_KEY_VARIABLE} "
            "(`tgi-serverless up` prints it)"
        )
        return 1
    try:
        ssl_context = command_ssl_context(args.ca_file, os.environ)
    except OSError as exc:
        _fail(f"cannot read the CA file: {exc}")
        return 1
    try:
        args.router = command_router_urls(args.router, os.environ, DEFAULT_ROUTER_URL)
    except ValueError as exc:
        _fail(str(exc))
        return 1
    try:
        asyncio.run(_generate(args, api_key, ssl_context))
    except TGISError as exc:
        _fail(_explain(exc, args))
        return 1
    return 0


async def _generate(
    args: argparse.Namespace, api_key: str, ssl_context: ssl.SSLContext | None
) -> None:
    polling = PollPolicy(timeout=args.wait)
    options = _generate_options(args)
    async with AsyncClient(
        args.router, args.endpoint, api_key, polling=polling, ssl_context=ssl_context
    ) as client:
        if args.stream:
            stream = client.generate_stream(
                args.prompt, max_new_tokens=args.max_new_tokens, **options
            )
            await _print_stream(stream, details=args.details)
        else:
            response = await client.generate(
                args.prompt, max_new_tokens=args.max_new_tokens, **options
            )
            _print_response(response, details=args.details)


def _generate_options(args: argparse.Namespace) -> GenerateOptions:
    options = GenerateOptions()
    if args.temperature is not None:
        options["temperature"] = args.temperature
    if args.seed is not None:
        options["seed"] = args.seed
    if args.details:
        options["details"] = True
    return options


def _print_response(response: GenerateResponse, *, details: bool) -> None:
    print(response.generated_text)
    if details and response.details is not None:
        _print_details(response.details)


async def _print_stream(stream: AsyncIterator[StreamResponse], *, details: bool) -> None:
    """Print each token as it arrives; end the line even when the stream fails midway."""
    last: StreamResponse | None = None
    try:
        async for event in stream:
            if not event.token.special:
                print(event.token.text, end="", flush=True)
            last = event
    finally:
        if last is not None:
            print(flush=True)
    if details and last is not None and last.details is not None:
        _print_details(last.details)


def _print_details(details: Details | StreamDetails) -> None:
    print(
        f"finish_reason={details.finish_reason} generated_tokens={details.generated_tokens} "
        f"seed={details.seed}",
        file=sys.stderr,
    )


def _explain(exc: TGISError, args: argparse.Namespace) -> str:
    hint = _hint(exc, args)
    return f"{exc}; {hint}" if hint else str(exc)


def _hint(exc: TGISError, args: argparse.Namespace) -> str:
    """What the user should change, for the errors a user can do something about."""
    if isinstance(exc, AuthenticationError):
        return f"check --api-key or ${API_KEY_VARIABLE}"
    if isinstance(exc, EndpointNotFound):
        return f"check --endpoint (it was {args.endpoint!r})"
    if isinstance(exc, ConnectionFailed) and exc.origin == "router":
        where = ", ".join(args.router)
        return f"is a router running at {where}? start one with `tgi-serverless up`"
    if isinstance(exc, NoCapacityError):
        return "check the workers' logs, or wait longer with --wait SECONDS"
    if isinstance(exc, OverloadedError):
        later = f"in {exc.retry_after:g} s" if exc.retry_after is not None else "later"
        return f"the endpoint is at capacity: try again {later}"
    if isinstance(exc, TicketRejected):
        return "the worker refused the router's ticket: check that they share keys and clocks"
    if isinstance(exc, ValidationError):
        return "check the prompt and the generation options"
    return ""


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
