"""Our autoscaling policy against the Vast-, KPA- and SkyPilot-like baselines, in the simulator.

    .venv/bin/python -m benchmarks.autoscaler_sim [--traces DIR] [--min-billed S] [--speed N]

For every trace in data/traces/ (synthetic and Azure), each policy replays it on a virtual
clock against simulated workers (60 s cold start, 5 s resume from cold, 400 tokens/s and 8
slots each) with the same endpoint parameters. It prints SLO attainment (share of requests
whose queue time is <= target_queue_time), worker-seconds, starts, resumes, flaps and the cost
as a provider bills it (Vast's terms by default: by the second, from the start or resume call,
storage for every worker that exists; --min-billed sets a least billed spell), and the anchor:
our cost as a ratio of the cheapest baseline that reaches 99 % attainment on that trace.
Goal: >= 99 % attainment on the bursty, spike and Azure traces at <= 0.85x that anchor.

--speed N replays N requests (default 1,000,000) against 1,000 simulated workers and prints
the wall time, against the anchor of a bare loop over the same arrivals.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from common.trace import Trace
from router.autoscaler.params import EndpointParams
from router.autoscaler.policies import PolicyHints, make_policy, policy_names
from router.simulator.billing import BillingSpec
from router.simulator.engine import SimConfig, simulate
from router.simulator.results import SimResult
from router.simulator.trace import load_trace

GOAL_ATTAINMENT = 0.99
GOAL_COST_RATIO = 0.85
PARAMS = EndpointParams(cold_workers=10, max_workers=32, max_queue_time=10.0)


def run_policy(trace: Trace, name: str, params: EndpointParams, billing: BillingSpec) -> SimResult:
    policy = make_policy(name, params, PolicyHints(mean_request_tokens=trace.mean_output_tokens))
    active, cold = policy.at_rest()
    config = SimConfig(billing=billing, initial_workers=active, initial_cold=cold)
    return simulate(trace, policy, config)


def compare(trace: Trace, billing: BillingSpec) -> None:
    results = {name: run_policy(trace, name, PARAMS, billing) for name in policy_names()}
    print(f"\n{trace.name} ({len(trace)} requests, {trace.duration_s:.0f} s)")
    for name, result in results.items():
        print(
            f"  {name:9s} SLO {result.slo_attainment:8.2%}  worker-s {result.worker_seconds:6.0f}"
            f"  p99 queue {result.p99_queue_time_s:6.2f} s  starts {result.cold_starts:4d}"
            f"  resumes {result.resumes:4d}  flaps {result.flaps:3d}  cost {result.cost:6.2f}"
            f" (billed {result.billed_seconds:6.0f} s, disk {result.storage_seconds:6.0f} s)"
        )
    ours = results["default"]
    able = [r for n, r in results.items() if n != "default" and r.slo_attainment >= 0.99]
    met = ours.slo_attainment >= GOAL_ATTAINMENT
    if not able:
        print(f"  anchor: no baseline reaches 99 %; ours {'meets' if met else 'misses'} 99 %")
        return
    best = min(able, key=lambda r: r.cost)
    ratio = ours.cost / best.cost
    verdict = "meets" if met and ratio <= GOAL_COST_RATIO else "misses"
    print(
        f"  anchor: {best.policy} (cost {best.cost:.2f}); ours = {ratio:.3f}x "
        f"({verdict} the goal of >= 99 % at <= {GOAL_COST_RATIO}x the cost)"
    )


def speed(n: int, workers: int = 1000) -> None:
    rng = random.Random(1)
    arrivals, t = [], 0.0
    for _ in range(n):
        t += rng.expovariate(1800.0)
        arrivals.append(t)
    outputs = [max(1, int(rng.lognormvariate(4.9, 0.8))) for _ in range(n)]
    trace = Trace("speed", arrivals, [500] * n, outputs)
    started = time.perf_counter()
    total = 0.0
    for arrival, cost in zip(trace.arrival_s, trace.output_tokens, strict=True):
        total += arrival * cost  # the anchor: touch every request once
    anchor = time.perf_counter() - started
    params = EndpointParams(min_workers=workers, max_workers=workers, cold_workers=0)
    started = time.perf_counter()
    result = simulate(trace, make_policy("default", params))
    wall = time.perf_counter() - started
    print(
        f"\nspeed: {n} requests, {workers} workers, {result.duration_s:.0f} simulated s: "
        f"{wall:.1f} s wall ({n / wall:,.0f} requests/s; {wall / anchor:.0f}x a bare loop "
        f"over the trace, {anchor:.3f} s); goal < 60 s: {'met' if wall < 60 else 'missed'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=Path, default=Path("data/traces"))
    parser.add_argument("--speed", type=int, nargs="?", const=1_000_000, default=None)
    parser.add_argument("--skip-traces", action="store_true")
    parser.add_argument("--min-billed", type=float, default=0.0, help="least billed spell, s")
    args = parser.parse_args()
    if not args.skip_traces:
        billing = BillingSpec(min_billed_s=args.min_billed)
        print(
            f"parameters: {PARAMS.model_dump(include={'cold_workers', 'max_workers'})}, "
            f"max_queue_time {PARAMS.max_queue_time:g} s, "
            f"target_queue_time {PARAMS.target_queue_time:g} s; billing: {billing}"
        )
        for path in sorted(args.traces.glob("*.csv")):
            compare(load_trace(path), billing)
    if args.speed:
        speed(args.speed)


if __name__ == "__main__":
    main()
