"""Continuous batching on the tiny model: rows join and leave, and each is served as if alone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import torch
from transformers import (
    FalconConfig,
    FalconForCausalLM,
    GPT2Config,
    GPT2LMHeadModel,
    OPTConfig,
    OPTForCausalLM,
)

from tests.unit.tgi_server.conftest import run_until_idle
from tgi_server.generation.events import EngineEvent, FailureEvent, TokenEvent
from tgi_server.model.batch_runner import (
    BatchPrefill,
    BatchRunner,
    PaddedBatch,
    ready_made_mask_works,
    supports_padded_batching,
)
from tgi_server.model.codec import HFTextCodec
from tgi_server.model.runner import ModelRunner
from tgi_server.scheduler.admission import BatchLimits
from tgi_server.scheduler.base import Job
from tgi_server.scheduler.batching import BatchingScheduler
from tgi_server.scheduler.sequential import SequentialScheduler
from tgi_server.validation import SamplingParams, ValidatedRequest

PROMPTS = ("The lighthouse keeper", "Once", "A long time ago in a harbour far away", "Tea")
EOS: set[int] = set()  # never stop early: every row runs its full budget


def request(
    codec: HFTextCodec, prompt: str, max_new_tokens: int, sampling: SamplingParams | None = None
) -> ValidatedRequest:
    return ValidatedRequest(
        inputs=prompt,
        input_ids=tuple(codec.encode(prompt)),
        sampling=sampling or SamplingParams(),
        max_new_tokens=max_new_tokens,
        decoder_input_details=True,
    )


def tokens(events: Sequence[EngineEvent]) -> list[tuple[int, float]]:
    return [(e.token.id, e.token.logprob) for e in events if isinstance(e, TokenEvent)]


def job(req: ValidatedRequest) -> tuple[Job, list[EngineEvent]]:
    """A job for `req`, and the list its events go to."""
    events: list[EngineEvent] = []
    return Job(req, events.append), events


def add_all(
    scheduler: BatchingScheduler, requests: list[ValidatedRequest]
) -> list[list[EngineEvent]]:
    """Add a job for each of `requests`; the lists their events go to, in the same order."""
    jobs = [job(req) for req in requests]
    for added, _ in jobs:
        scheduler.add(added)
    return [events for _, events in jobs]


def alone(model: Any, codec: HFTextCodec, req: ValidatedRequest) -> list[EngineEvent]:
    sequential = SequentialScheduler(ModelRunner(model, torch.device("cpu")), codec, EOS)
    lone, events = job(req)
    sequential.add(lone)
    run_until_idle(sequential)
    return events


def batching(model: Any, codec: HFTextCodec, **limits: Any) -> BatchingScheduler:
    runner = BatchRunner(model, torch.device("cpu"))
    return BatchingScheduler(runner, codec, EOS, BatchLimits(**limits))


def assert_same_as_alone(
    model: Any, codec: HFTextCodec, req: ValidatedRequest, events: list[EngineEvent]
) -> None:
    reference = alone(model, codec, req)
    got, want = tokens(events), tokens(reference)
    assert [i for i, _ in got] == [i for i, _ in want]
    assert [lp for _, lp in got] == pytest.approx([lp for _, lp in want], abs=1e-4)
    last, expected = events[-1], reference[-1]
    assert isinstance(last, TokenEvent)
    assert isinstance(expected, TokenEvent)
    assert last.completion is not None
    assert expected.completion is not None
    assert last.completion.generated_text == expected.completion.generated_text
    assert len(last.completion.prefill) == len(expected.completion.prefill)


def test_the_tiny_model_can_be_batched(tiny_model: Any) -> None:
    assert supports_padded_batching(tiny_model)


def test_staggered_requests_share_a_batch_and_match_their_lone_runs(
    tiny_model: Any, tiny_codec: HFTextCodec
) -> None:
    scheduler = batching(tiny_model, tiny_codec, waiting_served_ratio=0.0)
    budgets = (9, 3, 7, 5)
    requests = [request(tiny_codec, p, n) for p, n in zip(PROMPTS, budgets, strict=True)]
    inboxes: list[list[EngineEvent]] = [[] for _ in requests]
    sizes: list[int] = []
    for index, (req, inbox) in enumerate(zip(requests, inboxes, strict=True)):
        scheduler.add(Job(req, inbox.append))
        for _ in range(index + 1):  # later requests arrive while others are mid-way
            scheduler.step()
            sizes.append(scheduler.batch_size)
    run_until_idle(scheduler)
    assert max(sizes) >= 3  # several requests really were in one batch
    assert scheduler.stats.completed == len(requests)
    assert scheduler.stats.concats == {"backpressure": 3, "wait_exceeded": 0}
    assert scheduler.stats.forwards["prefill"] == 4
    assert scheduler.stats.batch_max_tokens == 0
    for req, inbox in zip(requests, inboxes, strict=True):
        assert len(tokens(inbox)) == req.max_new_tokens
        assert_same_as_alone(tiny_model, tiny_codec, req, inbox)


def test_seeded_sampling_in_a_batch_gives_the_lone_output(
    tiny_model: Any, tiny_codec: HFTextCodec
) -> None:
    sampled = SamplingParams(do_sample=True, temperature=0.8, top_k=50, seed=1234)
    penalized = SamplingParams(repetition_penalty=1.3, frequency_penalty=0.5)
    requests = [
        request(tiny_codec, PROMPTS[0], 8, sampled),
        request(tiny_codec, PROMPTS[1], 8),
        request(tiny_codec, PROMPTS[2], 8, penalized),
    ]
    scheduler = batching(tiny_model, tiny_codec)
    inboxes = add_all(scheduler, requests)
    run_until_idle(scheduler)
    for req, inbox in zip(requests, inboxes, strict=True):
        assert_same_as_alone(tiny_model, tiny_codec, req, inbox)


def test_a_cancelled_request_leaves_the_batch_at_the_next_step(
    tiny_model: Any, tiny_codec: HFTextCodec
) -> None:
    scheduler = batching(tiny_model, tiny_codec)
    leaving, gone = job(request(tiny_codec, PROMPTS[0], 50))
    staying, kept = job(request(tiny_codec, PROMPTS[1], 6))
    scheduler.add(leaving)
    scheduler.add(staying)
    scheduler.step()
    assert scheduler.batch_size == 2
    leaving.cancelled.set()
    scheduler.step()
    assert scheduler.batch_size == 1
    assert len(gone) == 1  # nothing more after the cancel
    run_until_idle(scheduler)
    assert scheduler.stats.cancelled == 1
    assert scheduler.stats.completed == 1
    assert_same_as_alone(tiny_model, tiny_codec, staying.request, kept)


def test_a_request_cancelled_while_waiting_never_reaches_the_model(
    tiny_model: Any, tiny_codec: HFTextCodec
) -> None:
    scheduler = batching(tiny_model, tiny_codec)
    waiting, events = job(request(tiny_codec, PROMPTS[0], 4))
    waiting.cancelled.set()
    scheduler.add(waiting)
    run_until_idle(scheduler)
    assert events == []
    assert scheduler.stats.cancelled == 1
    assert not scheduler.has_work()


def test_the_batch_size_limit_holds_back_the_rest(tiny_model: Any, tiny_codec: HFTextCodec) -> None:
    scheduler = batching(tiny_model, tiny_codec, max_batch_size=2)
    inboxes = add_all(scheduler, [request(tiny_codec, prompt, 3) for prompt in PROMPTS])
    sizes = []
    while scheduler.has_work():
        scheduler.step()
        sizes.append(scheduler.batch_size)
    assert max(sizes) == 2
    assert all(len(tokens(inbox)) == 3 for inbox in inboxes)


class FailingPrefill(BatchRunner):
    """Fails the prefill of one prompt length, as a bad request might."""

    def __init__(self, model: Any, bad_length: int) -> None:
        super().__init__(model, torch.device("cpu"))
        self.bad_length = bad_length

    def prefill(self, prompts: Sequence[Sequence[int]], *, all_logits: Sequence[bool] = ()) -> Any:
        if any(len(prompt) == self.bad_length for prompt in prompts):
            raise RuntimeError("prefill exploded")
        return super().prefill(prompts, all_logits=all_logits)

    def decode(self, batch: PaddedBatch, token_ids: Sequence[int]) -> torch.Tensor:
        return super().decode(batch, token_ids)


def test_a_failed_prefill_fails_only_the_requests_joining(
    tiny_model: Any, tiny_codec: HFTextCodec
) -> None:
    good = request(tiny_codec, PROMPTS[0], 6)
    bad = request(tiny_codec, PROMPTS[2], 6)
    runner = FailingPrefill(tiny_model, bad.input_length)
    scheduler = BatchingScheduler(runner, tiny_codec, EOS, BatchLimits(waiting_served_ratio=0))
    good_job, good_events = job(good)
    bad_job, bad_events = job(bad)
    scheduler.add(good_job)
    scheduler.step()
    scheduler.add(bad_job)
    run_until_idle(scheduler)
    assert len(bad_events) == 1
    assert isinstance(bad_events[0], FailureEvent)
    assert "prefill exploded" in bad_events[0].error.message
    assert_same_as_alone(tiny_model, tiny_codec, good, good_events)


def test_joiners_after_max_waiting_tokens_are_counted_as_wait_exceeded(
    tiny_model: Any, tiny_codec: HFTextCodec
) -> None:
    scheduler = batching(tiny_model, tiny_codec, waiting_served_ratio=5.0, max_waiting_tokens=3)
    scheduler.add(Job(request(tiny_codec, PROMPTS[0], 10), lambda event: None))
    scheduler.step()
    scheduler.add(Job(request(tiny_codec, PROMPTS[1], 4), lambda event: None))
    scheduler.step()  # one waiting is fewer than 5 x 1 running: no join yet
    assert scheduler.batch_size == 1
    assert scheduler.stats.batch_max_tokens == request(tiny_codec, PROMPTS[0], 10).input_length + 10
    run_until_idle(scheduler)
    assert scheduler.stats.concats == {"backpressure": 0, "wait_exceeded": 1}


def test_each_step_records_tgis_batch_timings(tiny_model: Any, tiny_codec: HFTextCodec) -> None:
    ticks = iter(float(t) for t in range(100_000))
    runner = BatchRunner(tiny_model, torch.device("cpu"))
    limits = BatchLimits(waiting_served_ratio=0.0)
    scheduler = BatchingScheduler(runner, tiny_codec, EOS, limits, clock=lambda: next(ticks))
    for prompt, budget in zip(PROMPTS, (9, 3, 7, 5), strict=True):
        scheduler.add(Job(request(tiny_codec, prompt, budget), lambda _: None))
        scheduler.step()
    run_until_idle(scheduler)
    timings, forwards = scheduler.stats.timings, scheduler.stats.forwards
    for method in ("prefill", "decode"):
        phases = {p: timings.durations[(p, method)] for p in ("forward", "decode", "inference")}
        assert {p: h.count for p, h in phases.items()} == dict.fromkeys(phases, forwards[method])
        assert phases["forward"].total > 0
        parts = phases["forward"].total + phases["decode"].total
        assert phases["inference"].total > parts  # the step holds its phases and more
    # rows with smaller budgets finished mid-batch and were filtered out of it
    assert timings.durations[("filter", "decode")].total > 0
    assert (timings.next_size.count, timings.next_size.total) == (4, 4.0)
    assert timings.concat.count == 3  # the first prefill started the batch


class CancellingRunner(BatchRunner):
    """Runs the tiny model, but the client of `job` leaves while its prefill is on the model."""

    job: Job | None = None

    def prefill(
        self, prompts: Sequence[Sequence[int]], *, all_logits: Sequence[bool] = ()
    ) -> BatchPrefill:
        if self.job is not None:
            self.job.cancelled.set()
        return super().prefill(prompts, all_logits=all_logits)


def test_a_request_cancelled_mid_prefill_leaves_and_disturbs_no_one(
    tiny_model: Any, tiny_codec: HFTextCodec
) -> None:
    runner = CancellingRunner(tiny_model, torch.device("cpu"))
    scheduler = BatchingScheduler(runner, tiny_codec, EOS, BatchLimits(waiting_served_ratio=0.0))
    staying, kept = job(request(tiny_codec, PROMPTS[0], 6))
    scheduler.add(staying)
    scheduler.step()  # the staying request's own prefill
    leaving, gone = job(request(tiny_codec, PROMPTS[2], 50))
    runner.job = leaving
    scheduler.add(leaving)
    scheduler.step()  # its prefill runs while the client leaves
    runner.job = None
    run_until_idle(scheduler)
    assert len(gone) <= 1  # at most the token its prefill had already made
    assert scheduler.stats.cancelled == 1
    assert scheduler.stats.completed == 1
    assert not scheduler.has_work()
    assert_same_as_alone(tiny_model, tiny_codec, staying.request, kept)


def test_decode_steps_on_the_ready_made_padding_mask_give_the_same_logits(
    tiny_model: Any, tiny_codec: HFTextCodec
) -> None:
    cpu = torch.device("cpu")
    assert ready_made_mask_works(tiny_model, cpu)  # SDPA on a CPU, and the probe agrees
    fast = BatchRunner(tiny_model, cpu, ready_made_mask=True)
    plain = BatchRunner(tiny_model, cpu)  # transformers builds the 4-D mask itself
    prompts = [tiny_codec.encode(prompt) for prompt in PROMPTS]  # padded: lengths differ
    batches = [runner.prefill(prompts).batch for runner in (fast, plain)]
    last = [5] * len(prompts)
    for _ in range(6):
        got = fast.decode(batches[0], last)
        want = plain.decode(batches[1], last)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
        last = got.argmax(dim=-1).tolist()


def tiny(family: str) -> Any:
    """A one-layer random model of `family`, with SDPA attention."""
    shape: dict[str, Any] = {"vocab_size": 64, "attn_implementation": "sdpa"}
    config: Any
    model: Any
    if family == "falcon-alibi":
        config = FalconConfig(
            hidden_size=32, num_hidden_layers=1, num_attention_heads=4, alibi=True, **shape
        )
        model = FalconForCausalLM(config)
    elif family == "gpt2":
        config = GPT2Config(n_embd=32, n_layer=1, n_head=4, bos_token_id=0, eos_token_id=0, **shape)
        model = GPT2LMHeadModel(config)
    else:
        config = OPTConfig(
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=4,
            ffn_dim=64,
            word_embed_proj_dim=32,
            **shape,
        )
        model = OPTForCausalLM(config)
    return model.eval()


@pytest.mark.parametrize(
    ("family", "takes_it"), [("falcon-alibi", False), ("gpt2", True), ("opt", True)]
)
def test_the_probe_keeps_models_that_need_the_2d_mask_on_it(family: str, takes_it: bool) -> None:
    model = tiny(family)
    cpu = torch.device("cpu")
    assert supports_padded_batching(model)
    assert ready_made_mask_works(model, cpu) is takes_it
    runner = BatchRunner(model, cpu, ready_made_mask=ready_made_mask_works(model, cpu))
    batch = runner.prefill([[1, 2, 3, 4], [5, 6]]).batch
    for _ in range(3):  # what the probe chose decodes a padded batch without error
        assert runner.decode(batch, [7, 8]).shape == (2, 64)


def test_gpus_keep_the_2d_mask(tiny_model: Any) -> None:
    assert not ready_made_mask_works(tiny_model, torch.device("cuda"))
