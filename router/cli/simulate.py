"""Replay a request trace against simulated workers, through the router's routing logic and an
autoscaling policy, on a virtual clock (an hour of traffic takes seconds).

Traces are CSV: `arrival_s,input_tokens,output_tokens` (seconds from the start), or Azure's
LLM inference trace format (`TIMESTAMP,ContextTokens,GeneratedTokens`) as it is. data/traces/
ships steady, diurnal, bursty and spike-from-zero traces and the two Azure 2023 traces.

Policies: default (ours), vast (Vast-like), kpa (Knative-KPA-like), skypilot (SkyPilot-like).
Endpoint parameters (Vast's names) are set with --set NAME=VALUE, e.g. --set max_workers=32;
an out-of-range value exits with status 2 and names the valid range.

Example:
  tgi-serverless simulate --trace data/traces/synthetic_bursty.csv --policy default
  tgi-serverless simulate --trace data/traces/azure_llm_conv_2023.csv --policy kpa --json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common.flags import number, whole_number
from router.autoscaler.params import add_params_flag

HELP = "replay a request trace against simulated workers and an autoscaling policy"

POLICY_NAMES = ("default", "vast", "kpa", "skypilot")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    at_least_0, above_0 = number(at_least=0), number(above=0)
    parser.add_argument("--trace", type=Path, required=True, help="trace CSV file")
    parser.add_argument(
        "--policy", default="default", choices=POLICY_NAMES, help="policy (default 'default')"
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.add_argument(
        "--time-scale",
        type=above_0,
        default=1.0,
        help="multiply arrival times: 0.5 replays twice as fast (default 1)",
    )
    parser.add_argument("--plot", type=Path, help="write load and workers over time to an SVG")
    add_params_flag(
        parser,
        help="an endpoint parameter (min_load, target_util, cold_mult, cold_workers, "
        "max_workers, target_queue_time, inactivity_timeout, ...); repeatable",
    )
    fleet = parser.add_argument_group("simulated workers")
    fleet.add_argument("--start-time", type=at_least_0, default=60.0, help="create to ready, s")
    fleet.add_argument("--resume-time", type=at_least_0, default=5.0, help="cold to ready, s")
    fleet.add_argument("--max-perf", type=above_0, default=400.0, help="tokens/s per worker")
    fleet.add_argument(
        "--slots", type=whole_number(at_least=1), default=8, help="requests a worker serves at once"
    )
    fleet.add_argument(
        "--failure-rate",
        type=number(at_least=0, below=1),
        default=0.0,
        help="share of failed starts, in [0, 1)",
    )
    fleet.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    bill = parser.add_argument_group(
        "billing (Vast's terms: by the second, no minimum; the prices are assumptions)"
    )
    bill.add_argument(
        "--compute-price", type=at_least_0, default=1.0, help="per worker-hour billed (default 1)"
    )
    bill.add_argument(
        "--storage-price",
        type=at_least_0,
        default=0.02,
        help="a worker's disk, per hour it exists, parked or not (default 0.02)",
    )
    bill.add_argument(
        "--min-billed",
        type=at_least_0,
        default=0.0,
        help="the least a start or a resume is billed, s (default 0: Vast bills by the second)",
    )


def run(args: argparse.Namespace) -> int:
    from router.autoscaler.params import ParamsError
    from router.simulator.cli_support import SimulationInputError, run_simulation

    try:
        result = run_simulation(args)
    except (ParamsError, SimulationInputError) as exc:
        print(f"tgi-serverless simulate: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.to_json(), sort_keys=True))
    else:
        from router.simulator.results import format_result

        print(format_result(result))
    return 0
