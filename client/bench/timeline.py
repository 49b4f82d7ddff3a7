"""The router's workers on the run's timeline: `GET /status` (`protocol.RouterStatus`, with the
router's admin key when one is given) sampled every `interval` seconds, counted by state per
endpoint. A sample that fails (no answer, not 200,
not a router's status body) is recorded as such, never fatal."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
import pydantic

from protocol.router_status import RouterStatus

__all__ = ["StatusSampler", "WorkerSample", "count_states"]


@dataclass(frozen=True)
class WorkerSample:
    t: float
    states: dict[str, int]
    """Workers by state (for the sampled endpoint); empty when the sample failed."""
    ok: bool = True


def count_states(status: RouterStatus, endpoint: str) -> dict[str, int]:
    """Workers by state of `endpoint` in a router's `/status` body; {} when it is not there."""
    entry = status.endpoint(endpoint)
    if entry is None:
        return {}
    return dict(sorted(Counter(worker.state for worker in entry.workers).items()))


@dataclass
class StatusSampler:
    router_url: str
    endpoint: str
    t0: float
    interval: float = 0.5
    admin_key: str | None = field(default=None, repr=False)
    samples: list[WorkerSample] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> StatusSampler:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        url = self.router_url.rstrip("/") + "/status"
        timeout = aiohttp.ClientTimeout(total=max(self.interval, 1.0))
        headers = {"Authorization": f"Bearer {self.admin_key}"} if self.admin_key else None
        async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:
            while True:
                self.samples.append(await self._sample(session, url))
                await asyncio.sleep(self.interval)

    async def _sample(self, session: aiohttp.ClientSession, url: str) -> WorkerSample:
        now = time.perf_counter() - self.t0
        try:
            async with session.get(url) as response:
                if response.status != 200:
                    return WorkerSample(now, {}, ok=False)
                status = RouterStatus.model_validate_json(await response.read())
        except (aiohttp.ClientError, TimeoutError, pydantic.ValidationError):
            return WorkerSample(now, {}, ok=False)
        return WorkerSample(now, count_states(status, self.endpoint))
