"""Fixtures for the backend's unit tests: the tiny model (built once per session) and fakes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from transformers import AutoTokenizer

from tgi_server.engine.base import GenerationHandle
from tgi_server.generation.events import EngineEvent, FailureEvent
from tgi_server.model.codec import HFTextCodec, TokenSpan
from tgi_server.model.runner import PrefillOutput
from tgi_server.model.tiny import ensure_tiny_model
from tgi_server.scheduler.base import Scheduler


@pytest.fixture(scope="session")
def tiny_model_path(tgis_cache_dir: Path) -> Path:
    return ensure_tiny_model(tgis_cache_dir)


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model_path: Path) -> Any:
    return AutoTokenizer.from_pretrained(tiny_model_path)


@pytest.fixture(scope="session")
def tiny_codec(tiny_tokenizer: Any) -> HFTextCodec:
    return HFTextCodec(tiny_tokenizer)


class ByteCodec:
    """A codec whose tokens are single UTF-8 bytes (ids 0-255), plus special tokens from 256.

    Decoding replaces incomplete UTF-8 with U+FFFD, as byte-level tokenizers do.
    """

    BOS = 256
    EOS = 257
    NAMES: ClassVar[dict[int, str]] = {BOS: "<s>", EOS: "</s>"}
    VOCAB_SIZE = 258

    def encode(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
        return [self.BOS, *text.encode("utf-8")] if add_special_tokens else [*text.encode()]

    def render_chat(self, messages: list[dict[str, Any]], tools: list[Any] | None) -> str:
        return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "

    def template_renders_tools(self) -> bool:
        return False

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = False) -> str:
        text, pending = "", bytearray()
        for token_id in ids:
            if token_id in self.NAMES:
                text += pending.decode("utf-8", errors="replace")
                pending.clear()
                text += "" if skip_special_tokens else self.NAMES[token_id]
            else:
                pending.append(token_id)
        return text + pending.decode("utf-8", errors="replace")

    def is_special(self, token_id: int) -> bool:
        return token_id in self.NAMES

    def spans(self, text: str, *, add_special_tokens: bool = True) -> list[TokenSpan]:
        data = text.encode("utf-8")
        spans = [TokenSpan(self.BOS, "", 0, 0)] if add_special_tokens else []
        for offset, byte in enumerate(data):
            spans.append(
                TokenSpan(
                    byte, data[offset : offset + 1].decode(errors="replace"), offset, offset + 1
                )
            )
        return spans


@pytest.fixture
def byte_codec() -> ByteCodec:
    return ByteCodec()


@pytest.fixture(scope="session")
def tiny_model(tiny_model_path: Path) -> Any:
    from transformers import AutoModelForCausalLM

    model: Any = AutoModelForCausalLM.from_pretrained(tiny_model_path)
    return model.eval()


def favouring(token_id: int, vocab_size: int = ByteCodec.VOCAB_SIZE) -> torch.Tensor:
    """Logits [1, V] that make `token_id` all but certain."""
    logits = torch.zeros((1, vocab_size))
    logits[0, token_id] = 20.0
    return logits


class ScriptedRunner:
    """A Runner whose model always continues with `script` (cycling), logging every call."""

    def __init__(self, script: Sequence[int], *, fail_on_decode: int | None = None) -> None:
        self.script = list(script)
        self.fail_on_decode = fail_on_decode
        self.calls: list[tuple[str, int]] = []

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def prefill(self, input_ids: Sequence[int], *, all_logits: bool = False) -> PrefillOutput:
        self.calls.append(("prefill", len(input_ids)))
        prompt_logits = torch.zeros((len(input_ids), ByteCodec.VOCAB_SIZE)) if all_logits else None
        return PrefillOutput(favouring(self.script[0]), prompt_logits, cache={"steps": 0})

    def decode(self, token_id: int, cache: Any) -> torch.Tensor:
        self.calls.append(("decode", token_id))
        cache["steps"] += 1
        if cache["steps"] == self.fail_on_decode:
            raise RuntimeError("boom")
        return favouring(self.script[cache["steps"] % len(self.script)])


def run_until_idle(scheduler: Scheduler, limit: int = 500) -> int:
    """Step `scheduler` until it has no work left, `limit` steps at the most; the steps taken."""
    steps = 0
    while scheduler.has_work() and steps < limit:
        scheduler.step()
        steps += 1
    return steps


async def collect(handle: GenerationHandle) -> list[EngineEvent]:
    """Every event of one request, up to its last (a completion or a failure)."""
    events: list[EngineEvent] = []
    while True:
        event = await asyncio.wait_for(handle.next_event(), 5)
        events.append(event)
        if isinstance(event, FailureEvent) or event.completion is not None:
            return events


class FakeTransport:
    """Stands in for an asyncio transport: keeps what is written."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closing
