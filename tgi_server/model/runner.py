"""The model forward passes: prefill a prompt, then decode one token at a time on a KV cache.

Each sequence owns a transformers `DynamicCache`, so a decode step feeds only the newest token.
This is the one module that calls the model; a batching runner (padded or paged caches) can
replace it without touching the sampling, stopping or scheduling code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from transformers import DynamicCache

from tgi_server.model.cache import cache_keyword

__all__ = ["ModelRunner", "PrefillOutput", "Runner"]


@dataclass(frozen=True)
class PrefillOutput:
    next_logits: torch.Tensor
    """Logits for the first new token, [1, V]."""
    prompt_logits: torch.Tensor | None
    """Logits at every prompt position, [L, V], when asked for (prompt logprobs)."""
    cache: Any
    """The sequence's KV cache, to pass to `decode`."""


class Runner(Protocol):
    """What a scheduler needs from the model: a prefill and a one-token decode per sequence."""

    @property
    def device(self) -> torch.device: ...

    def prefill(self, input_ids: Sequence[int], *, all_logits: bool = False) -> PrefillOutput: ...

    def decode(self, token_id: int, cache: Any) -> torch.Tensor: ...


class ModelRunner:
    """Runs a causal LM for one sequence at a time, with its KV cache."""

    def __init__(self, model: Any, device: torch.device) -> None:
        self._model = model
        self._device = device
        self._cache_keyword = cache_keyword(model)

    @property
    def device(self) -> torch.device:
        return self._device

    @torch.inference_mode()
    def prefill(self, input_ids: Sequence[int], *, all_logits: bool = False) -> PrefillOutput:
        """Run the whole prompt; keep the logits of every position only when `all_logits`."""
        cache = DynamicCache(config=self._model.config)
        ids = torch.tensor([list(input_ids)], dtype=torch.long, device=self._device)
        output = self._model(
            input_ids=ids,
            use_cache=True,
            logits_to_keep=0 if all_logits else 1,
            **{self._cache_keyword: cache},
        )
        logits = output.logits[0]
        return PrefillOutput(
            next_logits=logits[-1:].clone(),
            prompt_logits=logits if all_logits else None,
            cache=cache,
        )

    @torch.inference_mode()
    def decode(self, token_id: int, cache: Any) -> torch.Tensor:
        """Feed one token to a sequence with `cache` (updated in place); the next logits, [1, V]."""
        ids = torch.tensor([[token_id]], dtype=torch.long, device=self._device)
        output = self._model(input_ids=ids, use_cache=True, **{self._cache_keyword: cache})
        logits: torch.Tensor = output.logits[0, -1:]
        return logits
