"""Choosing the next token of one sequence, as TGI's model server does.

Scores go through the penalties (repetition, frequency), then the warpers in TGI's order
(temperature, top-k, top-p, typical-p); transformers' logits processors do the work where one
exists. The token's logprob is read from the log-softmax of the processed scores, so a sampled
token's logprob is relative to the warped distribution, as in TGI. Greedy takes the argmax;
sampling draws from a `torch.Generator` seeded with the request's seed, so a seed always gives
the same tokens.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers import (
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
    TypicalLogitsWarper,
)

from tgi_server.validation import SamplingParams

__all__ = ["Choice", "TokenChooser", "top_alternatives"]

ScoreTransform = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(token ids so far [1, L], scores [1, V]) -> new scores [1, V]"""


@dataclass(frozen=True)
class Choice:
    token_id: int
    logprob: float
    logprobs: torch.Tensor
    """The log-distribution the token came from, shape [V]: the source of top-n alternatives."""


class TokenChooser:
    """Chooses each next token of one sequence from the model's logits."""

    def __init__(self, params: SamplingParams, device: torch.device | str = "cpu") -> None:
        self._penalties = _penalties(params)
        self._warpers = _warpers(params)
        self.samples = params.samples
        self._seed = params.seed
        self._generator: torch.Generator | None = None
        if self.samples:
            self._generator = torch.Generator(device=device)
            self._generator.manual_seed(params.seed)

    @property
    def plain_greedy(self) -> bool:
        """Whether the choice is the bare argmax of the logits (no penalty, no sampling)."""
        return self._generator is None and not self._penalties

    @property
    def uses_history(self) -> bool:
        """Whether `choose` reads the ids so far (the penalties do; warpers and greedy do not)."""
        return bool(self._penalties)

    @property
    def reported_seed(self) -> int | None:
        """The seed TGI reports in `details`: the request's seed when sampling, else null."""
        return self._seed if self.samples else None

    def choose(self, history: torch.Tensor, logits: torch.Tensor) -> Choice:
        """The next token, given all ids so far ([1, L]) and the last position's logits ([1, V])."""
        penalized = _apply(self._penalties, history, logits.to(torch.float32))
        scores = _apply(self._warpers, history, penalized)
        logprobs = torch.log_softmax(scores, dim=-1)[0]
        if self._generator is None:
            token_id = _argmax(scores[0])
        else:
            token_id = _draw(penalized[0], logprobs, self._generator)
        return Choice(token_id=token_id, logprob=float(logprobs[token_id]), logprobs=logprobs)


def top_alternatives(logprobs: torch.Tensor, count: int) -> list[tuple[int, float]]:
    """The `count` most likely (id, logprob) pairs, best first, plus any tied with the last.

    Ties are kept as TGI keeps them, so a list can be longer than `count`; ties order by id.
    """
    if count <= 0:
        return []
    k = min(count, logprobs.shape[-1])
    best = torch.topk(logprobs, k)
    threshold = float(best.values[-1])
    if math.isfinite(threshold):
        ids = torch.nonzero(logprobs >= threshold).flatten().tolist()
    else:
        ids = best.indices.tolist()
    values = logprobs.tolist()
    return sorted(((i, values[i]) for i in ids), key=lambda pair: (-pair[1], pair[0]))


def _apply(
    transforms: list[ScoreTransform], history: torch.Tensor, scores: torch.Tensor
) -> torch.Tensor:
    for transform in transforms:
        scores = transform(history, scores)
    return scores


def _draw(penalized: torch.Tensor, logprobs: torch.Tensor, generator: torch.Generator) -> int:
    probs = logprobs.exp()
    if not bool(torch.isfinite(probs).all()) or float(probs.sum()) <= 0.0:
        return _argmax(penalized)  # the warpers broke down (e.g. a tiny temperature): be greedy
    return int(torch.multinomial(probs, 1, generator=generator).item())


def _argmax(scores: torch.Tensor) -> int:
    cleaned = torch.nan_to_num(scores, nan=-math.inf)
    return int(cleaned.argmax(dim=-1).item())


def _penalties(params: SamplingParams) -> list[ScoreTransform]:
    transforms: list[ScoreTransform] = []
    if params.repetition_penalty is not None and params.repetition_penalty != 1.0:
        transforms.append(
            RepetitionPenaltyLogitsProcessor(penalty=float(params.repetition_penalty))
        )
    if params.frequency_penalty:
        transforms.append(_frequency_penalty(params.frequency_penalty))
    return transforms


def _warpers(params: SamplingParams) -> list[ScoreTransform]:
    transforms: list[ScoreTransform] = []
    if params.temperature is not None and params.temperature != 1.0:
        transforms.append(TemperatureLogitsWarper(temperature=float(params.temperature)))
    if params.top_k is not None and params.top_k != 0:
        transforms.append(TopKLogitsWarper(top_k=params.top_k))
    if params.top_p is not None and params.top_p < 1.0:
        transforms.append(TopPLogitsWarper(top_p=float(params.top_p)))
    if params.typical_p is not None and params.typical_p < 1.0:
        transforms.append(TypicalLogitsWarper(mass=float(params.typical_p)))
    return transforms


def _frequency_penalty(penalty: float) -> ScoreTransform:
    """OpenAI's frequency penalty: lower each score by `penalty` times its count so far."""

    def apply(history: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        vocab_size = scores.shape[-1]
        ids = history[0]
        counts = torch.bincount(ids[ids < vocab_size], minlength=vocab_size)
        return scores - penalty * counts.to(scores.dtype).unsqueeze(0)

    return apply
