"""Load runs over real sockets: records, outcomes, targets, processes, a target that is down."""

from __future__ import annotations

import io
import random
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from client.bench.arrivals import Phase
from client.bench.config import BenchConfig
from client.bench.errors import RunAborted, TargetDown
from client.bench.execute import execute
from client.bench.live import LiveView
from client.bench.orchestrate import run_bench
from client.bench.plan import LoadPlan
from client.bench.runner import RunnerSettings
from client.bench.stats import Slo, Window, summarize
from client.bench.sweep import SweepPolicy
from client.bench.targets import TargetKind, TargetSettings
from client.bench.timeline import StatusSampler
from client.bench.trace import replay
from client.bench.workload import LengthDist, Workload
from common.trace import parse_trace
from tests.fakes.router_status import status_with
from tests.integration.client.bench.conftest import Served
from tests.integration.client.fakes import API_KEY, FakeRouter, FakeWorker, Scripted
from tests.ports import free_port

WORKLOAD = Workload(LengthDist("fixed", 4), LengthDist("fixed", 6))
QUICK = RunnerSettings(request_timeout=10, drain_s=5)


def settings(kind: TargetKind, url: str) -> TargetSettings:
    return TargetSettings(kind, url, api_key=API_KEY, idle_timeout=5, route_wait=5)


async def test_an_open_loop_records_every_request_with_server_token_counts(
    paced: Served,
) -> None:
    plan = LoadPlan("open", (Phase(20, 1.0),), burstiness=1.0, seed=1)
    result = await execute(plan, settings("backend", paced.url), WORKLOAD, QUICK)

    assert len(result.records) == 20
    for record in result.records:
        assert record.outcome == "ok", record.error
        assert record.sent is not None
        assert record.sent >= record.intended
        assert len(record.tokens) == 6
        assert record.output_tokens == 6
        assert record.ttft is not None
        assert 0.025 <= record.ttft < 2.0
    summary = summarize(result.records, Window(0, 1.0), Slo())
    p50 = summary.itl.p50_ms
    assert p50 is not None
    assert 5 <= p50 <= 100
    assert result.health[0].cpu_share >= 0
    assert result.health[0].preempted_per_s >= 0
    assert result.health[0].figures().preempted_per_s is not None


async def test_a_closed_loop_against_an_openai_server_uses_its_usage_counts(
    paced: Served,
) -> None:
    plan = LoadPlan("closed", users=3, seconds=0.8)
    result = await execute(plan, settings("openai", paced.url), WORKLOAD, QUICK)

    assert len(result.records) >= 3
    assert {r.outcome for r in result.records} == {"ok"}
    assert {r.output_tokens for r in result.records} == {6}


async def test_429_answers_are_overloaded_not_errors(paced: Served) -> None:
    paced.fake.status = 429
    plan = LoadPlan("open", (Phase(10, 0.5),), seed=2)
    result = await execute(plan, settings("backend", paced.url), WORKLOAD, QUICK)

    assert {(r.outcome, r.status) for r in result.records} == {("overloaded", 429)}
    assert summarize(result.records, Window(0, 1), Slo()).requests.overloaded == 5


async def test_a_target_that_refuses_connections_stops_the_run_quickly() -> None:
    plan = LoadPlan("open", (Phase(20, 60.0),), seed=3)
    started = time.monotonic()
    with pytest.raises(TargetDown, match="stopped answering"):
        await execute(plan, settings("backend", f"http://127.0.0.1:{free_port()}"), WORKLOAD, QUICK)
    assert time.monotonic() - started < 30


@pytest.fixture
async def routed(aiohttp_server: AiohttpServer) -> FakeRouter:
    from protocol.keys import SigningKey

    key = SigningKey.generate()
    worker = FakeWorker(key)
    worker_server = await aiohttp_server(worker.app(), host="127.0.0.1")
    worker.url = str(worker_server.make_url("")).rstrip("/")
    router = FakeRouter(key, worker)
    router.waits = 0
    app = router.app()
    app.router.add_get("/health", _ok)
    router_server = await aiohttp_server(app, host="127.0.0.1")
    router.url = str(router_server.make_url("")).rstrip("/")
    return router


async def _ok(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def test_through_the_router_each_request_is_routed_then_streamed(
    routed: FakeRouter,
) -> None:
    routed.waits = 1  # one "no worker yet" answer per request: the bench polls
    plan = LoadPlan("open", (Phase(4, 0.5),), seed=4)
    result = await execute(plan, settings("router", routed.url), WORKLOAD, QUICK)

    assert [r.outcome for r in result.records] == ["ok", "ok"]
    for record in result.records:
        assert record.worker == routed.worker.url
        assert record.route_time is not None
        assert record.route_time >= 0.2  # one poll
        assert record.time_to_headers is not None
        assert record.e2e is not None
        assert 0 <= record.time_to_headers < record.e2e - record.route_time
        assert len(record.tokens) == 5
    assert len(routed.worker.seen) == 2
    polled = [seen.body.get("request_idx") for seen in routed.seen]
    assert polled.count(None) == 2
    assert len(polled) == 4


async def test_straight_to_the_worker_tickets_come_ahead_and_are_not_timed(
    routed: FakeRouter,
) -> None:
    plan = LoadPlan("open", (Phase(4, 0.5),), seed=5)
    result = await execute(plan, settings("worker", routed.url), WORKLOAD, QUICK)

    assert [r.outcome for r in result.records] == ["ok", "ok"]
    assert all(r.routed is None and r.worker == routed.worker.url for r in result.records)


async def test_two_client_processes_share_one_timeline(paced: Served) -> None:
    plan = LoadPlan("open", (Phase(20, 1.0),), seed=6)
    result = await execute(plan, settings("backend", paced.url), WORKLOAD, QUICK, processes=2)

    assert {r.shard for r in result.records} == {0, 1}
    assert len(result.records) == 20
    assert {r.outcome for r in result.records} == {"ok"}
    assert len(result.health) == 2
    assert max(r.intended for r in result.records) < 1.0


async def test_the_status_sampler_counts_workers_by_state(aiohttp_server: AiohttpServer) -> None:
    states = ["loading"]
    bodies: list[object] = []

    async def status(request: web.Request) -> web.Response:
        if bodies:
            return web.json_response(bodies.pop())
        return web.json_response(status_with({"default": states}).model_dump())

    app = web.Application()
    app.router.add_get("/status", status)
    server = await aiohttp_server(app, host="127.0.0.1")
    sampler = StatusSampler(str(server.make_url("")), "default", time.perf_counter(), 0.05)
    async with sampler:
        await _until(lambda: len(sampler.samples) >= 2)
        bodies.append({"endpoints": [{"name": "default", "workers": [{"state": "ready"}]}]})
        await _until(lambda: not sampler.samples[-1].ok)  # not a router's status body
        states[:] = ["ready", "ready"]
        await _until(lambda: sampler.samples[-1].states == {"ready": 2})
    assert sampler.samples[0].states == {"loading": 1}
    assert sampler.samples[-1].ok


async def _until(condition: Any, limit: float = 10.0) -> None:
    import asyncio

    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def config(target: TargetSettings, **kw: Any) -> BenchConfig:
    options: dict[str, Any] = {
        "workload": WORKLOAD, "request_timeout": 10.0, "drain": 5.0, "status_interval": 0.1,
    }  # fmt: skip
    return BenchConfig(target=target, **{**options, **kw})


async def test_a_step_scenario_reports_each_phase(paced: Served) -> None:
    steps = (Phase(4, 0.5), Phase(10, 0.5))
    cfg = config(settings("backend", paced.url), mode="scenario", scenario="step", steps=steps)
    outcome = await run_bench(cfg, LiveView(io.StringIO(), enabled=False))

    phases = outcome.summary.phases
    assert phases is not None
    assert [p.requests.total for p in phases] == [2, 5]
    assert outcome.summary.summary.requests.ok == 7


async def test_idle_then_burst_sends_nothing_then_the_burst(paced: Served) -> None:
    cfg = config(
        settings("backend", paced.url), mode="scenario", scenario="idle-burst", rate=10.0,
        seconds=0.5, idle=0.6,
    )  # fmt: skip
    outcome = await run_bench(cfg, LiveView(io.StringIO(), enabled=False))

    idle, burst = outcome.summary.phases or []
    assert (idle.rate, idle.requests.total) == (0, 0)
    assert (burst.rate, burst.requests.ok) == (10.0, 5)
    assert min(r.intended for r in outcome.records) >= 0.6
    assert min(r.sent or 0.0 for r in outcome.records) >= 0.6


async def test_a_trace_is_replayed_at_its_times_with_its_lengths_over_two_processes(
    paced: Served, tmp_path: Path
) -> None:
    rows = [(0.05 * i, 3, 2 + i % 4) for i in range(12)]
    text = "arrival_s,input_tokens,output_tokens\n" + "".join(f"{a},{i},{o}\n" for a, i, o in rows)
    trace = replay(parse_trace(text, "t.csv"), speed=0.5, limit_s=1.0, rng=random.Random(0))
    workload = Workload(LengthDist("fixed", 1), LengthDist("fixed", 1), trace.specs, in_order=True)
    cfg = config(
        settings("backend", paced.url), mode="trace", trace=trace, seconds=1.0, processes=2,
        workload=workload,
    )  # fmt: skip
    outcome = await run_bench(cfg, LiveView(io.StringIO(), enabled=False))

    records = sorted(outcome.records, key=lambda r: r.intended)
    assert len(records) == 10  # 0.1 s apart at half speed: the first 10 within 1 s
    assert {r.shard for r in records} == {0, 1}
    first = records[0].intended
    for record, (at, _, out) in zip(records, rows, strict=False):
        assert record.intended - first == pytest.approx(at / 0.5, abs=1e-6)
        assert record.max_new_tokens == out
        assert record.output_tokens == out  # the server made as many as the trace asked
    assert "trace replay of t.csv at 0.5x: 10 requests" in outcome.summary.load.description


async def test_scale_from_zero_reports_cold_and_warm_with_the_worker_timeline(
    routed: FakeRouter,
) -> None:
    routed.waits = 2  # the first request waits for "a worker to start"
    target = settings("router", routed.url)
    cfg = config(target, mode="scenario", scenario="scale-from-zero", rate=4.0, seconds=0.5)
    outcome = await run_bench(cfg, LiveView(io.StringIO(), enabled=False))

    scenario, workers = outcome.summary.scenario, outcome.summary.workers
    assert scenario is not None
    assert scenario.cold_outcome == "ok"
    assert scenario.cold_route_ms is not None
    assert scenario.cold_route_ms >= 400
    assert scenario.warm_ttft.count == 2
    assert workers is not None
    assert workers.failed_samples >= 1  # the fake router has no /status


async def test_a_sweep_climbs_until_the_target_is_overloaded_then_stops(paced: Served) -> None:
    paced.fake.capacity = 2  # beyond two streams at once, 429
    cfg = config(
        settings("backend", paced.url),
        mode="sweep",
        seconds=1.0,
        sweep=SweepPolicy(factor=2.0, max_steps=6),
    )
    outcome = await run_bench(cfg, LiveView(io.StringIO(), enabled=False))

    steps = outcome.summary.sweep
    assert steps is not None
    assert steps[0].offered_rate is None
    rates = [s.offered_rate or 0.0 for s in steps[1:]]
    assert rates == sorted(rates)
    assert steps[-1].overloaded, "the sweep should have stopped at an overloaded step"
    assert len(steps) < 7
    assert outcome.summary.sweep_stopped == steps[-1].overloaded
    assert {r.phase for r in outcome.records} == set(range(len(steps)))


async def test_refining_steps_narrow_the_limit_after_the_first_overload(paced: Served) -> None:
    paced.fake.capacity = 5  # about 60 req/s; the first open step (the 1-user rate) keeps up
    policy = SweepPolicy(factor=4.0, max_steps=6, refine=2)
    cfg = config(settings("backend", paced.url), mode="sweep", seconds=1.0, sweep=policy)
    outcome = await run_bench(cfg, LiveView(io.StringIO(), enabled=False))

    steps = outcome.summary.sweep
    assert steps is not None
    first_overloaded = next(i for i, step in enumerate(steps) if step.overloaded)
    assert first_overloaded >= 2, [step.overloaded for step in steps]
    assert len(steps) == first_overloaded + 1 + 2
    kept_up = steps[first_overloaded - 1].offered_rate
    overloaded = steps[first_overloaded].offered_rate
    assert kept_up is not None
    assert overloaded is not None
    for step in steps[first_overloaded + 1 :]:
        rate = step.offered_rate
        assert rate is not None
        assert rate == pytest.approx((kept_up * overloaded) ** 0.5)
        if step.overloaded:
            overloaded = rate
        else:
            kept_up = rate
    assert outcome.summary.sweep_stopped == steps[first_overloaded].overloaded
    assert "then 2 refining" in outcome.summary.load.description
    assert {r.phase for r in outcome.records} == set(range(len(steps)))


async def test_a_wrong_api_key_aborts_the_run_with_a_hint(routed: FakeRouter) -> None:
    target = TargetSettings("router", routed.url, api_key="wrong", idle_timeout=5, route_wait=5)
    plan = LoadPlan("closed", users=2, seconds=30.0)
    started = time.monotonic()
    with pytest.raises(RunAborted, match=r"router: HTTP 401.*check --api-key"):
        await execute(plan, target, WORKLOAD, QUICK)
    assert time.monotonic() - started < 10


async def test_the_key_can_travel_in_the_route_body_as_vast_sends_it(routed: FakeRouter) -> None:
    target = TargetSettings(
        "router", routed.url, api_key=API_KEY, idle_timeout=5, route_wait=5, api_key_in_body=True
    )
    result = await execute(LoadPlan("open", (Phase(2, 0.5),)), target, WORKLOAD, QUICK)

    assert [r.outcome for r in result.records] == ["ok"]
    assert routed.seen[0].body["api_key"] == API_KEY
    assert "Authorization" not in routed.seen[0].headers


async def test_a_vast_style_wait_without_request_idx_is_polled(routed: FakeRouter) -> None:
    routed.waits, routed.waits_without_request_idx = 2, True
    target = TargetSettings(
        "router", routed.url, api_key=API_KEY, idle_timeout=5, route_wait=5, api_key_in_body=True
    )
    result = await execute(LoadPlan("open", (Phase(2, 0.5),)), target, WORKLOAD, QUICK)

    [record] = result.records
    assert record.outcome == "ok", record.error
    assert record.route_time is not None
    assert record.route_time >= 0.4  # two polls, 0.25 s apart
    assert [("request_idx" in seen.body) for seen in routed.seen] == [False, False, False]


async def test_route_requests_fail_over_to_the_next_router_and_stay_there(
    routed: FakeRouter,
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    target = replace(settings("router", dead), more_routers=(routed.url,))
    result = await execute(LoadPlan("open", (Phase(4, 0.5),), seed=6), target, WORKLOAD, QUICK)

    assert [r.outcome for r in result.records] == ["ok", "ok"]
    assert len(routed.seen) == len(routed.worker.seen) == 2


async def test_a_5xx_router_is_passed_over_a_4xx_one_is_not(
    routed: FakeRouter, aiohttp_server: AiohttpServer
) -> None:
    broken = FakeRouter(routed.key, routed.worker)
    broken.reject = Scripted.error(502, "bad gateway", "internal")
    server = await aiohttp_server(broken.app(), host="127.0.0.1")
    target = replace(
        settings("router", str(server.make_url("")).rstrip("/")), more_routers=(routed.url,)
    )
    result = await execute(LoadPlan("open", (Phase(4, 0.5),), seed=7), target, WORKLOAD, QUICK)
    assert [r.outcome for r in result.records] == ["ok", "ok"]
    assert len(broken.seen) == 1  # the second request went to the router that answered

    broken.reject = Scripted.error(401, "wrong API key", "unauthorized")
    routed.seen.clear()
    with pytest.raises(RunAborted, match="router: HTTP 401"):
        await execute(LoadPlan("closed", users=1, seconds=5.0), target, WORKLOAD, QUICK)
    assert routed.seen == []
