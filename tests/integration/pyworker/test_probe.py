"""The start-up benchmark: a warm-up round that does not count, then timed rounds, the median."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from pyworker.backend.probe import WARM_UP_TOKENS, BackendProbe
from tests.clock import FakeClock


class RoundBackend:
    """/generate that takes `seconds[i]` of the fake clock for its i-th request (one request a
    round, at concurrency 1) and generates what it is asked."""

    def __init__(self, clock: FakeClock, seconds: list[float]) -> None:
        self.clock, self.seconds = clock, list(seconds)
        self.asked: list[int] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/generate", self.generate)
        return app

    async def generate(self, request: web.Request) -> web.Response:
        tokens = (await request.json())["parameters"]["max_new_tokens"]
        self.asked.append(tokens)
        self.clock.now += self.seconds.pop(0)
        details: dict[str, Any] = {
            "finish_reason": "length",
            "generated_tokens": tokens,
            "seed": None,
        }
        return web.json_response({"generated_text": "x" * tokens, "details": details})


async def measure(
    aiohttp_server: Any, seconds: list[float], **options: Any
) -> tuple[float, RoundBackend]:
    clock = FakeClock(0.0)
    backend = RoundBackend(clock, seconds)
    server: TestServer = await aiohttp_server(backend.app())
    async with aiohttp.ClientSession() as session:
        probe = BackendProbe(session, str(server.make_url("")), clock=clock)
        return await probe.measure_tokens_per_second(16, concurrency=1, **options), backend


async def test_the_warm_up_is_short_and_does_not_count_and_the_median_round_does(
    aiohttp_server: Any,
) -> None:
    # warm-up (slow, as a first request is), then rounds at 160, 8 and 16 tokens/s
    perf, backend = await measure(aiohttp_server, [30.0, 0.1, 2.0, 1.0], repeats=3)
    assert perf == pytest.approx(16.0)
    assert backend.asked == [WARM_UP_TOKENS, 16, 16, 16]


async def test_no_round_starts_once_the_budget_is_spent(aiohttp_server: Any) -> None:
    perf, backend = await measure(aiohttp_server, [1.0, 1.5, 1.0, 1.0], repeats=3, budget_s=2.0)
    assert len(backend.asked) == 3  # the warm-up and two timed rounds (1.5 s < 2 s, then 2.5 s)
    assert perf == pytest.approx((16 / 1.5 + 16 / 1.0) / 2)


async def test_the_first_round_runs_whatever_the_budget(aiohttp_server: Any) -> None:
    perf, backend = await measure(aiohttp_server, [1.0, 4.0], repeats=3, budget_s=0.5)
    assert (perf, len(backend.asked)) == (4.0, 2)
