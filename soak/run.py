"""`python -m soak`: the stack under steady load for minutes, then a verdict (`make soak`).

    python -m soak [--seconds 600] [--load 0.8] [--capacity R] [--workers 2] [--output-dir DIR]

1. `tgi-serverless up --workers 2`, as a user starts it (`soak.stack`);
2. its capacity, measured by `tgi-serverless bench --sweep --sweep-refine 3` through the
   router: the most load it serves before a queue builds (`soak.capacity`), unless
   `--capacity` gives it;
3. `tgi-serverless bench --rate` at `--load` x capacity through the router for `--seconds`,
   while `soak.processes` samples every process's RSS and open file descriptors (a line of
   them on stderr every tenth of the run, under the bench's own progress line); each process
   is also read at rest, after `--rest-seconds` of idle just before the load and just after;
4. the verdict (`soak.verdict`): a table, then the same as JSON, on stdout and in
   DIR/verdict.json (every sample in DIR/samples.json). Exit 0 when every check passed, 1
   when one failed, 2 when the stack or the bench could not run.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from client.bench.records import RequestRecord
from client.bench.summary import BenchSummary
from soak.capacity import REFINING_STEPS, capacity
from soak.processes import ProcessSampler
from soak.report import progress_line, verdict_table
from soak.stack import Stack, StackError
from soak.verdict import AtRest, Limits, judge

__all__ = ["main"]

PASSED, FAILED, NOT_RUN = 0, 1, 2


class SoakError(Exception):
    """A step before the verdict failed (the stack, the bench)."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m soak", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="soak length (default 600)")
    parser.add_argument("--load", type=float, default=0.8, help="share of capacity (default 0.8)")
    parser.add_argument("--capacity", type=float, help="req/s: skip the sweep, take this")
    parser.add_argument("--sweep-seconds", type=float, default=20.0, help="per sweep step")
    parser.add_argument("--workers", type=int, default=2, help="local workers (default 2)")
    parser.add_argument(
        "--burstiness",
        default="1",
        help="the bench's arrival gaps, a gamma shape: 1 Poisson (default), inf evenly spaced",
    )
    parser.add_argument("--output-dir", type=Path, help="default soak-results/<time>")
    parser.add_argument(
        "--rest-seconds", type=float, default=30.0, help="idle before and after the load"
    )
    parser.add_argument("--ready-timeout", type=float, default=300.0, help="seconds for `up`")
    limits = parser.add_argument_group("verdict limits")
    limits.add_argument("--max-lost", type=int, default=Limits.max_lost)
    limits.add_argument("--max-rss-growth", type=float, default=Limits.max_rss_growth)
    limits.add_argument("--fd-slack", type=int, default=Limits.fd_slack)
    limits.add_argument("--max-p99-drift", type=float, default=Limits.max_p99_drift)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    directory = args.output_dir or Path("soak-results") / _stamp()
    directory.mkdir(parents=True, exist_ok=True)
    keys = {"TGIS_API_KEY": secrets.token_urlsafe(24), "TGIS_ADMIN_KEY": secrets.token_urlsafe(24)}
    env = {**os.environ, **keys}
    limits = Limits(args.max_lost, args.max_rss_growth, args.fd_slack, args.max_p99_drift)
    try:
        with Stack(args.workers, directory, env) as stack:
            _say(f"starting `up --workers {args.workers}` (log: {stack.log_path}) ...")
            stack.wait_ready(args.ready_timeout)
            measured = args.capacity or _measure_capacity(stack.url, args, directory, env)
            rate = args.load * measured
            _say(
                f"capacity {measured:.2f} req/s; soaking at {rate:.2f} req/s for {args.seconds:g} s"
            )
            records, sampler, at_rest = _soak(stack, rate, args, directory, env)
    except (SoakError, StackError) as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return NOT_RUN
    _write_samples(directory / "samples.json", sampler, at_rest)
    verdict = judge(
        records,
        sampler.samples,
        at_rest,
        seconds=args.seconds,
        capacity_rps=measured,
        rate_rps=rate,
        limits=limits,
        machine_load=sampler.machine_load,
        worker_urls=sampler.worker_urls,
    )
    document = verdict.model_dump_json(by_alias=True, indent=2)
    (directory / "verdict.json").write_text(document + "\n")
    print(verdict_table(verdict))
    print(document)
    return PASSED if verdict.passed else FAILED


def _measure_capacity(
    url: str, args: argparse.Namespace, directory: Path, env: Mapping[str, str]
) -> float:
    output = directory / "capacity"
    sweep = ["--sweep", "--sweep-refine", str(REFINING_STEPS)]
    _say(f"measuring capacity: `tgi-serverless bench {' '.join(sweep)}` through the router ...")
    bench = _bench(url, [*sweep, "--duration", f"{args.sweep_seconds:g}"], output, env)
    if bench.wait() != 0:
        raise SoakError(f"the capacity sweep failed (exit {bench.returncode})")
    summary = BenchSummary.model_validate_json((output / "summary.json").read_text())
    try:
        return capacity(summary)
    except ValueError as exc:
        raise SoakError(str(exc)) from None


def _soak(
    stack: Stack, rate: float, args: argparse.Namespace, directory: Path, env: Mapping[str, str]
) -> tuple[list[RequestRecord], ProcessSampler, AtRest]:
    """The soak itself: the bench at `rate` for `args.seconds`, every process sampled 120 times
    over the run (every 5 s of 10 minutes), a progress line every tenth of it; each process
    read at rest, `args.rest_seconds` after the load before it and after it."""
    output, seconds = directory / "soak", args.seconds
    sampler = ProcessSampler(stack.process.pid, interval_s=seconds / 120)
    _say(f"at rest for {args.rest_seconds:g} s before the load ...")
    time.sleep(args.rest_seconds)
    before = sampler.snapshot()
    sampler.start(time.monotonic())
    try:
        load = ["--rate", f"{rate:.3f}", "--duration", f"{seconds:g}"]
        load += ["--burstiness", args.burstiness]
        bench = _bench(stack.url, load, output, env)
        while bench.poll() is None:
            try:
                bench.wait(seconds / 10)
            except subprocess.TimeoutExpired:
                _say(progress_line(seconds, sampler.latest()))
    finally:
        sampler.stop()
    if bench.returncode != 0:
        raise SoakError(f"the soak's bench failed (exit {bench.returncode})")
    _say(f"at rest for {args.rest_seconds:g} s after the load ...")
    time.sleep(args.rest_seconds)
    at_rest = AtRest(before, sampler.snapshot())
    lines = (output / "records.jsonl").read_text().splitlines()
    return [RequestRecord.from_json(json.loads(line)) for line in lines], sampler, at_rest


def _write_samples(path: Path, sampler: ProcessSampler, at_rest: AtRest) -> None:
    """Every sample, for a reader who wants the curves behind the verdict."""
    document = {
        "processes": {
            name: [dataclasses.asdict(sample) for sample in samples]
            for name, samples in sampler.samples.items()
        },
        "at_rest": {
            "before": {name: dataclasses.asdict(s) for name, s in at_rest.before.items()},
            "after": {name: dataclasses.asdict(s) for name, s in at_rest.after.items()},
        },
        "machine_load": sampler.machine_load,
        "worker_urls": sampler.worker_urls,
    }
    path.write_text(json.dumps(document, indent=1) + "\n")


def _bench(
    url: str, load: list[str], output: Path, env: Mapping[str, str]
) -> subprocess.Popen[bytes]:
    """`tgi-serverless bench` through the router at `url`, its progress on our stderr; the keys
    come from `env` (TGIS_API_KEY, TGIS_ADMIN_KEY), never the command line."""
    command = [sys.executable, "-m", "tgi_serverless", "bench", "--url", url, *load]
    return subprocess.Popen([*command, "--output-dir", str(output)], env=dict(env))


def _say(line: str) -> None:
    """A line on stderr; on a terminal, it first clears the bench's live line."""
    prefix = "\r\x1b[2K" if sys.stderr.isatty() else ""
    print(prefix + line, file=sys.stderr, flush=True)


def _stamp() -> str:
    return datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
