"""`tgi-serverless <command>`: the one console script.

Each command lives in the package it belongs to, in a module that exposes
`HELP` (one line), `add_arguments(parser)` and `run(args) -> int`. Those modules import nothing
heavy at import time (no torch, no transformers), so `--help` stays instant. A command line
that names its command imports that command's module only: a worker's start does not pay for
the router's and the bench's imports (about half a second on a busy 2-core machine).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Protocol, cast

from tgi_serverless import __version__

COMMANDS: dict[str, str] = {
    "up": "router.cli.up",
    "router": "router.cli.router",
    "endpoints": "router.cli.endpoints",
    "worker": "pyworker.command",
    "backend": "tgi_server.command",
    "generate": "client.generate_command",
    "simulate": "router.cli.simulate",
    "bench": "client.bench_command",
}

DESCRIPTION = """\
Serverless LLM endpoints on your own GPUs (or CPU), the Vast.ai way.

A router signs a routing ticket for the best worker; the client posts its request straight to
that worker, whose PyWorker checks the ticket and relays it to a TGI backend.

Start here:
  tgi-serverless up                          router + one local worker on http://127.0.0.1:8080
  tgi-serverless generate "Hello" --stream   one request through router and worker
"""


class CommandModule(Protocol):
    HELP: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def load_command(name: str) -> CommandModule:
    module: ModuleType = importlib.import_module(COMMANDS[name])
    return cast(CommandModule, module)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `only`, the other commands are named but not loaded
    (their options are unknown, which is fine: a command line names one command)."""
    parser = argparse.ArgumentParser(
        prog="tgi-serverless",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="how much to log (default: INFO)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        if only is not None and name != only:
            subparsers.add_parser(name)
            continue
        command = load_command(name)
        sub = subparsers.add_parser(
            name,
            help=command.HELP,
            description=_module_description(command),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.add_arguments(sub)
        sub.set_defaults(handler=command.run)
    return parser


def _module_description(command: CommandModule) -> str:
    doc = getattr(command, "__doc__", None)
    return doc.strip() if isinstance(doc, str) else command.HELP


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    # One line per HTTP request drowns what matters; show them only when debugging.
    access_level = logging.DEBUG if level == "DEBUG" else logging.WARNING
    logging.getLogger("aiohttp.access").setLevel(access_level)


def named_command(argv: Sequence[str]) -> str | None:
    """The command `argv` names: its first word that is a command and not an option's value
    (`--log-level` is the only top-level option that takes one); None if none."""
    words = iter(argv)
    for word in words:
        if word == "--log-level":
            next(words, None)
        elif word in COMMANDS:
            return word
        elif not word.startswith("-"):
            return None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(only=named_command(argv))
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130
