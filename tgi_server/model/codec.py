"""The text side of a model: token ids to text and back, behind one small interface.

Validation, detokenization and stop checks depend on this protocol only, so they can be tested
with a fake codec and work with any transformers tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tgi_server.errors import TemplateError

__all__ = ["HFTextCodec", "TextCodec", "TokenSpan"]

ENCODING_PROBES = ("", "Hello world", "  two leading spaces", "é ü 漢字 😀", "a\nb\tc", "<s>x</s>")
"""Texts on which the Rust tokenizer must agree with transformers' to be used directly."""


@dataclass(frozen=True)
class TokenSpan:
    """One token of a prompt, as `POST /tokenize` lists it."""

    id: int
    text: str
    start: int
    stop: int
    """Byte offsets into the prompt's UTF-8; 0 and 0 for tokens no text produced."""


class TextCodec(Protocol):
    def encode(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
        """Token ids of `text`, with the model's special tokens (e.g. BOS) unless told not to."""
        ...

    def render_chat(self, messages: list[dict[str, Any]], tools: list[Any] | None) -> str:
        """The prompt of a chat, from the tokenizer's chat template (TemplateError if none)."""
        ...

    def template_renders_tools(self) -> bool:
        """Whether the chat template uses its `tools` variable (TGI then leaves them out of
        the tool prompt it appends to the last message)."""
        ...

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = False) -> str:
        """The text of `ids`, without any clean-up of spaces."""
        ...

    def is_special(self, token_id: int) -> bool:
        """Whether `token_id` is one of the tokenizer's special tokens."""
        ...

    def spans(self, text: str, *, add_special_tokens: bool = True) -> list[TokenSpan]:
        """`encode(text, add_special_tokens=...)` with each token's text and UTF-8 byte
        offsets into `text`."""
        ...


class HFTextCodec:
    """A TextCodec over a transformers tokenizer."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._special_ids = frozenset(int(i) for i in tokenizer.all_special_ids)
        # Fast tokenizers decode in Rust; calling it directly skips a per-call Python layer
        # that costs more than the decoding itself (two decodes per token per request).
        self._backend: Any = getattr(tokenizer, "backend_tokenizer", None)
        # Encoding through it halves the cost of a short prompt, where it gives the same ids.
        self._encode_with_backend = self._backend is not None and all(
            self._backend.encode(probe, add_special_tokens=special).ids
            == list(tokenizer.encode(probe, add_special_tokens=special, verbose=False))
            for probe in ENCODING_PROBES
            for special in (True, False)
        )

    def encode(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
        if self._encode_with_backend:
            return list(self._backend.encode(text, add_special_tokens=add_special_tokens).ids)
        ids = self._tokenizer.encode(text, add_special_tokens=add_special_tokens, verbose=False)
        return [int(i) for i in ids]

    def render_chat(self, messages: list[dict[str, Any]], tools: list[Any] | None) -> str:
        if not getattr(self._tokenizer, "chat_template", None):
            raise TemplateError("template not found")
        try:
            text = self._tokenizer.apply_chat_template(
                messages, tools=tools, add_generation_prompt=True, tokenize=False
            )
        except Exception as exc:  # a template that fails on this input is the client's 422
            raise TemplateError(str(exc)) from exc
        return str(text)

    def template_renders_tools(self) -> bool:
        template = getattr(self._tokenizer, "chat_template", None)
        return "tools" in str(template or "")

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = False) -> str:
        if self._backend is not None:
            return str(self._backend.decode(list(ids), skip_special_tokens=skip_special_tokens))
        text = self._tokenizer.decode(
            list(ids),
            skip_special_tokens=skip_special_tokens,
            clean_up_tokenization_spaces=False,
        )
        return str(text)

    def is_special(self, token_id: int) -> bool:
        return token_id in self._special_ids

    def spans(self, text: str, *, add_special_tokens: bool = True) -> list[TokenSpan]:
        encoding = self._tokenizer(
            text, add_special_tokens=add_special_tokens, return_offsets_mapping=True
        )
        spans = []
        char, byte = 0, 0  # a position in `text` and its UTF-8 offset: each step encodes only
        for token_id, (start, stop) in zip(  # the text since the last token, not all before it
            encoding["input_ids"], encoding["offset_mapping"], strict=True
        ):
            if start < char:  # an offset that goes back (special tokens): count from the start
                char, byte = 0, 0
            byte += len(text[char:start].encode("utf-8"))
            char = start
            stop_byte = byte + len(text[start:stop].encode("utf-8"))
            spans.append(TokenSpan(int(token_id), text[start:stop], byte, stop_byte))
        return spans
