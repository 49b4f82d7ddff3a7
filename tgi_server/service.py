"""The generate use cases, free of HTTP: admit, validate, run on the engine, collect.

`generate` serves one non-streamed request (with `best_of` fan-out) and returns everything its
response needs; `streaming_into` hands a streamed request's token events to a sink of the
caller's (the streaming routes write them straight to the socket). Both take their request slots
first (429 when none is free), validate (off the event loop unless the prompt is short:
tokenizing a 2 MB prompt takes a while, a sentence about 30 µs, less than the hop to a worker
thread), and cancel their engine jobs however they end, so a client that leaves frees its slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial

from protocol.tgi import GenerateRequest
from tgi_server.engine.base import EventSink, GenerationHandle, ModelEngine
from tgi_server.generation.events import Completion, FailureEvent, GeneratedToken
from tgi_server.model.codec import TokenSpan
from tgi_server.request_slots import RequestSlots
from tgi_server.validation import (
    Limits,
    SeedSource,
    ValidatedRequest,
    check_best_of,
    check_stream_parameters,
    random_seed,
    validate_request,
)

__all__ = ["FinishedSequence", "GenerateResult", "GenerationService"]

KEEPALIVE_S = 15.0
"""TGI (axum) sends an SSE comment when a stream has been silent this long."""

INLINE_VALIDATION_CHARS = 2048
"""Prompts up to this long, without a grammar, are validated on the event loop: tokenizing them
takes tens of microseconds, while a worker thread must first win the GIL from a busy event loop
(under a burst of requests that took milliseconds)."""


@dataclass(frozen=True)
class FinishedSequence:
    tokens: tuple[GeneratedToken, ...]
    top_tokens: tuple[tuple[GeneratedToken, ...], ...]
    completion: Completion

    @property
    def mean_logprob(self) -> float:
        """What TGI ranks `best_of` candidates by."""
        return sum(token.logprob for token in self.tokens) / max(len(self.tokens), 1)


@dataclass(frozen=True)
class GenerateResult:
    request: ValidatedRequest
    best: FinishedSequence
    others: tuple[FinishedSequence, ...]
    """The `best_of` candidates that lost, in submission order."""
    received_at: float
    validated_at: float
    """`time.monotonic()` when the request arrived and when it passed validation."""


class GenerationService:
    def __init__(
        self,
        engine: ModelEngine,
        limits: Limits,
        slots: RequestSlots,
        executor: Executor,
        *,
        keepalive_s: float = KEEPALIVE_S,
        seed_source: SeedSource = random_seed,
    ) -> None:
        self._engine = engine
        self._limits = limits
        self._slots = slots
        self._executor = executor
        self._keepalive_s = keepalive_s
        self._seed_source = seed_source

    @property
    def keepalive_s(self) -> float:
        """How long a stream may stay silent before it gets a keep-alive comment."""
        return self._keepalive_s

    async def generate(
        self, request: GenerateRequest, received_at: float, *, add_special_tokens: bool = True
    ) -> GenerateResult:
        """Generate a whole response; raises BackendError for anything that goes wrong."""
        best_of = max(request.parameters.best_of or 1, 1)
        if best_of > 1:
            check_best_of(best_of, self._limits)
        with self._slots.hold(best_of):
            validated = await self._validate(request, add_special_tokens)
            validated_at = time.monotonic()
            candidates = [validated, *(self._reseeded(validated) for _ in range(best_of - 1))]
            with contextlib.ExitStack() as jobs:
                handles = [jobs.enter_context(self._engine.submit(c)) for c in candidates]
                finished = [await _collect(handle) for handle in handles]
        best = max(finished, key=lambda sequence: sequence.mean_logprob)
        others = tuple(sequence for sequence in finished if sequence is not best)
        return GenerateResult(validated, best, others, received_at, validated_at)

    @contextlib.asynccontextmanager
    async def streaming_into(
        self, request: GenerateRequest, sink: EventSink, *, add_special_tokens: bool = True
    ) -> AsyncIterator[float]:
        """Admit, validate and submit a streamed request whose events go to `sink`; the block
        gets the `time.monotonic()` at which validation ended.

        Entering raises BackendError when the request is refused; the request runs while the
        block runs, and leaving the block (however) cancels it and frees its slot.
        """
        check_stream_parameters(request.parameters)
        with self._slots.hold():
            validated = await self._validate(request, add_special_tokens)
            validated_at = time.monotonic()
            with self._engine.submit_to(validated, sink):
                yield validated_at

    async def _validate(
        self, request: GenerateRequest, add_special_tokens: bool = True
    ) -> ValidatedRequest:
        model = self._engine.model
        encode = partial(model.codec.encode, add_special_tokens=add_special_tokens)
        validate = partial(
            validate_request,
            request,
            self._limits,
            encode,
            seed_source=self._seed_source,
            compile_grammar=model.grammar.compile if model.grammar else None,
        )
        if len(request.inputs) <= INLINE_VALIDATION_CHARS and request.parameters.grammar is None:
            return validate()
        return await asyncio.get_running_loop().run_in_executor(self._executor, validate)

    async def spans(self, inputs: str, *, add_special_tokens: bool = True) -> list[TokenSpan]:
        """`inputs`' tokens with their offsets (`/tokenize`, and without special tokens
        `/chat_tokenize`); a long input is tokenized on the validation threads, as `_validate`
        does, so the event loop never waits for it."""
        spans = partial(self._engine.model.codec.spans, add_special_tokens=add_special_tokens)
        if len(inputs) <= INLINE_VALIDATION_CHARS:
            return spans(inputs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, spans, inputs)

    def _reseeded(self, request: ValidatedRequest) -> ValidatedRequest:
        sampling = dataclasses.replace(request.sampling, seed=self._seed_source())
        return dataclasses.replace(request, sampling=sampling)


async def _collect(handle: GenerationHandle) -> FinishedSequence:
    tokens: list[GeneratedToken] = []
    top_tokens: list[tuple[GeneratedToken, ...]] = []
    while True:
        event = await handle.next_event()
        if isinstance(event, FailureEvent):
            raise event.error
        tokens.append(event.token)
        top_tokens.append(event.top_tokens)
        if event.completion is not None:
            return FinishedSequence(tuple(tokens), tuple(top_tokens), event.completion)
