"""Driving load at a target from one process: open loop (requests start at their scheduled
times, whether or not earlier ones finished) or closed loop (N users, each sending its next
request when the previous one ends). Every request gets a record, failures included; when the
dispatch is over, in-flight requests get `drain_s` seconds to finish and are then cancelled.
Connection failures with nothing working for a few seconds stop the run with TargetDown.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp

from client.bench.errors import RunAborted, TargetDown
from client.bench.progress import Progress
from client.bench.records import RequestRecord
from client.bench.selfcheck import ClientHealth, LagSampler
from client.bench.targets import Failed, Target
from client.bench.watchdog import DownWatch
from client.bench.workload import RequestSpec, Workload

__all__ = ["Runner", "RunnerSettings"]


@dataclass(frozen=True)
class RunnerSettings:
    request_timeout: float = 120.0
    drain_s: float = 30.0
    shard: int = 0


class Runner:
    """One process's share of the load. Several `dispatch` / `closed_loop` calls may follow
    each other; they share the clock (seconds since `t0`, a `time.perf_counter()` value)."""

    def __init__(
        self,
        target: Target,
        workload: Workload,
        rng: random.Random,
        settings: RunnerSettings,
        t0: float,
    ) -> None:
        self.target = target
        self.workload = workload
        self.rng = rng
        self.settings = settings
        self.t0 = t0
        self.records: list[RequestRecord] = []
        self.progress = Progress()
        self.watch = DownWatch()
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._sampler = LagSampler()
        self._aborted = asyncio.Event()
        self._fatal: str | None = None

    def clock(self) -> float:
        return time.perf_counter() - self.t0

    async def __aenter__(self) -> Runner:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10.0)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=timeout, read_bufsize=2**20
        )
        self._sampler.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._cancel_all()
        await self.target.close()
        if self._session is not None:
            await self._session.close()

    async def health(self) -> ClientHealth:
        return await self._sampler.stop()

    async def wait_until(self, offset: float) -> None:
        delay = offset - self.clock()
        if delay > 0:
            await asyncio.sleep(delay)

    async def dispatch(self, offsets: Sequence[float], phase: int = 0) -> None:
        """Start one request at each offset (seconds on this runner's clock); return once the
        last one has started (then `drain`)."""
        for offset in offsets:
            await self.wait_until(offset)
            self.check_abort()
            self.spawn(offset, phase)

    async def wait_all(self) -> None:
        """Wait for every in-flight request, however long (each is bounded by its timeout)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.check_abort()

    async def closed_loop(
        self, users: int, until: float, phase: int = 0, ramp_s: float = 0.0
    ) -> None:
        """`users` concurrent users sending back to back until `until`; user i starts at
        i x ramp_s / users, so that their requests do not all begin (and end) together."""
        starts = [i * ramp_s / users for i in range(users)]
        await asyncio.gather(*(self._user(start, until, phase) for start in starts))
        self.check_abort()

    async def drain(self) -> None:
        """Wait up to `drain_s` for in-flight requests, then cancel the rest."""
        if self._tasks:
            done, _ = await asyncio.wait(set(self._tasks), timeout=self.settings.drain_s)
            del done
        await self._cancel_all()
        self.check_abort()

    async def _user(self, start: float, until: float, phase: int) -> None:
        await self.wait_until(start)
        while self.clock() < until and not self._aborted.is_set():
            await self._one(self.clock(), self.workload.sample(self.rng), phase)

    def spawn(self, intended: float, phase: int) -> None:
        spec = self.workload.sample(self.rng)
        task = asyncio.create_task(self._one(intended, spec, phase))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _one(self, intended: float, spec: RequestSpec, phase: int) -> None:
        assert self._session is not None, "use the runner as an async context manager"
        record = RequestRecord(
            index=len(self.records),
            intended=intended,
            prompt_len=spec.prompt_len,
            max_new_tokens=spec.max_new_tokens,
            shard=self.settings.shard,
            phase=phase,
        )
        self.records.append(record)
        self.progress.sent += 1
        try:
            async with asyncio.timeout(self.settings.request_timeout):
                await self.target.send(self._session, spec, record, self.clock)
            record.outcome = "ok"
        except Failed as failure:
            record.outcome, record.error = failure.outcome, str(failure)
            record.status = failure.status or record.status
            if failure.fatal:
                self._fatal = str(failure)
                self._aborted.set()
        except TimeoutError:
            record.outcome = "timeout"
            record.error = f"no complete answer within {self.settings.request_timeout:g} s"
        except asyncio.CancelledError:
            record.outcome, record.error = "cancelled", "still running when the drain ended"
            raise
        finally:
            self._finish(record)

    def _finish(self, record: RequestRecord) -> None:
        if record.end is None:
            record.end = self.clock()
        self.progress.finished(record)
        reached = record.status is not None or bool(record.tokens)
        if record.outcome != "cancelled":
            self.watch.observe(record.end, reached=reached, error=record.error)
        if self.watch.down():
            self._aborted.set()

    def check_abort(self) -> None:
        if self._fatal is not None:
            raise RunAborted(self._fatal)
        if self._aborted.is_set():
            raise TargetDown(f"the target stopped answering: {self.watch.last_error}")

    async def _cancel_all(self) -> None:
        tasks = set(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
