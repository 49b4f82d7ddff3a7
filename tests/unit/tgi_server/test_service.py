"""The generate use cases without HTTP: slots, best_of, keep-alives, failures."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, cast

import pytest
import torch

from protocol.sse import SSEParser
from protocol.tgi import GenerateRequest
from tests.unit.tgi_server.conftest import ByteCodec, FakeTransport, ScriptedRunner, favouring
from tgi_server.engine.base import ServedModel
from tgi_server.engine.thread import Engine
from tgi_server.errors import GenerationError, OverloadedError, ValidationError
from tgi_server.http.streaming import SocketStreamSink
from tgi_server.http.wire import stream_event_bytes
from tgi_server.model.runner import PrefillOutput
from tgi_server.request_slots import RequestSlots
from tgi_server.scheduler.sequential import SequentialScheduler
from tgi_server.service import INLINE_VALIDATION_CHARS, GenerationService
from tgi_server.validation import Limits, SamplingParams, ValidatedRequest

CODEC = ByteCodec()
MODEL = ServedModel(model_id="scripted", codec=CODEC, device_type="cpu")


class ConfidenceRunner(ScriptedRunner):
    """Each new sequence is more confident than the one before (higher mean logprob)."""

    def __init__(self) -> None:
        super().__init__([ord("a")])
        self.sequences = 0

    def prefill(self, input_ids: Sequence[int], *, all_logits: bool = False) -> PrefillOutput:
        self.sequences += 1
        return PrefillOutput(self._logits(), None, cache={"steps": 0})

    def decode(self, token_id: int, cache: Any) -> torch.Tensor:
        return self._logits()

    def _logits(self) -> torch.Tensor:
        return favouring(ord("a")) * (self.sequences - 1)  # uniform, then near-certain


async def started_service(
    runner: ScriptedRunner, *, slots: int = 4, keepalive_s: float = 15.0
) -> AsyncIterator[tuple[GenerationService, Engine]]:
    engine = Engine(SequentialScheduler(runner, CODEC, {ByteCodec.EOS}), MODEL)
    seeds = itertools.count(1)
    await engine.start()
    with ThreadPoolExecutor(1) as executor:
        service = GenerationService(
            engine,
            Limits(),
            RequestSlots(slots),
            executor,
            keepalive_s=keepalive_s,
            seed_source=lambda: next(seeds),
        )
        try:
            yield service, engine
        finally:
            await engine.stop()


@pytest.fixture
async def service() -> AsyncIterator[GenerationService]:
    async for started, _ in started_service(ScriptedRunner([ord("o"), ord("k")])):
        yield started


def body(max_new_tokens: int, **parameters: Any) -> GenerateRequest:
    return GenerateRequest.model_validate(
        {"inputs": "Hi", "parameters": {"max_new_tokens": max_new_tokens, **parameters}}
    )


async def test_generate_collects_every_token(service: GenerationService) -> None:
    result = await service.generate(body(3, details=True), received_at=0.0)
    assert [token.text for token in result.best.tokens] == ["o", "k", "o"]
    assert result.best.completion.generated_text == "oko"
    assert result.others == ()
    assert result.request.details
    assert result.validated_at >= result.received_at


async def test_best_of_keeps_the_candidate_with_the_best_mean_logprob() -> None:
    async for service, _ in started_service(ConfidenceRunner()):
        result = await service.generate(body(3, best_of=2, do_sample=True), received_at=0.0)
        assert result.best.completion.seed == 2  # the second, more confident candidate
        assert [other.completion.seed for other in result.others] == [1]
        assert result.best.mean_logprob > result.others[0].mean_logprob


async def test_validation_errors_come_out_of_generate(service: GenerationService) -> None:
    with pytest.raises(ValidationError, match="`max_new_tokens` must be strictly positive"):
        await service.generate(body(0), received_at=0.0)


def socket_sink() -> tuple[SocketStreamSink, FakeTransport]:
    transport = FakeTransport()
    encode = partial(stream_event_bytes, details=False)
    sink = SocketStreamSink(cast(asyncio.Transport, transport), chunked=False, encode=encode)
    return sink, transport


def texts(written: bytearray) -> list[str]:
    return [event.json()["token"]["text"] for event in SSEParser().feed(bytes(written))]


async def test_a_stream_gets_keepalives_while_queued_then_tokens() -> None:
    async for service, engine in started_service(ScriptedRunner([ord("o")]), keepalive_s=0.05):
        blocker = engine.submit(
            ValidatedRequest("Hi", (256, 72, 105), SamplingParams(), max_new_tokens=10**6)
        )
        sink, transport = socket_sink()
        async with service.streaming_into(body(2), sink):
            waiting = asyncio.create_task(sink.wait(service.keepalive_s))
            await asyncio.sleep(0.12)
            assert transport.written.startswith(b":\n\n")  # a keep-alive while queued
            blocker.cancel()
            completion = await asyncio.wait_for(waiting, 5)
        assert completion.generated_tokens == 2
        assert texts(transport.written + sink.final) == ["o", "o"]


async def test_a_stream_holds_its_slot_until_its_block_ends() -> None:
    async for service, _ in started_service(ScriptedRunner([ord("o")]), slots=1):
        sink, _transport = socket_sink()
        async with service.streaming_into(body(1000), sink):
            with pytest.raises(OverloadedError):
                await service.generate(body(1), received_at=0.0)
        result = await service.generate(body(1), received_at=0.0)
        assert result.best.completion.generated_tokens == 1


async def test_a_generation_failure_is_raised_from_the_sink() -> None:
    async for service, _ in started_service(ScriptedRunner([ord("o")], fail_on_decode=1)):
        sink, transport = socket_sink()
        async with service.streaming_into(body(5), sink):
            with pytest.raises(GenerationError, match="boom"):
                await asyncio.wait_for(sink.wait(service.keepalive_s), 5)
        assert texts(transport.written) == ["o"]


class CountingExecutor(ThreadPoolExecutor):
    """Counts the validations that went to a worker thread."""

    def __init__(self) -> None:
        super().__init__(1)
        self.submitted = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


@pytest.mark.parametrize(
    ("inputs", "grammar", "in_a_thread"),
    [
        ("Hi", None, False),
        ("x" * (INLINE_VALIDATION_CHARS + 1), None, True),
        ("Hi", {"type": "regex", "value": "a+"}, True),
    ],
)
async def test_short_prompts_are_validated_inline_long_ones_and_grammars_in_a_thread(
    inputs: str, grammar: dict[str, str] | None, in_a_thread: bool
) -> None:
    engine = Engine(SequentialScheduler(ScriptedRunner([ord("o")]), CODEC, set()), MODEL)
    await engine.start()
    executor = CountingExecutor()
    service = GenerationService(
        engine, Limits(max_input_tokens=4096, max_total_tokens=8192), RequestSlots(1), executor
    )
    body = {"inputs": inputs, "parameters": {"max_new_tokens": 1, "grammar": grammar}}
    try:
        with contextlib.suppress(ValidationError):  # the scripted model has no grammar support
            await service.generate(GenerateRequest.model_validate(body), 0.0)
    finally:
        await engine.stop()
        executor.shutdown()
    assert executor.submitted == (1 if in_a_thread else 0)
