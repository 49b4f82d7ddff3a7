"""Loading the served model and wiring it into an engine.

With MODEL_ID unset, the built-in tiny model is built (first time) and loaded from the cache;
otherwise transformers loads MODEL_ID, a hub id or a local folder, with HF_TOKEN for gated repos.
The model goes on the GPU when there is one (bfloat16 where supported), else on the CPU in
float32.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tgi_server.admission_policy import BatchLimits
from tgi_server.batch_runner import BatchRunner, supports_padded_batching
from tgi_server.batching import BatchingScheduler
from tgi_server.codec import HFTextCodec
from tgi_server.engine import Engine, ServedModel
from tgi_server.grammar import GrammarCompiler
from tgi_server.runner import ModelRunner
from tgi_server.scheduler import Scheduler, SequentialScheduler
from tgi_server.settings import BackendSettings
from tgi_server.tiny_model import TINY_MODEL_ID, ensure_tiny_model

__all__ = ["LoadedModel", "batch_limits", "build_engine", "eos_token_ids", "load_model"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    model_id: str
    """The id reported in /info: MODEL_ID, or the tiny model's name."""
    model: Any
    tokenizer: Any
    device: torch.device


def load_model(settings: BackendSettings) -> LoadedModel:
    """Load the configured model and tokenizer, ready for inference."""
    if settings.model_id is None:
        source: str | Path = ensure_tiny_model(settings.cache_dir)
        model_id = TINY_MODEL_ID
    else:
        source = model_id = settings.model_id
    token = settings.hf_token.get_secret_value() if settings.hf_token else None
    device = _pick_device()
    log.info("Loading %s on %s", model_id, device)
    tokenizer = AutoTokenizer.from_pretrained(source, token=token)
    model: Any = AutoModelForCausalLM.from_pretrained(
        source, token=token, dtype=_pick_dtype(device)
    )
    model.to(device)
    model.eval()
    return LoadedModel(model_id=model_id, model=model, tokenizer=tokenizer, device=device)


def build_engine(loaded: LoadedModel, settings: BackendSettings | None = None) -> Engine:
    """An engine serving `loaded` with the scheduler `settings` ask for (default: batching)."""
    settings = settings or BackendSettings()
    codec = HFTextCodec(loaded.tokenizer)
    scheduler = _build_scheduler(loaded, codec, settings)
    served = ServedModel(
        model_id=loaded.model_id,
        codec=codec,
        device_type=loaded.device.type,
        device_name=_device_name(loaded.device),
        grammar=_grammar_compiler(loaded),
    )
    return Engine(scheduler, served)


def model_context(model: Any) -> int | None:
    """The most positions the model takes (its config's `max_position_embeddings`), if known."""
    value = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    return value if isinstance(value, int) and value > 0 else None


def fit_to_context(settings: BackendSettings, context: int | None) -> BackendSettings:
    """`settings` whose token limits fit a model of `context` positions.

    Limits left at their defaults are lowered to fit (`max_total_tokens` to the context,
    `max_input_tokens` below it), as TGI's launcher derives its defaults from the model;
    limits given explicitly that do not fit are a start-up error saying what to pass instead.
    """
    if context is None or settings.max_total_tokens <= context:
        return settings
    if "max_total_tokens" in settings.model_fields_set:
        raise ValueError(
            f"`max_total_tokens`({settings.max_total_tokens}) is more than the model's context"
            f" (max_position_embeddings={context}): pass --max-total-tokens {context} or less"
        )
    max_input = min(settings.max_input_tokens, context - 1)
    if "max_input_tokens" in settings.model_fields_set and max_input < settings.max_input_tokens:
        raise ValueError(
            f"`max_input_tokens`({settings.max_input_tokens}) does not fit the model's context"
            f" (max_position_embeddings={context}): pass --max-input-tokens {context - 1} or less"
        )
    log.warning(
        "the model takes %d positions: max_total_tokens lowered to %d, max_input_tokens to %d",
        context,
        context,
        max_input,
    )
    return settings.model_copy(update={"max_total_tokens": context, "max_input_tokens": max_input})


def _device_name(device: torch.device) -> str | None:
    return str(torch.cuda.get_device_name(device)) if device.type == "cuda" else None


def batch_limits(settings: BackendSettings) -> BatchLimits:
    """The continuous-batching admission limits of `settings`."""
    return BatchLimits(
        max_batch_prefill_tokens=settings.batch_prefill_tokens,
        max_batch_total_tokens=settings.batch_total_tokens,
        max_batch_size=settings.max_batch_size,
        waiting_served_ratio=settings.waiting_served_ratio,
        max_waiting_tokens=settings.max_waiting_tokens,
    )


def _build_scheduler(
    loaded: LoadedModel, codec: HFTextCodec, settings: BackendSettings
) -> Scheduler:
    eos = frozenset() if settings.ignore_eos else eos_token_ids(loaded.model, loaded.tokenizer)
    if settings.scheduler == "batching":
        if supports_padded_batching(loaded.model):
            runner = BatchRunner(loaded.model, loaded.device)
            return BatchingScheduler(runner, codec, eos, batch_limits(settings))
        log.warning(
            "%s cannot be batched (sliding-window attention); serving sequentially", loaded.model_id
        )
    return SequentialScheduler(ModelRunner(loaded.model, loaded.device), codec, eos)


def _grammar_compiler(loaded: LoadedModel) -> GrammarCompiler | None:
    eos = getattr(loaded.tokenizer, "eos_token_id", None)
    if eos is None:
        log.warning("no EOS token: structured generation (grammar) is disabled")
        return None
    return GrammarCompiler(loaded.tokenizer, int(eos))


def eos_token_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    """Every id that ends a sequence: the generation config's and the tokenizer's EOS."""
    generation_config = getattr(model, "generation_config", None)
    candidates = [
        getattr(generation_config, "eos_token_id", None),
        getattr(model.config, "eos_token_id", None),
        getattr(tokenizer, "eos_token_id", None),
    ]
    return frozenset(_as_ids(candidates))


def _as_ids(values: Iterable[Any]) -> Iterable[int]:
    for value in values:
        if isinstance(value, int):
            yield value
        elif isinstance(value, list | tuple):
            yield from (int(v) for v in value)


def _pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _pick_dtype(device: torch.device) -> torch.dtype:
    if device.type != "cuda":
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
