"""Is the client itself the bottleneck? An event-loop lag sampler, the process's CPU share and
how often the kernel preempted it.

The sampler asks to wake every `interval` seconds and records how late it woke: a loop busy
with parsing or dispatching wakes late, and then every time stamp it takes is late too. A run
is flagged client-bound when the p99 lag or the open-loop dispatch delay passes `max_lag_s`,
or the process used more than `max_cpu` of one core.
"""

from __future__ import annotations

import asyncio
import resource
import time
from dataclasses import dataclass, field

from client.bench.stats import percentile
from client.bench.summary import ProcessHealth

__all__ = ["ClientHealth", "LagSampler", "advice", "verdict"]


@dataclass(frozen=True)
class ClientHealth:
    lag_p50_s: float
    lag_p99_s: float
    lag_max_s: float
    cpu_share: float
    """Process CPU seconds over wall seconds (1.0 = one core busy all the time)."""
    preempted_per_s: float = 0.0
    """How often the kernel took the CPU away from the process while it could run (involuntary
    context switches): many, with a small CPU share, mean other programs held the cores."""

    def figures(self) -> ProcessHealth:
        """As the summary shows it: milliseconds and shares, rounded."""
        return ProcessHealth(
            loop_lag_p50_ms=round(self.lag_p50_s * 1000, 3),
            loop_lag_p99_ms=round(self.lag_p99_s * 1000, 3),
            loop_lag_max_ms=round(self.lag_max_s * 1000, 3),
            cpu_share=round(self.cpu_share, 3),
            preempted_per_s=round(self.preempted_per_s, 1),
        )


@dataclass
class LagSampler:
    interval: float = 0.05
    lags: list[float] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    _wall0: float = 0.0
    _cpu0: float = 0.0
    _preempted0: int = 0

    def start(self) -> None:
        self._wall0, self._cpu0 = time.perf_counter(), time.process_time()
        self._preempted0 = _preemptions()
        self._task = asyncio.create_task(self._sample())

    async def stop(self) -> ClientHealth:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        wall = max(time.perf_counter() - self._wall0, 1e-9)
        cpu = (time.process_time() - self._cpu0) / wall
        preempted = (_preemptions() - self._preempted0) / wall
        lags = self.lags or [0.0]
        return ClientHealth(percentile(lags, 50), percentile(lags, 99), max(lags), cpu, preempted)

    async def _sample(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.interval)
            self.lags.append(max(0.0, time.perf_counter() - before - self.interval))


def _preemptions() -> int:
    """Involuntary context switches of this process so far."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw)


def verdict(
    health: list[ClientHealth],
    dispatch_p99_s: float | None,
    *,
    max_lag_s: float = 0.010,
    max_cpu: float = 0.85,
) -> list[str]:
    """Reasons to distrust the run's figures; empty when the client kept up."""
    reasons = []
    for shard, h in enumerate(health):
        if h.lag_p99_s > max_lag_s:
            reasons.append(
                f"process {shard}: event-loop lag p99 {h.lag_p99_s * 1000:.1f} ms "
                f"> {max_lag_s * 1000:g} ms"
            )
        if h.cpu_share > max_cpu:
            reasons.append(f"process {shard}: CPU {h.cpu_share:.0%} of a core > {max_cpu:.0%}")
    if dispatch_p99_s is not None and dispatch_p99_s > max_lag_s:
        reasons.append(
            f"dispatch delay p99 {dispatch_p99_s * 1000:.1f} ms > {max_lag_s * 1000:g} ms"
        )
    return reasons


def advice(cpu_shares: list[float], processes: int, *, busy_cpu: float = 0.5) -> str:
    """What to do about a client-bound run. A client that lagged while using little CPU was
    held up by other programs on the machine, and more client processes would not help."""
    if cpu_shares and max(cpu_shares) < busy_cpu:
        return (
            f"the client used at most {max(cpu_shares):.0%} of a core: other programs on this "
            "machine delayed it; run the bench where it has a core to itself"
        )
    return f"spread the load over more client processes: --processes {processes * 2}"
