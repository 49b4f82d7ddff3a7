"""Structured generation: TGI's `grammar` parameter, enforced with llguidance.

A grammar is `{"type": "json" | "json_object", "value": <JSON Schema, object or string>}`,
`{"type": "json_schema", "value": {"name"?, "schema"}}` or `{"type": "regex", "value": str}`.
A JSON Schema is checked first (`json_schema.checked_schema`: every keyword in it is enforced,
or the grammar is refused with a 422 naming the keyword), its objects closed to the properties
they list (`json_schema.closed_objects`, as TGI does), and written compact (no whitespace
between tokens of JSON). `grammar_key` turns a grammar into llguidance's grammar text: the cache
key, and what a shard is sent to compile. `GrammarCompiler` builds llguidance's view of the
vocabulary once and compiles each distinct key once (an LRU cache, thread-safe: validation
threads share it). A `TokenConstraint` walks one sequence through its grammar; EOS is allowed
only where the grammar may end, so every output that ends by itself matches the grammar.

llguidance was chosen over outlines-core and xgrammar by measurement (docs/backend.md,
"Structured output"; `benchmarks/grammar_engines.py`).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import llguidance.hf
import torch
from llguidance import LLMatcher, regex_to_lark

from tgi_server.errors import ValidationError
from tgi_server.generation.json_schema import checked_schema, closed_objects

if TYPE_CHECKING:  # a type of llguidance's stubs only
    from llguidance._lib import JsonCompileOptions

__all__ = ["CompiledGrammar", "GrammarCompiler", "TokenConstraint", "grammar_key"]

CACHE_SIZE = 128
JSON_OPTIONS: JsonCompileOptions = {"whitespace_flexible": False}
"""Compact JSON: `,` and `:` with no whitespace around, and none between values."""
REGEX_ASCII_CLASSES = "dw"
"""`\\d` is `[0-9]` and `\\w` is `[0-9A-Za-z_]` in a regex grammar, as in JSON Schema's and
JavaScript's regexes: with Unicode's classes, `\\d{3}` gave `౩༨۷` from a model free to pick."""
_BITS = torch.arange(8, dtype=torch.uint8)


class CompiledGrammar:
    """A grammar compiled for one tokenizer (a matcher at its start, which is only copied);
    shared by every request with that grammar."""

    def __init__(self, matcher: Any, key: str, eos_token_id: int) -> None:
        self.matcher = matcher
        self.key = key
        self.eos_token_id = eos_token_id


class TokenConstraint:
    """One sequence's position in its grammar: which tokens may come next."""

    def __init__(self, grammar: CompiledGrammar) -> None:
        self._matcher = grammar.matcher.deep_copy()
        self._eos_token_id = grammar.eos_token_id
        self._ended = False
        """EOS was taken (or a token the grammar forbids): only EOS may follow."""

    def mask(self, scores: torch.Tensor) -> torch.Tensor:
        """`scores` ([1, V]) with every token the grammar forbids now at -inf."""
        width = scores.shape[-1]
        if self._ended:
            allowed = torch.zeros(width, dtype=torch.bool)
            allowed[self._eos_token_id] = True
        else:
            words = torch.frombuffer(bytearray(self._matcher.compute_bitmask()), dtype=torch.uint8)
            bits = ((words.unsqueeze(-1) >> _BITS) & 1).flatten().bool()[:width]
            allowed = torch.zeros(width, dtype=torch.bool)
            allowed[: bits.numel()] = bits
        return scores.masked_fill(~allowed.to(scores.device), float("-inf"))

    def advance(self, token_id: int) -> None:
        """Move past `token_id` (which `mask` allowed); EOS ends the walk."""
        if self._ended:
            return
        if token_id == self._eos_token_id or not self._matcher.consume_token(token_id):
            self._ended = True


class GrammarCompiler:
    """Compiles grammars for one (fast) tokenizer, each distinct grammar once."""

    def __init__(self, tokenizer: Any, eos_token_id: int) -> None:
        self._tokenizer = llguidance.hf.from_tokenizer(tokenizer, eos_token=eos_token_id)
        self._eos_token_id = eos_token_id
        self._cache: OrderedDict[str, CompiledGrammar] = OrderedDict()
        self._lock = threading.Lock()
        self.compilations = 0
        """How many grammars were actually compiled (not served from the cache)."""

    def compile(self, grammar: Mapping[str, Any]) -> CompiledGrammar:
        """The compiled `grammar` (422 ValidationError with the reason when it cannot be)."""
        return self.compile_key(grammar_key(grammar))

    def compile_key(self, key: str) -> CompiledGrammar:
        """The compiled grammar of `key`, llguidance's grammar text (`grammar_key`); a 422
        ValidationError when it cannot be compiled."""
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        compiled = CompiledGrammar(self._build(key), key, self._eos_token_id)
        with self._lock:
            self.compilations += 1
            self._cache[key] = compiled
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return compiled

    def _build(self, key: str) -> Any:
        matcher = LLMatcher(self._tokenizer, key, log_level=0)
        if matcher.is_error():
            raise ValidationError(f"grammar is not valid: {matcher.get_error()}")
        return matcher


def grammar_key(grammar: Mapping[str, Any]) -> str:
    """llguidance's grammar text for a TGI grammar (a 422 ValidationError when the grammar is
    malformed or its schema holds a keyword that is not enforced)."""
    kind, value = grammar.get("type"), grammar.get("value")
    if kind == "regex":
        if not isinstance(value, str):
            raise ValidationError("grammar is not valid: a regex grammar needs a string value")
        return str(
            LLMatcher.grammar_from_lark(f"start: /{regex_to_lark(value, REGEX_ASCII_CLASSES)}/")
        )
    if kind == "json_schema":
        if not isinstance(value, dict) or "schema" not in value:
            raise ValidationError('grammar is not valid: json_schema needs {"schema": ...}')
        value = value["schema"]
    elif kind not in ("json", "json_object"):
        raise ValidationError(f"grammar is not valid: unknown grammar type {kind!r}")
    schema = json.dumps(closed_objects(checked_schema(value)), sort_keys=True)
    return str(LLMatcher.grammar_from_json_schema(schema, defaults=JSON_OPTIONS))
