"""One request's generation state: its tokens, how it picks the next one, when it stops.

A `SequenceState` turns the model's logits into token events. It knows nothing about batches,
caches or threads, so it can be tested with hand-made logits and a fake codec, and a batching
scheduler can drive many of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from protocol.tgi import FinishReason
from tgi_server.generation.detokenizer import IncrementalDetokenizer, decode_new_text
from tgi_server.generation.events import Completion, GeneratedToken, PrefillToken, TokenEvent
from tgi_server.generation.grammar import TokenConstraint
from tgi_server.generation.sampling import TokenChooser, top_alternatives
from tgi_server.generation.stopping import StoppingCriteria
from tgi_server.model.codec import TextCodec
from tgi_server.validation import ValidatedRequest

__all__ = ["SequenceState"]

_NO_HISTORY = torch.zeros((1, 0), dtype=torch.long)


class SequenceState:
    """Everything one request needs between model steps."""

    def __init__(
        self,
        request: ValidatedRequest,
        codec: TextCodec,
        eos_token_ids: Iterable[int],
        device: torch.device | str = "cpu",
    ) -> None:
        self.request = request
        self._codec = codec
        self._chooser = TokenChooser(request.sampling, device)
        self._constraint = TokenConstraint(request.grammar) if request.grammar else None
        self._stopping = StoppingCriteria(
            request.max_new_tokens, eos_token_ids, request.stop_sequences
        )
        self._detokenizer = IncrementalDetokenizer(codec.decode, request.input_ids)
        self._history: torch.Tensor | None = None
        """All ids so far, [1, capacity], kept only for choosers that read them (penalties)."""
        if self._chooser.uses_history:
            capacity = request.input_length + request.max_new_tokens
            self._history = torch.zeros((1, capacity), dtype=torch.long, device=device)
            self._history[0, : request.input_length] = torch.tensor(request.input_ids)
        self._length = request.input_length
        self._generated: list[int] = []
        self._prefill: tuple[PrefillToken, ...] = ()
        self.finish_reason: FinishReason | None = None
        self.plain_greedy = self._chooser.plain_greedy and self._constraint is None
        """Whether each next token is the bare argmax: a batch may choose it for many rows."""
        self.wants_alternatives = request.top_n_tokens > 0
        """Whether each token comes with its top-n alternatives (`top_n_tokens`)."""

    @property
    def last_token_id(self) -> int:
        """The token the next model step must be fed."""
        return self._generated[-1]

    @property
    def generated_count(self) -> int:
        return len(self._generated)

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None

    def record_prefill(self, prompt_logits: torch.Tensor) -> None:
        """Keep the prompt's logprobs (`decoder_input_details`) from the prefill's [L, V] logits."""
        ids = list(self.request.input_ids)
        logprobs: list[float | None] = [None]
        if len(ids) > 1:
            targets = torch.tensor(ids[1:], device=prompt_logits.device).unsqueeze(1)
            scores = torch.log_softmax(prompt_logits[:-1].to(torch.float32), dim=-1)
            logprobs.extend(scores.gather(1, targets).squeeze(1).tolist())
        self._prefill = tuple(
            PrefillToken(id=i, text=self._codec.decode([i]), logprob=logprob)
            for i, logprob in zip(ids, logprobs, strict=True)
        )

    def advance(self, logits: torch.Tensor) -> TokenEvent:
        """Choose the next token from the last position's logits ([1, V]) and record it."""
        if self.finished:
            raise RuntimeError("the sequence has already finished")
        if self._constraint is not None:
            logits = self._constraint.mask(logits.to(torch.float32))
        history = _NO_HISTORY if self._history is None else self._history[:, : self._length]
        choice = self._chooser.choose(history, logits)
        return self.accept(choice.token_id, choice.logprob, choice.logprobs)

    def accept(
        self, token_id: int, logprob: float, logprobs: torch.Tensor | None = None
    ) -> TokenEvent:
        """Record a token chosen elsewhere (a batched argmax for `plain_greedy` rows), with its
        logprob and, where top-n alternatives are wanted, the distribution it came from ([V]).

        Called for every row at every step: it creates no more objects than the event."""
        if self.finish_reason is not None:
            raise RuntimeError("the sequence has already finished")
        if self._constraint is not None:
            self._constraint.advance(token_id)
        if self._history is not None:
            self._history[0, self._length] = token_id
        self._length += 1
        generated = self._generated
        generated.append(token_id)
        text = self._detokenizer.push(token_id)
        token = GeneratedToken(token_id, text, logprob, self._codec.is_special(token_id))
        self.finish_reason = self._stopping.check(token_id, text)
        if not self.wants_alternatives:
            return TokenEvent(len(generated), token)
        return TokenEvent(len(generated), token, self._alternatives(logprobs))

    def completion(self, queued_at: float, started_at: float, finished_at: float) -> Completion:
        """The summary of a finished sequence, for its last event."""
        if self.finish_reason is None:
            raise RuntimeError("the sequence has not finished")
        text = decode_new_text(self._decode_skipping_special, self._context_id(), self._generated)
        if self.request.return_full_text:
            text = self.request.inputs + text
        return Completion(
            generated_text=text,
            finish_reason=self.finish_reason,
            generated_tokens=len(self._generated),
            seed=self._chooser.reported_seed,
            input_length=self.request.input_length,
            prefill=self._prefill,
            queued_at=queued_at,
            started_at=started_at,
            finished_at=finished_at,
            max_new_tokens=self.request.max_new_tokens,
        )

    def _alternatives(self, logprobs: torch.Tensor | None) -> tuple[GeneratedToken, ...]:
        if logprobs is None:
            raise ValueError("top-n alternatives need the distribution the token came from")
        return tuple(
            GeneratedToken(
                id=token_id,
                text=self._codec.decode([token_id]),
                logprob=logprob,
                special=self._codec.is_special(token_id),
            )
            for token_id, logprob in top_alternatives(logprobs, self.request.top_n_tokens)
        )

    def _context_id(self) -> int | None:
        ids = self.request.input_ids
        return ids[-1] if ids else None

    def _decode_skipping_special(self, ids: Sequence[int]) -> str:
        return self._codec.decode(ids, skip_special_tokens=True)
