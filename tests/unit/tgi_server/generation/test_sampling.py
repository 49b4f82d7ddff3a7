"""Choosing tokens: greedy vs sampling, warpers and penalties, seeds, top-n alternatives."""

from __future__ import annotations

import math

import pytest
import torch

from tgi_server.generation.sampling import TokenChooser, top_alternatives
from tgi_server.validation import SamplingParams

LOGITS = torch.tensor([[1.0, 3.0, 2.5, 0.5, -1.0, 2.9]])
HISTORY = torch.tensor([[4, 0]])


def draws(params: SamplingParams, steps: int = 30) -> list[int]:
    chooser = TokenChooser(params)
    return [chooser.choose(HISTORY, LOGITS).token_id for _ in range(steps)]


def test_greedy_takes_the_argmax_with_its_logprob_and_reports_no_seed() -> None:
    chooser = TokenChooser(SamplingParams(seed=5))
    choice = chooser.choose(HISTORY, LOGITS)
    assert choice.token_id == 1
    assert choice.logprob == pytest.approx(float(torch.log_softmax(LOGITS, -1)[0, 1]))
    assert not chooser.samples
    assert chooser.reported_seed is None


def test_the_same_seed_draws_the_same_tokens() -> None:
    params = SamplingParams(do_sample=True, seed=1234)
    assert draws(params) == draws(params)
    assert len(set(draws(params))) > 1  # it really samples


def test_different_seeds_draw_differently() -> None:
    first = draws(SamplingParams(do_sample=True, seed=1))
    second = draws(SamplingParams(do_sample=True, seed=2))
    assert first != second


def test_sampling_reports_its_seed_even_the_largest_u64() -> None:
    chooser = TokenChooser(SamplingParams(do_sample=True, seed=2**64 - 1))
    chooser.choose(HISTORY, LOGITS)
    assert chooser.reported_seed == 2**64 - 1


def test_logprobs_are_read_after_the_warpers() -> None:
    chooser = TokenChooser(SamplingParams(temperature=0.5, seed=3))
    choice = chooser.choose(HISTORY, LOGITS)
    expected = torch.log_softmax(LOGITS / 0.5, -1)[0, choice.token_id]
    assert chooser.samples
    assert choice.logprob == pytest.approx(float(expected))


def test_top_k_one_leaves_a_single_certain_token() -> None:
    chooser = TokenChooser(SamplingParams(top_k=1, seed=3))
    choices = [chooser.choose(HISTORY, LOGITS) for _ in range(10)]
    assert {choice.token_id for choice in choices} == {1}
    assert all(choice.logprob == 0.0 for choice in choices)
    logprobs = choices[0].logprobs
    assert logprobs is not None
    assert math.isinf(float(logprobs[0]))


def test_top_p_keeps_only_the_nucleus() -> None:
    tokens = set(draws(SamplingParams(top_p=0.3, seed=9), steps=50))
    assert tokens <= {1, 5}


def test_repetition_penalty_pushes_away_from_tokens_already_seen() -> None:
    history = torch.tensor([[1]])
    plain = TokenChooser(SamplingParams()).choose(history, LOGITS)
    penalized = TokenChooser(SamplingParams(repetition_penalty=2.0)).choose(history, LOGITS)
    assert plain.token_id == 1
    assert penalized.token_id == 5


def test_frequency_penalty_counts_occurrences() -> None:
    history = torch.tensor([[1, 1, 5]])
    choice = TokenChooser(SamplingParams(frequency_penalty=0.5)).choose(history, LOGITS)
    # 3.0 - 2 * 0.5 = 2.0 and 2.9 - 0.5 = 2.4 both fall below 2.5.
    assert choice.token_id == 2


def test_a_degenerate_distribution_falls_back_to_greedy() -> None:
    chooser = TokenChooser(SamplingParams(temperature=1e-300, seed=1))
    assert chooser.choose(HISTORY, LOGITS).token_id == 1


def test_top_alternatives_are_best_first_with_ties_kept() -> None:
    logprobs = torch.tensor([-1.0, -0.5, -2.0, -1.0, -3.0])
    assert top_alternatives(logprobs, 2) == [(1, -0.5), (0, -1.0), (3, -1.0)]
    assert top_alternatives(logprobs, 1) == [(1, -0.5)]
    assert top_alternatives(logprobs, 0) == []


def test_top_alternatives_ignore_ties_among_masked_tokens() -> None:
    logprobs = torch.tensor([0.0, -math.inf, -math.inf, -math.inf])
    alternatives = top_alternatives(logprobs, 2)
    assert len(alternatives) == 2
    assert alternatives[0] == (0, 0.0)
