"""The text side of a model: token ids to text and back, behind one small interface.

Validation, detokenization and stop checks depend on this protocol only, so they can be tested
with a fake codec and work with any transformers tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

__all__ = ["HFTextCodec", "TextCodec"]


class TextCodec(Protocol):
    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, with the model's special tokens (e.g. BOS) added."""
        ...

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = False) -> str:
        """The text of `ids`, without any clean-up of spaces."""
        ...

    def is_special(self, token_id: int) -> bool:
        """Whether `token_id` is one of the tokenizer's special tokens."""
        ...


class HFTextCodec:
    """A TextCodec over a transformers tokenizer."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._special_ids = frozenset(int(i) for i in tokenizer.all_special_ids)

    def encode(self, text: str) -> list[int]:
        ids = self._tokenizer.encode(text, add_special_tokens=True, verbose=False)
        return [int(i) for i in ids]

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = False) -> str:
        text = self._tokenizer.decode(
            list(ids),
            skip_special_tokens=skip_special_tokens,
            clean_up_tokenization_spaces=False,
        )
        return str(text)

    def is_special(self, token_id: int) -> bool:
        return token_id in self._special_ids
