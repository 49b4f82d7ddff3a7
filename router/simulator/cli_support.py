"""What `simulate` does with its flags: validated parameters, the trace, the run, the plot."""

from __future__ import annotations

import argparse

from pydantic import ValidationError

from common.trace import TraceError
from router.autoscaler.params import EndpointParams, ParamsError
from router.autoscaler.policies import PolicyHints, make_policy
from router.simulator.billing import BillingSpec
from router.simulator.engine import SimConfig, simulate
from router.simulator.fleet import FleetSpec
from router.simulator.plot import write_plot
from router.simulator.results import SimResult
from router.simulator.trace import load_trace

__all__ = ["SimulationInputError", "run_simulation"]


class SimulationInputError(ValueError):
    """A trace or a plot path that cannot be used; the message says why."""


def fleet_spec(args: argparse.Namespace, params: EndpointParams) -> FleetSpec:
    """The simulated workers (the flags' ranges are checked as they are parsed)."""
    return FleetSpec(
        start_s=args.start_time,
        resume_s=args.resume_time,
        max_perf=args.max_perf,
        slots=args.slots,
        failure_rate=args.failure_rate,
        drain_grace_s=params.drain_grace_s,
    )


def run_simulation(args: argparse.Namespace) -> SimResult:
    params = EndpointParams.from_assignments(args.params)
    spec = fleet_spec(args, params)
    try:
        trace = load_trace(args.trace, time_scale=args.time_scale)
    except TraceError as exc:
        raise SimulationInputError(str(exc)) from None
    hints = PolicyHints(mean_request_tokens=trace.mean_output_tokens, worker_concurrency=spec.slots)
    try:
        policy = make_policy(args.policy, params.model_copy(), hints)
    except ValidationError as exc:  # pragma: no cover - parameters were validated above
        raise ParamsError(str(exc)) from None
    active, cold = policy.at_rest()
    billing = BillingSpec(args.compute_price, args.storage_price, args.min_billed)
    config = SimConfig(
        fleet=spec, billing=billing, seed=args.seed, initial_workers=active, initial_cold=cold
    )
    result = simulate(trace, policy, config)
    if args.plot is not None:
        try:
            write_plot(args.plot, result)
        except OSError as exc:
            raise SimulationInputError(f"cannot write {args.plot}: {exc.strerror}") from None
    return result
