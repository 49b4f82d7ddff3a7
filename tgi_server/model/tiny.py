"""The built-in tiny model: what the backend serves when no MODEL_ID is given.

No machine here can download weights, so the default model is built locally: a small
Llama-architecture causal LM with random weights (fixed seed) and a byte-level BPE tokenizer
trained on a bundled text, with a chat template. The same library versions give the same bytes
on every build. It is built once, in well under a second, and cached under
`<cache_dir>/tiny-llama-v<VERSION>/` in the usual `save_pretrained` layout, so transformers (or
anything else) can load it like any local model.

Several backends may start at once on a fresh cache: each builds in a private staging folder and
renames it into place; whoever loses the race discards its copy.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, cast

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
from transformers.utils import logging as transformers_logging

__all__ = [
    "TINY_MODEL_ID",
    "TINY_MODEL_VERSION",
    "build_tiny_model",
    "ensure_tiny_model",
    "tiny_model_dir",
]

log = logging.getLogger(__name__)

TINY_MODEL_ID = "tiny-llama"
TINY_MODEL_VERSION = 1
"""Bump when anything below changes what gets built, so old caches are not reused."""

VOCAB_SIZE = 1024
SEED = 20240601
PAD, BOS, EOS = "<pad>", "<s>", "</s>"
ROLE_MARKERS = ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>")
SPECIAL_TOKENS = (PAD, BOS, EOS, *ROLE_MARKERS)
END_OF_TURN = "<|end|>"

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)

ARCHITECTURE: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 176,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 4096,
}
_REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def tiny_model_dir(cache_dir: Path) -> Path:
    """Where the current version of the tiny model lives in `cache_dir`."""
    return cache_dir / f"{TINY_MODEL_ID}-v{TINY_MODEL_VERSION}"


def ensure_tiny_model(cache_dir: Path) -> Path:
    """The tiny model's folder, building it first if this cache does not have it yet."""
    target = tiny_model_dir(cache_dir)
    if _is_complete(target):
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-", dir=cache_dir))
    try:
        log.info("Building the built-in tiny model into %s (first start only)", target)
        started = time.perf_counter()
        build_tiny_model(staging)
        _make_readable(staging)
        _publish(staging, target)
        log.info("Built the tiny model in %.1fs", time.perf_counter() - started)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def build_tiny_model(folder: Path) -> None:
    """Write the tokenizer and the model into `folder` (which must exist)."""
    tokenizer = build_tokenizer(_corpus())
    tokenizer.save_pretrained(folder)
    model = build_model(tokenizer)
    with _without_progress_bars():
        model.save_pretrained(folder)


def build_tokenizer(corpus: str) -> Any:
    """A byte-level BPE tokenizer trained on `corpus`, with BOS prepended and a chat template."""
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=1,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(corpus.splitlines(), trainer=trainer)
    bos_id = backend.token_to_id(BOS)
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    fast_tokenizer = cast(Any, PreTrainedTokenizerFast)  # transformers' stubs are partial
    return fast_tokenizer(
        tokenizer_object=backend,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        extra_special_tokens=list(ROLE_MARKERS),
        chat_template=CHAT_TEMPLATE,
        clean_up_tokenization_spaces=False,
        model_max_length=ARCHITECTURE["max_position_embeddings"],
    )


def build_model(tokenizer: Any) -> Any:
    """A randomly initialised LlamaForCausalLM sized for `tokenizer`, the same on every call."""
    ids = {token: int(tokenizer.convert_tokens_to_ids(token)) for token in SPECIAL_TOKENS}
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        pad_token_id=ids[PAD],
        bos_token_id=ids[BOS],
        eos_token_id=ids[EOS],
        **ARCHITECTURE,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        model = LlamaForCausalLM(config)
    model.generation_config = cast(Any, GenerationConfig)(
        bos_token_id=ids[BOS],
        eos_token_id=[ids[EOS], ids[END_OF_TURN]],
        pad_token_id=ids[PAD],
    )
    return model


@contextmanager
def _without_progress_bars() -> Iterator[None]:
    """Our own log line says what is happening; transformers' bars would only add noise."""
    progress = cast(Any, transformers_logging)
    was_enabled = progress.is_progress_bar_enabled()
    progress.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            progress.enable_progress_bar()


def _corpus() -> str:
    return resources.files("tgi_server").joinpath("assets/tiny_corpus.txt").read_text("utf-8")


def _is_complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in _REQUIRED_FILES)


def _make_readable(folder: Path) -> None:
    folder.chmod(0o755)
    for path in folder.iterdir():
        path.chmod(0o644)


def _publish(staging: Path, target: Path) -> None:
    """Move a finished build into place atomically; keep the other copy if one got there first."""
    try:
        os.rename(staging, target)
    except OSError:
        if not _is_complete(target):
            raise
        log.info("Another process built the tiny model first; using its copy")
