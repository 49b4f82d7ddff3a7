"""The bench's flags, and turning them into a BenchConfig. Every value is checked here, so bad
input ends with a message and exit code 2 before anything is sent."""

from __future__ import annotations

import argparse
import random
from dataclasses import replace
from pathlib import Path

from client.bench.arrivals import MAX_RATE, Phase, parse_phases
from client.bench.config import BenchConfig, Mode
from client.bench.errors import BenchInputError
from client.bench.stats import Slo
from client.bench.sweep import SweepPolicy
from client.bench.targets import TargetKind, TargetSettings
from client.bench.trace import load_trace
from client.bench.workload import RequestSpec, Workload, load_dataset, parse_length
from client.routers import parse_router_urls
from common.flags import number, whole_number

__all__ = ["add_compare_arguments", "add_run_arguments", "build_config"]

_RATE = number(above=0, at_most=MAX_RATE)
_SECONDS = number(above=0)
_NON_NEGATIVE = number(at_least=0)
_BURSTINESS = number(above=0, infinite=True, note="(1 = Poisson, inf = even)")
_FACTOR = number(above=1)
_COUNT = whole_number(at_least=1, at_most=100_000)
_REFINEMENTS = whole_number(at_least=0, at_most=10)

DEFAULT_URLS = {
    "router": "http://127.0.0.1:8080",
    "worker": "http://127.0.0.1:8080",
    "backend": "http://127.0.0.1:5001",
}


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    target = parser.add_argument_group("target")
    target.add_argument(
        "--target",
        choices=["router", "worker", "backend", "openai"],
        default="router",
        help="router: route + worker (default); worker: straight to the workers, tickets "
        "fetched ahead; backend: a TGI server's /generate_stream; openai: /v1/completions",
    )
    target.add_argument(
        "--url",
        metavar="URL",
        action="append",
        help="router URL (router, worker; default http://127.0.0.1:8080; repeat it, or give a "
        "comma-separated list, for routers to fail over to), backend URL "
        "(default http://127.0.0.1:5001) or OpenAI-compatible base URL (required)",
    )
    target.add_argument("--endpoint", default="default", metavar="NAME", help="endpoint name")
    target.add_argument("--api-key", metavar="KEY", help="API key (default: $TGIS_API_KEY)")
    target.add_argument(
        "--api-key-in-body", action="store_true",
        help='send the key as "api_key" in the route body (Vast.ai\'s router style)',
    )  # fmt: skip
    target.add_argument("--model", default="tgi", help="model name for --target openai")

    load = parser.add_argument_group(
        "load (one of --rate, --concurrency, --sweep, --scenario, --trace)"
    )
    load.add_argument("--rate", type=_RATE, metavar="R", help="open loop: requests/s")
    load.add_argument(
        "--burstiness", type=_BURSTINESS, default=1.0, metavar="B",
        help="open loop: gamma shape of arrival gaps: 1 Poisson (default), <1 burstier, inf even",
    )  # fmt: skip
    load.add_argument("--concurrency", type=_COUNT, metavar="N", help="closed loop: N users")
    load.add_argument(
        "--ramp", type=_NON_NEGATIVE, default=0.0, metavar="S",
        help="closed loop: start the users evenly over S seconds (default 0: all at once)",
    )  # fmt: skip
    load.add_argument("--sweep", action="store_true", help="from 1 user up to overload")
    load.add_argument(
        "--scenario",
        choices=["scale-from-zero", "idle-burst", "step"],
        help="serverless scenario (uses --rate, --idle, --steps)",
    )
    load.add_argument(
        "--trace", type=Path, metavar="FILE",
        help="replay a trace's arrivals and lengths (CSV: arrival_s,input_tokens,output_tokens "
        "or Azure's TIMESTAMP,ContextTokens,GeneratedTokens), its first --duration seconds",
    )  # fmt: skip
    load.add_argument(
        "--trace-speed", type=_SECONDS, default=1.0, metavar="X",
        help="replay the trace X times faster (default 1)",
    )  # fmt: skip
    load.add_argument(
        "--duration", type=_SECONDS, default=30.0, metavar="S", help="seconds (per sweep step)"
    )
    load.add_argument("--warmup", type=_NON_NEGATIVE, default=0.0, metavar="S")
    load.add_argument("--cooldown", type=_NON_NEGATIVE, default=0.0, metavar="S")
    load.add_argument("--idle", type=_SECONDS, default=30.0, metavar="S", help="idle-burst idle")
    load.add_argument("--steps", metavar="R:S,...", help="step scenario: rate:seconds list")
    load.add_argument("--sweep-factor", type=_FACTOR, default=2.0, metavar="F")
    load.add_argument("--sweep-max-steps", type=_COUNT, default=8, metavar="N")
    load.add_argument(
        "--sweep-refine", type=_REFINEMENTS, default=0, metavar="N",
        help="after the first overloaded step, N steps that halve the interval between it and "
        "the highest rate kept up (default 0)",
    )  # fmt: skip
    load.add_argument(
        "--processes", type=_processes, default=1, metavar="N|auto",
        help="client processes (default 1); auto: enough for the expected SSE events/s",
    )  # fmt: skip
    load.add_argument("--seed", type=int, default=0)
    load.add_argument("--request-timeout", type=_SECONDS, default=120.0, metavar="S")
    load.add_argument("--drain", type=_NON_NEGATIVE, default=30.0, metavar="S")

    work = parser.add_argument_group("workload")
    work.add_argument("--prompt-len", default="32", metavar="SPEC", help="N, uniform:A:B, ...")
    work.add_argument("--output-len", default="64", metavar="SPEC", help="max_new_tokens spec")
    work.add_argument("--dataset", type=Path, metavar="FILE", help=".jsonl or text prompts")

    out = parser.add_argument_group("SLOs and output")
    out.add_argument("--slo-ttft", type=_SECONDS, metavar="MS", help="TTFT bound (ms)")
    out.add_argument("--slo-itl", type=_SECONDS, metavar="MS", help="worst token gap bound (ms)")
    out.add_argument("--slo-e2e", type=_SECONDS, metavar="MS", help="end-to-end bound (ms)")
    out.add_argument("--output-dir", type=Path, metavar="DIR", help="default bench-results/TIME")
    out.add_argument("--no-live", action="store_true", help="no live status line")


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("before", type=Path, help="summary.json of the reference run")
    parser.add_argument("after", type=Path, help="summary.json of the run to check")
    parser.add_argument(
        "--threshold", type=_NON_NEGATIVE, default=10.0, metavar="PCT",
        help="relative change that counts as a regression (default 10 %%)",
    )  # fmt: skip
    parser.add_argument(
        "--min-ms", type=_NON_NEGATIVE, default=1.0, metavar="MS",
        help="latency changes smaller than this never count (default 1 ms)",
    )  # fmt: skip


def build_config(
    args: argparse.Namespace, api_key: str | None, admin_key: str | None = None
) -> BenchConfig:
    """The validated config, or BenchInputError naming what to change. `admin_key`: what the
    router's `/status` wants, for the workers' timeline."""
    mode = _mode(args)
    duration = args.duration
    if args.ramp >= duration:
        raise BenchInputError("--ramp must be shorter than --duration")
    if args.warmup + args.cooldown >= duration:
        raise BenchInputError("--warmup plus --cooldown must be shorter than --duration")
    steps = _steps(args, mode)
    workload, trace = _workload(args), None
    if args.trace is not None:
        rng = random.Random(args.seed)
        trace = load_trace(args.trace, speed=args.trace_speed, limit_s=duration, rng=rng)
        workload = replace(workload, dataset=trace.specs, in_order=True)
    return BenchConfig(
        target=replace(_target(args, api_key), admin_key=admin_key),
        workload=workload,
        mode=mode,
        rate=args.rate or 1.0,
        concurrency=args.concurrency or 1,
        ramp=args.ramp,
        burstiness=args.burstiness,
        seconds=duration,
        warmup=args.warmup,
        cooldown=args.cooldown,
        scenario=args.scenario or "step",
        idle=args.idle,
        steps=steps,
        sweep=SweepPolicy(
            factor=args.sweep_factor, max_steps=args.sweep_max_steps, refine=args.sweep_refine
        ),
        slo=Slo(_ms(args.slo_ttft), _ms(args.slo_itl), _ms(args.slo_e2e)),
        processes=args.processes,
        seed=args.seed,
        request_timeout=args.request_timeout,
        drain=args.drain,
        trace=trace,
    )


def _mode(args: argparse.Namespace) -> Mode:
    chosen = [
        name
        for name, given in (
            ("--concurrency", args.concurrency is not None),
            ("--sweep", args.sweep),
            ("--scenario", args.scenario is not None),
            ("--trace", args.trace is not None),
        )
        if given
    ]
    if len(chosen) > 1:
        raise BenchInputError(f"choose one of {', '.join(chosen)}")
    if args.trace is not None:
        if args.rate is not None or args.dataset is not None:
            raise BenchInputError(
                "--trace brings its own arrivals and lengths: drop --rate and --dataset"
            )
        return "trace"
    if args.concurrency is not None and args.rate is not None:
        raise BenchInputError(
            "--rate (open loop) and --concurrency (closed loop) exclude each other"
        )
    if args.sweep:
        return "sweep"
    if args.scenario is not None:
        if args.scenario != "step" and args.rate is None:
            raise BenchInputError(f"--scenario {args.scenario} needs --rate")
        return "scenario"
    return "rate" if args.rate is not None else "concurrency"


def _steps(args: argparse.Namespace, mode: Mode) -> tuple[Phase, ...]:
    if mode == "scenario" and args.scenario == "step":
        if not args.steps:
            raise BenchInputError("--scenario step needs --steps RATE:SECONDS,... (e.g. 1:10,5:10)")
        return parse_phases(args.steps)
    if args.steps:
        raise BenchInputError("--steps is only for --scenario step")
    return ()


def _target(args: argparse.Namespace, api_key: str | None) -> TargetSettings:
    kind: TargetKind = args.target
    given = args.url or DEFAULT_URLS.get(kind)
    if given is None:
        raise BenchInputError("--target openai needs --url (the server's base URL)")
    try:
        url, *more_routers = parse_router_urls(given)
    except ValueError as exc:
        raise BenchInputError(f"--url: {exc}") from None
    if more_routers and kind not in ("router", "worker"):
        raise BenchInputError(f"--target {kind} takes one --url; several are routers")
    return TargetSettings(
        kind=kind,
        url=url,
        more_routers=tuple(more_routers),
        endpoint=args.endpoint,
        api_key=api_key,
        model=args.model,
        idle_timeout=min(60.0, args.request_timeout),
        route_wait=args.request_timeout,
        api_key_in_body=args.api_key_in_body,
    )


def _workload(args: argparse.Namespace) -> Workload:
    prompt_len = parse_length(args.prompt_len, "--prompt-len")
    output_len = parse_length(args.output_len, "--output-len")
    dataset: tuple[RequestSpec, ...] = ()
    if args.dataset is not None:
        dataset = load_dataset(args.dataset, output_len, random.Random(args.seed))
    return Workload(prompt_len, output_len, dataset)


def _ms(value: float | None) -> float | None:
    return None if value is None else value / 1000


def _processes(text: str) -> int:
    """A process count, or 0 for "auto"."""
    return 0 if text == "auto" else _COUNT(text)
