"""Incremental detokenization: the text each new token adds, as TGI computes it.

Decoding token by token is wrong for byte-level and SentencePiece tokenizers (spaces and
multi-byte characters depend on neighbours). TGI decodes a short window instead: the text of
`ids[prefix:]` minus the text of `ids[prefix:read]`. While the window ends inside a UTF-8
character (the decoded text ends with U+FFFD) it reports "" and keeps the window, so the
character comes out whole with the token that completes it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

__all__ = ["IncrementalDetokenizer", "decode_new_text"]

Decode = Callable[[Sequence[int]], str]
REPLACEMENT_CHARACTER = "\ufffd"
PREFIX_CONTEXT_TOKENS = 5


class IncrementalDetokenizer:
    """Turns a growing sequence of token ids into text deltas, one per token."""

    def __init__(self, decode: Decode, prompt_ids: Sequence[int]) -> None:
        self._decode = decode
        self._ids = list(prompt_ids)
        self._prefix_offset = max(len(self._ids) - PREFIX_CONTEXT_TOKENS, 0)
        self._read_offset = len(self._ids)

    def push(self, token_id: int) -> str:
        """Add one token; the text it completes ("" while a character is incomplete)."""
        self._ids.append(token_id)
        prefix_text = self._decode(self._ids[self._prefix_offset : self._read_offset])
        window_text = self._decode(self._ids[self._prefix_offset :])
        if len(window_text) <= len(prefix_text) or window_text.endswith(REPLACEMENT_CHARACTER):
            return ""
        self._prefix_offset = self._read_offset
        self._read_offset = len(self._ids)
        return window_text[len(prefix_text) :]


def decode_new_text(decode: Decode, context_id: int | None, new_ids: Sequence[int]) -> str:
    """The text of `new_ids`, decoded with one token of left context so leading spaces survive."""
    if context_id is None:
        return decode(new_ids)
    context_text = decode([context_id])
    full_text = decode([context_id, *new_ids])
    if full_text.startswith(context_text):
        return full_text[len(context_text) :]
    return decode(new_ids)
