"""The model runner: prefill + incremental decode on a KV cache equals a full forward pass."""

from __future__ import annotations

from typing import Any

import torch

from tgi_server.model.runner import ModelRunner


def test_cached_decoding_matches_recomputing_the_whole_sequence(tiny_model: Any) -> None:
    runner = ModelRunner(tiny_model, torch.device("cpu"))
    prompt = [1, 40, 41, 42, 43]
    prefill = runner.prefill(prompt)
    next_ids = [int(prefill.next_logits.argmax())]
    for _ in range(3):
        logits = runner.decode(next_ids[-1], prefill.cache)
        next_ids.append(int(logits.argmax()))
    with torch.inference_mode():
        full = tiny_model(input_ids=torch.tensor([prompt + next_ids[:-1]])).logits[0]
    assert prefill.cache.get_seq_length() == len(prompt) + 3
    assert torch.allclose(logits[0], full[-1], atol=1e-5)
    assert [int(full[i].argmax()) for i in range(len(prompt) - 1, full.shape[0])] == next_ids


def test_prefill_returns_every_position_only_when_asked(tiny_model: Any) -> None:
    runner = ModelRunner(tiny_model, torch.device("cpu"))
    assert runner.prefill([1, 2, 3]).prompt_logits is None
    everything = runner.prefill([1, 2, 3], all_logits=True)
    assert everything.prompt_logits is not None
    assert everything.prompt_logits.shape == (3, tiny_model.config.vocab_size)
    assert torch.equal(everything.prompt_logits[-1:], everything.next_logits)
