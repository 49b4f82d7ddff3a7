"""Loading the served model and wiring it into an engine.

With MODEL_ID unset, the built-in tiny model is built (first time) and loaded from the cache;
otherwise transformers loads MODEL_ID, a hub id or a local folder, with HF_TOKEN for gated repos
and TGI's `--revision`, `--trust-remote-code` and `--quantize` (model/launch_flags.py).
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
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from common.records import from_attributes
from tgi_server.engine.base import ServedModel
from tgi_server.engine.thread import Engine
from tgi_server.generation.grammar import GrammarCompiler
from tgi_server.model.batch_runner import (
    BatchRunner,
    ready_made_mask_works,
    supports_padded_batching,
)
from tgi_server.model.codec import HFTextCodec
from tgi_server.model.launch_flags import pretrained_options, quantization_config
from tgi_server.model.runner import ModelRunner
from tgi_server.model.tiny import TINY_MODEL_ID, ensure_tiny_model
from tgi_server.scheduler.admission import BatchLimits
from tgi_server.scheduler.base import Scheduler
from tgi_server.scheduler.batching import BatchingScheduler
from tgi_server.scheduler.sequential import SequentialScheduler
from tgi_server.settings import BackendSettings

__all__ = [
    "LoadedModel",
    "LoadedTokenizer",
    "batch_limits",
    "build_engine",
    "build_model_server",
    "eos_token_ids",
    "grammar_compiler",
    "load_model",
    "load_tokenizer",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    model_id: str
    """The id reported in /info: MODEL_ID, or the tiny model's name."""
    model: Any
    tokenizer: Any
    device: torch.device


@dataclass(frozen=True)
class LoadedTokenizer:
    """What the HTTP server needs of the model when a shard process runs the model itself."""

    model_id: str
    tokenizer: Any
    context: int | None
    """The most positions the model takes (`max_position_embeddings`), if its config says."""


def load_model(settings: BackendSettings) -> LoadedModel:
    """Load the configured model and tokenizer, ready for inference (with `--revision`,
    `--trust-remote-code` and `--quantize` applied: `launch_flags`)."""
    source, model_id = _source(settings)
    options = pretrained_options(settings)
    device = _pick_device()
    dtype = _pick_dtype(device)
    log.info("Loading %s on %s", model_id, device)
    tokenizer = AutoTokenizer.from_pretrained(source, **options)
    quantization = quantization_config(settings, dtype)
    if quantization is None:
        model: Any = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **options)
        model.to(device)
    else:  # a bitsandbytes model is placed while loading; it cannot be moved afterwards
        model = AutoModelForCausalLM.from_pretrained(
            source, dtype=dtype, quantization_config=quantization, device_map=device, **options
        )
    model.eval()
    return LoadedModel(model_id=model_id, model=model, tokenizer=tokenizer, device=device)


def load_tokenizer(settings: BackendSettings) -> LoadedTokenizer:
    """The configured model's tokenizer and context, without its weights. The built-in tiny
    model is built if the cache lacks it; the shard may be building it at the same moment,
    which is safe (each build is published atomically and the first copy wins)."""
    source, model_id = _source(settings)
    options = pretrained_options(settings)
    tokenizer = AutoTokenizer.from_pretrained(source, **options)
    config = AutoConfig.from_pretrained(source, **options)
    return LoadedTokenizer(model_id, tokenizer, _positions(config))


def _source(settings: BackendSettings) -> tuple[str | Path, str]:
    """(where to load from, the id /info reports)."""
    if settings.model_id is None:
        return ensure_tiny_model(settings.cache_dir), TINY_MODEL_ID
    return settings.model_id, settings.model_id


def build_engine(loaded: LoadedModel, settings: BackendSettings | None = None) -> Engine:
    """An engine serving `loaded` with the scheduler `settings` ask for (default: batching)."""
    scheduler, served = build_model_server(loaded, settings or BackendSettings())
    return Engine(scheduler, served)


def build_model_server(
    loaded: LoadedModel, settings: BackendSettings
) -> tuple[Scheduler, ServedModel]:
    """The scheduler `settings` ask for over `loaded`, and what the HTTP layer knows of it."""
    codec = HFTextCodec(loaded.tokenizer)
    scheduler = _build_scheduler(loaded, codec, settings)
    served = ServedModel(
        model_id=loaded.model_id,
        codec=codec,
        device_type=loaded.device.type,
        device_name=_device_name(loaded.device),
        grammar=grammar_compiler(loaded.tokenizer),
    )
    return scheduler, served


def model_context(model: Any) -> int | None:
    """The most positions the model takes (its config's `max_position_embeddings`), if known."""
    return _positions(getattr(model, "config", None))


def _positions(config: Any) -> int | None:
    value = getattr(config, "max_position_embeddings", None)
    return value if isinstance(value, int) and value > 0 else None


def fit_to_context(
    settings: BackendSettings, context: int | None, *, warn: bool = True
) -> BackendSettings:
    """`settings` whose token limits fit a model of `context` positions.

    Limits left at their defaults are lowered to fit (`max_total_tokens` to the context,
    `max_input_tokens` below it), as TGI's launcher derives its defaults from the model;
    limits given explicitly that do not fit are a start-up error saying what to pass instead.
    A lowering is logged as a warning unless `warn` is false (the shard repeats the HTTP
    server's fit, which has told the user already).
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
    if warn:
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
    """The continuous-batching admission limits of `settings` (same-named, with the two token
    budgets resolved to their defaults where unset)."""
    return from_attributes(
        BatchLimits,
        settings,
        max_batch_prefill_tokens=settings.batch_prefill_tokens,
        max_batch_total_tokens=settings.batch_total_tokens,
    )


def _build_scheduler(
    loaded: LoadedModel, codec: HFTextCodec, settings: BackendSettings
) -> Scheduler:
    eos = frozenset() if settings.ignore_eos else eos_token_ids(loaded.model, loaded.tokenizer)
    if settings.scheduler == "batching":
        if supports_padded_batching(loaded.model):
            ready_made_mask = ready_made_mask_works(loaded.model, loaded.device)
            runner = BatchRunner(loaded.model, loaded.device, ready_made_mask=ready_made_mask)
            return BatchingScheduler(runner, codec, eos, batch_limits(settings))
        log.warning(
            "%s cannot be batched (sliding-window attention); serving sequentially", loaded.model_id
        )
    return SequentialScheduler(ModelRunner(loaded.model, loaded.device), codec, eos)


def grammar_compiler(tokenizer: Any) -> GrammarCompiler | None:
    """Compiles `grammar` parameters for `tokenizer`; None (with a warning) without an EOS or
    a fast (Rust) tokenizer, which the grammar engine reads the vocabulary from."""
    eos = getattr(tokenizer, "eos_token_id", None)
    if eos is None:
        log.warning("no EOS token: structured generation (grammar) is disabled")
        return None
    if getattr(tokenizer, "backend_tokenizer", None) is None:
        log.warning("no fast tokenizer: structured generation (grammar) is disabled")
        return None
    return GrammarCompiler(tokenizer, int(eos))


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
