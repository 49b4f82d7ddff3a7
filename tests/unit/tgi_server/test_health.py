"""GET /health's logic: cheap while all is well, a one-token generation after a failure."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from tests.unit.tgi_server.conftest import ByteCodec, ScriptedRunner
from tgi_server.engine.base import ServedModel
from tgi_server.engine.thread import Engine
from tgi_server.generation.events import FailureEvent
from tgi_server.health import HealthCheck
from tgi_server.model.runner import PrefillOutput
from tgi_server.scheduler.sequential import SequentialScheduler
from tgi_server.validation import SamplingParams, ValidatedRequest

CODEC = ByteCodec()
MODEL = ServedModel(model_id="scripted", codec=CODEC, device_type="cpu")


class BreakableRunner(ScriptedRunner):
    """Fails every prefill while `broken`."""

    def __init__(self) -> None:
        super().__init__([ord("o")])
        self.broken = False

    def prefill(self, input_ids: Sequence[int], *, all_logits: bool = False) -> PrefillOutput:
        if self.broken:
            raise RuntimeError("the device fell off the bus")
        return super().prefill(input_ids, all_logits=all_logits)


def prefills(runner: ScriptedRunner) -> int:
    return sum(1 for call, _ in runner.calls if call == "prefill")


async def test_health_generates_one_token_only_after_a_failure_until_it_works() -> None:
    runner = BreakableRunner()
    engine = Engine(SequentialScheduler(runner, CODEC, set()), MODEL)
    await engine.start()
    check = HealthCheck(engine, timeout_s=5.0)
    try:
        assert await check.healthy()
        assert prefills(runner) == 0  # cheap: nothing generated

        runner.broken = True
        request = ValidatedRequest("Hi", tuple(CODEC.encode("Hi")), SamplingParams(), 2)
        with engine.submit(request) as handle:
            assert isinstance(await asyncio.wait_for(handle.next_event(), 5), FailureEvent)
        assert not await check.healthy()  # the liveness generation fails too

        runner.broken = False
        assert await check.healthy()
        assert prefills(runner) == 1  # the liveness generation
        assert await check.healthy()
        assert prefills(runner) == 1  # healthy again: back to the cheap check
    finally:
        await engine.stop()
    assert not await check.healthy()  # a stopped engine is never healthy
