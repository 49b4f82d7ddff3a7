"""Everything one bench run needs, validated: built by the command from its flags."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from client.bench.arrivals import Phase
from client.bench.scenarios import Scenario
from client.bench.stats import Slo
from client.bench.sweep import SweepPolicy
from client.bench.targets import TargetSettings
from client.bench.trace import TraceReplay
from client.bench.workload import Workload

__all__ = ["BenchConfig", "Mode"]

Mode = Literal["rate", "concurrency", "sweep", "scenario", "trace"]


@dataclass(frozen=True)
class BenchConfig:
    target: TargetSettings
    workload: Workload
    mode: Mode
    rate: float = 1.0
    concurrency: int = 1
    ramp: float = 0.0
    burstiness: float = 1.0
    seconds: float = 30.0
    warmup: float = 0.0
    cooldown: float = 0.0
    scenario: Scenario = "step"
    idle: float = 30.0
    steps: tuple[Phase, ...] = ()
    sweep: SweepPolicy = field(default_factory=SweepPolicy)
    slo: Slo = field(default_factory=Slo)
    processes: int = 1
    """Client processes; 0 = as many as the expected event rate needs."""
    seed: int = 0
    request_timeout: float = 120.0
    drain: float = 30.0
    status_interval: float = 0.5
    sample_status: bool = True
    trace: TraceReplay | None = None
    """Replay: its arrivals, with its requests as the in-order dataset of `workload`."""
