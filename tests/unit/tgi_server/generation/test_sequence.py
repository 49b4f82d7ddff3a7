"""One sequence's generation state, driven by hand-made logits and the byte codec."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from tests.unit.tgi_server.conftest import ByteCodec, favouring
from tgi_server.generation.events import TokenEvent
from tgi_server.generation.sequence import SequenceState
from tgi_server.validation import SamplingParams, ValidatedRequest

CODEC = ByteCodec()


def request(prompt: str = "Hi", **changes: object) -> ValidatedRequest:
    base = ValidatedRequest(
        inputs=prompt,
        input_ids=tuple(CODEC.encode(prompt)),
        sampling=SamplingParams(),
        max_new_tokens=20,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def run(state: SequenceState, token_ids: list[int]) -> list[TokenEvent]:
    return [state.advance(favouring(token_id)) for token_id in token_ids]


def test_tokens_carry_index_text_logprob_and_special_flag() -> None:
    state = SequenceState(request(), CODEC, {ByteCodec.EOS})
    events = run(state, [ord(" "), ord("o"), ByteCodec.EOS])
    assert [event.index for event in events] == [1, 2, 3]
    assert [event.token.text for event in events] == [" ", "o", "</s>"]
    assert [event.token.special for event in events] == [False, False, True]
    assert all(-0.01 < event.token.logprob <= 0.0 for event in events)
    assert state.finish_reason == "eos_token"


def test_the_completion_skips_special_tokens_but_counts_them() -> None:
    state = SequenceState(request(), CODEC, {ByteCodec.EOS})
    run(state, [ord(" "), ord("o"), ByteCodec.EOS])
    completion = state.completion(queued_at=1.0, started_at=2.0, finished_at=3.0)
    assert completion.generated_text == " o"
    assert completion.finish_reason == "eos_token"
    assert completion.generated_tokens == 3
    assert completion.input_length == 3
    assert completion.seed is None
    assert (completion.queued_at, completion.started_at, completion.finished_at) == (1, 2, 3)


def test_a_stop_sequence_stays_in_the_text() -> None:
    state = SequenceState(request(stop_sequences=("!?",)), CODEC, {ByteCodec.EOS})
    run(state, [ord("a"), ord("!"), ord("?")])
    assert state.finish_reason == "stop_sequence"
    assert state.completion(0, 0, 0).generated_text == "a!?"


def test_length_ends_the_sequence_at_its_budget() -> None:
    state = SequenceState(request(max_new_tokens=2), CODEC, {ByteCodec.EOS})
    run(state, [ord("a"), ord("b")])
    assert state.finish_reason == "length"
    with pytest.raises(RuntimeError, match="already finished"):
        state.advance(favouring(ord("c")))


def test_return_full_text_prepends_the_prompt_verbatim() -> None:
    state = SequenceState(request("Hi", return_full_text=True, max_new_tokens=1), CODEC, set())
    run(state, [ord("!")])
    assert state.completion(0, 0, 0).generated_text == "Hi!"


def test_sampling_reports_the_seed() -> None:
    sampling = SamplingParams(do_sample=True, seed=77)
    state = SequenceState(request(sampling=sampling, max_new_tokens=1), CODEC, set())
    run(state, [ord("x")])
    assert state.completion(0, 0, 0).seed == 77


def test_top_tokens_come_with_each_event() -> None:
    state = SequenceState(request(top_n_tokens=2), CODEC, set())
    logits = favouring(ord("a"))
    logits[0, ord("b")] = 15.0
    event = state.advance(logits)
    assert [(token.id, token.text) for token in event.top_tokens] == [(97, "a"), (98, "b")]
    assert event.top_tokens[0].logprob == event.token.logprob


def test_prefill_logprobs_start_with_null() -> None:
    state = SequenceState(request("ab", max_new_tokens=1), CODEC, set())
    prompt_logits = torch.randn((3, ByteCodec.VOCAB_SIZE))
    state.record_prefill(prompt_logits)
    state.advance(favouring(ord("c")))
    prefill = state.completion(0, 0, 0).prefill
    expected = torch.log_softmax(prompt_logits, dim=-1)
    assert [(token.id, token.text) for token in prefill] == [(256, "<s>"), (97, "a"), (98, "b")]
    assert prefill[0].logprob is None
    assert prefill[1].logprob == pytest.approx(float(expected[0, 97]))
    assert prefill[2].logprob == pytest.approx(float(expected[1, 98]))
