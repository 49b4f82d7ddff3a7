"""Backend supervision: wait until TGI answers `/health`, learn its limits, measure `max_perf`.

Readiness comes from the backend itself (its `/health` and `/info`), never from a guess:
a worker that reports `ready` has already served a real request.
"""

from __future__ import annotations

import asyncio
import logging
import math
import statistics
import time
from collections.abc import Awaitable, Callable

import aiohttp
from pydantic import ValidationError

from protocol import GenerateResponse, Info

__all__ = ["BENCHMARK_PROMPT", "BackendProbe", "BackendProbeError"]

log = logging.getLogger(__name__)

BENCHMARK_PROMPT = "A worker measures how many tokens per second its backend can generate."

WARM_UP_TOKENS = 4


class BackendProbeError(Exception):
    """The backend answered, but not as TGI does."""


class BackendProbe:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        backend_url: str,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._session = session
        self._url = backend_url.rstrip("/")
        self._sleep = sleep
        self._clock = clock

    async def healthy(self) -> bool:
        try:
            timeout = aiohttp.ClientTimeout(total=5)
            async with self._session.get(f"{self._url}/health", timeout=timeout) as response:
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def wait_until_healthy(self, poll_s: float = 0.5, log_every: int = 60) -> None:
        polls = 0
        while not await self.healthy():
            if polls % log_every == 0:
                log.info("waiting for the backend at %s to become healthy", self._url)
            polls += 1
            await self._sleep(poll_s)

    async def info(self) -> Info:
        timeout = aiohttp.ClientTimeout(total=10)
        async with self._session.get(f"{self._url}/info", timeout=timeout) as response:
            if response.status != 200:
                raise BackendProbeError(f"GET /info answered {response.status}")
            try:
                return Info.model_validate(await response.json())
            except (ValidationError, ValueError) as exc:
                raise BackendProbeError(f"GET /info is not TGI's: {exc}") from None

    async def measure_tokens_per_second(
        self,
        max_new_tokens: int,
        concurrency: int = 1,
        repeats: int = 1,
        budget_s: float = math.inf,
    ) -> float:
        """A warm-up round (`concurrency` requests of at most WARM_UP_TOKENS tokens: it wakes
        the backend's paths, its speed does not count), then up to `repeats` rounds of
        `concurrency` requests of `max_new_tokens` at once; the median round's generated
        tokens / wall time (one slow or fast round does not decide). A round starts only while
        the timed rounds so far took less than `budget_s` (the first always does): on a slow
        backend the benchmark, which delays every cold start, stays short.

        Every answer must be a 200 with TGI's details: an error is never mistaken for a fast
        success, and tokens are counted as generated (a stop at EOS counts what it made).
        """
        await self._round(min(max_new_tokens, WARM_UP_TOKENS), concurrency)
        started, rates = self._clock(), list[float]()
        while not rates or (len(rates) < repeats and self._clock() - started < budget_s):
            rates.append(await self._round(max_new_tokens, concurrency))
        return statistics.median(rates)

    async def _round(self, max_new_tokens: int, concurrency: int) -> float:
        """`concurrency` requests at once: generated tokens / wall time."""
        started = self._clock()
        results = await asyncio.gather(
            *(self._generate(max_new_tokens) for _ in range(concurrency)), return_exceptions=True
        )
        elapsed = self._clock() - started
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise BackendProbeError(
                f"{len(failures)} of {concurrency} benchmark requests failed: {failures[0]}"
            )
        generated = sum(r for r in results if isinstance(r, int))
        return generated / elapsed if elapsed > 0 else 0.0

    async def _generate(self, max_new_tokens: int) -> int:
        payload = {
            "inputs": BENCHMARK_PROMPT,
            "parameters": {"max_new_tokens": max_new_tokens, "details": True},
        }
        timeout = aiohttp.ClientTimeout(total=300)
        async with self._session.post(
            f"{self._url}/generate", json=payload, timeout=timeout
        ) as response:
            if response.status != 200:
                body = await response.text()
                raise BackendProbeError(
                    f"benchmark request answered {response.status}: {body[:200]}"
                )
            try:
                result = GenerateResponse.model_validate(await response.json())
            except (ValidationError, ValueError) as exc:
                raise BackendProbeError(f"benchmark answer is not TGI's: {exc}") from None
        if result.details is None:
            raise BackendProbeError("benchmark answer has no details")
        return result.details.generated_tokens
