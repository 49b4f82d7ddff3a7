"""Grammar compilation: TGI's grammar shapes, the byte table, the cache, EOS at the end only."""

from __future__ import annotations

import re
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tgi_server.errors import ValidationError
from tgi_server.generation.grammar import (
    GrammarCompiler,
    TokenConstraint,
    _unicode_to_byte,
    grammar_regex,
)


def test_the_byte_level_table_covers_every_byte_once() -> None:
    table = _unicode_to_byte()
    assert sorted(table.values()) == list(range(256))
    assert table["Ġ"] == ord(" ")
    assert table["a"] == ord("a")


def test_grammar_shapes_become_regexes() -> None:
    assert grammar_regex({"type": "regex", "value": "a+"}) == "a+"
    schema = {"type": "integer"}
    as_json = grammar_regex({"type": "json", "value": schema})
    assert grammar_regex({"type": "json_object", "value": '{"type": "integer"}'}) == as_json
    assert grammar_regex({"type": "json_schema", "value": {"schema": schema}}) == as_json
    assert re.fullmatch(as_json, "-42")


@given(st.sampled_from(["regex", "json", "json_schema", "xml", None]), st.integers())
def test_malformed_grammars_are_validation_errors(kind: Any, value: int) -> None:
    with pytest.raises(ValidationError):
        grammar_regex({"type": kind, "value": value})


def test_a_walk_allows_eos_only_where_the_grammar_may_end(tiny_tokenizer: Any) -> None:
    eos = int(tiny_tokenizer.eos_token_id)
    compiler = GrammarCompiler(tiny_tokenizer, eos)
    grammar = compiler.compile({"type": "regex", "value": "(ab|cd)!"})
    assert compiler.compile({"type": "regex", "value": "(ab|cd)!"}) is grammar
    assert compiler.compilations == 1
    constraint = TokenConstraint(grammar)
    ids: list[int] = []
    generator = torch.Generator().manual_seed(3)
    for _ in range(12):
        scores = constraint.mask(torch.randn((1, 1024), generator=generator))
        token = int(scores.argmax())
        if token == eos:
            break
        assert torch.isinf(scores[0, eos])  # not finished: no EOS yet
        constraint.advance(token)
        ids.append(token)
    assert re.fullmatch("(ab|cd)!", tiny_tokenizer.decode(ids))
