"""Structured generation: TGI's `grammar` parameter, compiled with outlines-core as TGI does.

A grammar is `{"type": "json" | "json_object", "value": <JSON Schema, object or string>}`,
`{"type": "json_schema", "value": {"name"?, "schema"}}` or `{"type": "regex", "value": str}`.
JSON Schemas become a regular expression (outlines-core's `build_regex_from_schema`), and the
regular expression an index over the model's vocabulary: for every automaton state, the tokens
allowed next. `GrammarCompiler` builds the vocabulary once and compiles each distinct grammar
once (an LRU cache, thread-safe: validation threads share it). A `TokenConstraint` walks one
sequence through its index; EOS is allowed only where the grammar may end, so every output that
ends by itself matches the grammar.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

import torch

from tgi_server.errors import ValidationError

__all__ = ["CompiledGrammar", "GrammarCompiler", "TokenConstraint", "grammar_regex"]

CACHE_SIZE = 128


class CompiledGrammar:
    """A grammar's index over the vocabulary; shared by every request with that grammar."""

    def __init__(self, index: Any, key: str, eos_token_id: int) -> None:
        self.index = index
        self.key = key
        self.eos_token_id = eos_token_id


class TokenConstraint:
    """One sequence's position in its grammar: which tokens may come next."""

    def __init__(self, grammar: CompiledGrammar) -> None:
        from outlines_core import Guide  # type: ignore[import-untyped]

        self._guide = Guide(grammar.index)
        self._eos_token_id = grammar.eos_token_id
        self._allowed: list[int] = list(self._guide.get_tokens())

    def mask(self, scores: torch.Tensor) -> torch.Tensor:
        """`scores` ([1, V]) with every token the grammar forbids now at -inf."""
        allowed = torch.tensor(self._allowed, dtype=torch.long, device=scores.device)
        allowed = allowed[allowed < scores.shape[-1]]
        masked = torch.full_like(scores, float("-inf"))
        masked[:, allowed] = scores[:, allowed]
        return masked

    def advance(self, token_id: int) -> None:
        """Move past `token_id` (which `mask` allowed); EOS ends the walk."""
        if token_id == self._eos_token_id:
            self._allowed = [token_id]
        elif token_id in self._allowed:
            self._allowed = list(self._guide.advance(token_id))


class GrammarCompiler:
    """Compiles grammars for one tokenizer, each distinct grammar once."""

    def __init__(self, tokenizer: Any, eos_token_id: int) -> None:
        from outlines_core import Vocabulary

        special = {int(i) for i in getattr(tokenizer, "all_special_ids", [])}
        tokens = _token_bytes(tokenizer, exclude=special | {eos_token_id})
        self._vocabulary = Vocabulary(eos_token_id, tokens)
        self._eos_token_id = eos_token_id
        self._cache: OrderedDict[str, CompiledGrammar] = OrderedDict()
        self._lock = threading.Lock()
        self.compilations = 0
        """How many grammars were actually compiled (not served from the cache)."""

    def compile(self, grammar: Mapping[str, Any]) -> CompiledGrammar:
        """The compiled `grammar` (422 ValidationError with the reason when it cannot be)."""
        return self.compile_regex(grammar_regex(grammar))

    def compile_regex(self, regex: str) -> CompiledGrammar:
        """The compiled grammar of `regex` (422 ValidationError when it cannot be)."""
        with self._lock:
            cached = self._cache.get(regex)
            if cached is not None:
                self._cache.move_to_end(regex)
                return cached
        compiled = CompiledGrammar(self._build(regex), regex, self._eos_token_id)
        with self._lock:
            self.compilations += 1
            self._cache[regex] = compiled
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return compiled

    def _build(self, regex: str) -> Any:
        from outlines_core import Index

        try:
            return Index(regex, self._vocabulary)
        except Exception as exc:
            raise ValidationError(f"grammar is not valid: {exc}") from exc


def grammar_regex(grammar: Mapping[str, Any]) -> str:
    """The regular expression a TGI grammar stands for."""
    kind, value = grammar.get("type"), grammar.get("value")
    if kind == "regex":
        if not isinstance(value, str):
            raise ValidationError("grammar is not valid: a regex grammar needs a string value")
        return value
    if kind in ("json", "json_object"):
        return _schema_regex(value)
    if kind == "json_schema":
        if not isinstance(value, dict) or "schema" not in value:
            raise ValidationError('grammar is not valid: json_schema needs {"schema": ...}')
        return _schema_regex(value["schema"])
    raise ValidationError(f"grammar is not valid: unknown grammar type {kind!r}")


def _schema_regex(schema: Any) -> str:
    from outlines_core.json_schema import (  # type: ignore[import-untyped]
        build_regex_from_schema,
    )

    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except ValueError as exc:
            raise ValidationError(f"grammar is not valid: {exc}") from exc
    if schema is None or schema == {}:
        schema = {"type": "object"}
    if not isinstance(schema, dict):
        raise ValidationError("grammar is not valid: a JSON Schema must be an object")
    try:
        return str(build_regex_from_schema(json.dumps(schema, sort_keys=True)))
    except Exception as exc:
        raise ValidationError(f"grammar is not valid: {exc}") from exc


def _token_bytes(tokenizer: Any, exclude: Iterable[int]) -> dict[bytes, list[int]]:
    """Each token's bytes (byte-level BPE or SentencePiece spelling undone), ids grouped."""
    skip = set(exclude)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    byte_level = backend is not None and "ByteLevel" in str(backend.decoder)
    table: dict[bytes, list[int]] = {}
    for token, token_id in tokenizer.get_vocab().items():
        if token_id in skip:
            continue
        data = _byte_level_bytes(token) if byte_level else _sentencepiece_bytes(token)
        if data:
            table.setdefault(data, []).append(int(token_id))
    return table


def _byte_level_bytes(token: str) -> bytes:
    decoder = _unicode_to_byte()
    try:
        return bytes(decoder[char] for char in token)
    except KeyError:
        return token.encode("utf-8")


def _sentencepiece_bytes(token: str) -> bytes:
    if len(token) == 6 and token.startswith("<0x") and token.endswith(">"):
        return bytes([int(token[3:5], 16)])
    return token.replace("\u2581", " ").encode("utf-8")


@lru_cache(maxsize=1)
def _unicode_to_byte() -> dict[str, int]:
    """The inverse of GPT-2's byte-to-printable-character table used by byte-level BPE."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    codes = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return {chr(code): byte for byte, code in zip(printable, codes, strict=True)}
