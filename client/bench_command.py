"""Load-test an endpoint, hop by hop, and report latency, throughput and goodput.

Load: open loop at a fixed rate (--rate R, Poisson arrivals, or gamma with --burstiness B), a
closed loop of N users (--concurrency N), a sweep from one user up to overload (--sweep, which
stops by itself), or a serverless scenario (--scenario scale-from-zero | idle-burst | step).
Targets: the router (route + worker, the default), the workers directly (tickets fetched ahead
of time), a TGI backend, or an OpenAI-compatible server, so one workload can be compared hop by
hop. Latency counts from each request's intended start; token counts come from the server.

Outputs (in --output-dir, default bench-results/<time>): summary.json, records.jsonl (one
timing record per request), report.html (self-contained plots). `bench compare A.json B.json`
exits 1 when B regressed beyond --threshold percent, for CI. Bad flags exit 2 before any load;
a target that does not answer stops the run with exit 1.

Examples:
  tgi-serverless bench --rate 5 --duration 60 --slo-ttft 500
  tgi-serverless bench --concurrency 16 --output-len uniform:32:256 --warmup 5
  tgi-serverless bench --sweep --duration 20
  tgi-serverless bench --target backend --url http://127.0.0.1:5001 --rate 5
  tgi-serverless bench --scenario idle-burst --idle 60 --rate 20 --duration 20
  tgi-serverless bench compare base/summary.json new/summary.json --threshold 10
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path

import pydantic

from client.bench.arguments import add_compare_arguments, add_run_arguments, build_config
from client.bench.compare import compare
from client.bench.errors import BenchError, BenchInputError
from client.bench.live import LiveView
from client.bench.loop import run_fast
from client.bench.orchestrate import run_bench
from client.bench.outputs import console_summary, write_outputs
from client.bench.summary import BenchSummary
from client.settings import command_admin_key, command_api_key

__all__ = ["HELP", "add_arguments", "run"]

HELP = "load-test an endpoint (router, worker, backend or OpenAI URL) and report the figures"
INPUT_ERROR = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser)
    actions = parser.add_subparsers(dest="bench_action", metavar="compare")
    compare_parser = actions.add_parser(
        "compare", help="compare two summary.json files; exit 1 on a regression"
    )
    add_compare_arguments(compare_parser)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "bench_action", None) == "compare":
        return _compare(args)
    try:
        api_key = command_api_key(args.api_key, os.environ)
        config = build_config(args, api_key, command_admin_key(os.environ))
    except BenchInputError as exc:
        return _fail(str(exc), INPUT_ERROR)
    live = LiveView(sys.stderr, enabled=not args.no_live)
    try:
        outcome = run_fast(run_bench(config, live))
    except BenchError as exc:
        return _fail(str(exc), 1)
    directory = args.output_dir or Path("bench-results") / _stamp()
    paths = write_outputs(outcome, directory)
    print(console_summary(outcome.summary))
    print(f"wrote {paths['summary']}, {paths['records']}, {paths['report']}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    try:
        before, after = _read_summary(args.before), _read_summary(args.after)
    except BenchInputError as exc:
        return _fail(str(exc), INPUT_ERROR)
    changes = compare(before.summary, after.summary, args.threshold / 100, args.min_ms)
    print(f"{args.before} -> {args.after} (threshold {args.threshold:g} %)")
    for change in changes:
        print(change.line())
    regressions = [c.metric for c in changes if c.regression]
    if regressions:
        print(f"regression: {', '.join(regressions)}")
        return 1
    print("no regression")
    return 0


def _read_summary(path: Path) -> BenchSummary:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchInputError(f"cannot read {path}: {exc}") from None
    try:
        return BenchSummary.model_validate_json(text)
    except pydantic.ValidationError as exc:
        if any(error["type"] == "json_invalid" for error in exc.errors()):
            raise BenchInputError(f"{path} is not JSON") from None
        raise BenchInputError(f"{path} is not a bench summary.json") from None


def _stamp() -> str:
    return datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code
