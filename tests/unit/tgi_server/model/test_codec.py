"""The transformers codec: the Rust fast path gives transformers' ids, or is not taken."""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tgi_server.model.codec import HFTextCodec


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=40), special=st.booleans())
def test_encoding_gives_the_tokenizers_ids(tiny_tokenizer: Any, text: str, special: bool) -> None:
    codec = HFTextCodec(tiny_tokenizer)
    expected = tiny_tokenizer.encode(text, add_special_tokens=special, verbose=False)
    assert codec.encode(text, add_special_tokens=special) == list(expected)


class DisagreeingTokenizer:
    """A tokenizer whose Rust backend would add no BOS where the Python layer adds one."""

    all_special_ids = (1,)

    def __init__(self) -> None:
        self.backend_tokenizer = SimpleNamespace(
            encode=lambda text, add_special_tokens: SimpleNamespace(ids=[ord(c) for c in text]),
            decode=lambda ids, skip_special_tokens: "".join(map(chr, ids)),
        )

    def encode(self, text: str, *, add_special_tokens: bool, verbose: bool) -> list[int]:
        return ([1] if add_special_tokens else []) + [ord(c) for c in text]


def test_a_backend_that_disagrees_is_not_used_for_encoding() -> None:
    codec = HFTextCodec(DisagreeingTokenizer())
    assert codec.encode("ab") == [1, 97, 98]
    assert codec.encode("ab", add_special_tokens=False) == [97, 98]


def test_a_template_renders_tools_only_when_it_mentions_them(tiny_tokenizer: Any) -> None:
    assert not HFTextCodec(tiny_tokenizer).template_renders_tools()
    with_tools = copy.copy(tiny_tokenizer)
    with_tools.chat_template = "{% if tools %}{{ tools | tojson }}{% endif %}"
    assert HFTextCodec(with_tools).template_renders_tools()


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=60))
def test_span_offsets_are_the_utf8_length_before(tiny_tokenizer: Any, text: str) -> None:
    offsets = tiny_tokenizer(text, return_offsets_mapping=True)["offset_mapping"]
    spans = HFTextCodec(tiny_tokenizer).spans(text)
    assert [(span.start, span.stop) for span in spans] == [
        (len(text[:start].encode("utf-8")), len(text[:stop].encode("utf-8")))
        for start, stop in offsets
    ]
