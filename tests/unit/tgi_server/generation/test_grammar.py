"""Grammar compilation: TGI's grammar shapes, refused keywords, the cache, EOS at the end only,
and bounds that the walk enforces."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tgi_server.errors import ValidationError
from tgi_server.generation.grammar import GrammarCompiler, TokenConstraint, grammar_key


def test_grammar_shapes_become_the_same_key() -> None:
    schema = {"type": "integer", "minimum": 1}
    as_json = grammar_key({"type": "json", "value": schema})
    assert grammar_key({"type": "json_object", "value": json.dumps(schema)}) == as_json
    assert grammar_key({"type": "json_schema", "value": {"schema": schema}}) == as_json
    assert grammar_key({"type": "regex", "value": "a+"}) != as_json


@given(st.sampled_from(["regex", "json", "json_schema", "xml", None]), st.integers())
def test_malformed_grammars_are_validation_errors(kind: Any, value: int) -> None:
    with pytest.raises(ValidationError):
        grammar_key({"type": kind, "value": value})


def test_a_keyword_that_is_not_enforced_is_a_422_naming_it() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "multipleOf": 2}}}
    with pytest.raises(ValidationError, match="'multipleOf' at '#/properties/n'"):
        grammar_key({"type": "json", "value": schema})


def test_a_regex_that_cannot_compile_is_a_422(tiny_tokenizer: Any) -> None:
    compiler = GrammarCompiler(tiny_tokenizer, int(tiny_tokenizer.eos_token_id))
    with pytest.raises(ValidationError, match=r"^Input validation error: grammar is not valid"):
        compiler.compile({"type": "regex", "value": "(["})


def walk(tokenizer: Any, grammar: dict[str, Any], seed: int, width: int = 1100) -> str:
    """A random walk through `grammar` (random scores, the best allowed token each step) until
    EOS; `width` exceeds the vocabulary, as a model's logits may."""
    eos = int(tokenizer.eos_token_id)
    constraint = TokenConstraint(compiler(tokenizer).compile(grammar))
    ids: list[int] = []
    generator = torch.Generator().manual_seed(seed)
    for _ in range(80):
        scores = constraint.mask(torch.randn((1, width), generator=generator))
        token = int(scores.argmax())
        if token == eos:
            constraint.advance(token)
            after = constraint.mask(torch.zeros((1, width)))
            assert torch.isfinite(after[0]).nonzero().flatten().tolist() == [eos]
            return str(tokenizer.decode(ids))
        assert torch.isinf(scores[0, eos])  # not finished: no EOS yet
        assert torch.isinf(scores[0, len(tokenizer) :]).all()  # beyond the vocabulary: never
        constraint.advance(token)
        ids.append(token)
    raise AssertionError("the walk did not end")


_COMPILERS: dict[int, GrammarCompiler] = {}


def compiler(tokenizer: Any) -> GrammarCompiler:
    """One compiler per tokenizer for the whole module (its vocabulary is built once)."""
    if id(tokenizer) not in _COMPILERS:
        _COMPILERS[id(tokenizer)] = GrammarCompiler(tokenizer, int(tokenizer.eos_token_id))
    return _COMPILERS[id(tokenizer)]


def test_a_walk_allows_eos_only_where_the_grammar_may_end(tiny_tokenizer: Any) -> None:
    grammar = {"type": "regex", "value": "(ab|cd)!"}
    compiled = compiler(tiny_tokenizer).compile(grammar)
    before = compiler(tiny_tokenizer).compilations
    assert compiler(tiny_tokenizer).compile(grammar) is compiled
    assert compiler(tiny_tokenizer).compilations == before
    for seed in range(3):
        assert re.fullmatch("(ab|cd)!", walk(tiny_tokenizer, grammar, seed))


def test_seed_001s_bounds_hold_on_every_walk(tiny_tokenizer: Any) -> None:
    """Seed 001: `animals_seen` between 1 and 5 (outlines-core let any integer through)."""
    schema = {
        "type": "object",
        "properties": {
            "animals_seen": {"type": "integer", "minimum": 1, "maximum": 5},
            "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            "code": {"type": "string", "minLength": 2, "maxLength": 3, "pattern": "^[a-z]+$"},
        },
        "required": ["animals_seen", "ratio", "code"],
    }
    for seed in range(8):
        document = json.loads(walk(tiny_tokenizer, {"type": "json", "value": schema}, seed))
        assert set(document) == {"animals_seen", "ratio", "code"}
        assert document["animals_seen"] in range(1, 6)
        assert 0 < document["ratio"] < 1
        assert re.fullmatch("[a-z]{2,3}", document["code"])


@pytest.mark.parametrize(
    ("pattern", "ascii_pattern"),
    [
        (r"\d{3}-\d{2}-\d{4}", r"[0-9]{3}-[0-9]{2}-[0-9]{4}"),
        (r"\w{6}/[\d_]", r"[0-9A-Za-z_]{6}/[0-9_]"),
    ],
)
def test_regex_digit_and_word_classes_are_ascii(
    tiny_tokenizer: Any, pattern: str, ascii_pattern: str
) -> None:
    """`\\d` and `\\w` as JSON Schema's regexes read them: Unicode's classes let a free model
    write `౩༨۷` for `\\d{3}` (39 walks of 40 did), which Python's `re` may not even accept."""
    grammar = {"type": "regex", "value": pattern}
    for seed in range(12):
        assert re.fullmatch(ascii_pattern, walk(tiny_tokenizer, grammar, seed))
