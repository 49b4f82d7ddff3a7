"""Incremental detokenization: TGI's prefix/read offsets and "" for incomplete UTF-8."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.unit.tgi_server.conftest import ByteCodec
from tgi_server.generation.detokenizer import IncrementalDetokenizer, decode_new_text
from tgi_server.model.codec import HFTextCodec

EMOJI = "\U0001f642"  # 4 UTF-8 bytes: never merged by the tiny tokenizer (not in its corpus)


def deltas(codec: Any, prompt_ids: list[int], new_ids: list[int]) -> list[str]:
    detokenizer = IncrementalDetokenizer(codec.decode, prompt_ids)
    return [detokenizer.push(token_id) for token_id in new_ids]


def test_a_multibyte_character_comes_out_whole_with_its_last_byte(byte_codec: ByteCodec) -> None:
    prompt = byte_codec.encode("Hi ")
    new = list(EMOJI.encode("utf-8")) + list(b"!")
    assert deltas(byte_codec, prompt, new) == ["", "", "", EMOJI, "!"]


def test_the_tiny_tokenizer_splits_an_emoji_into_byte_tokens_that_yield_empty_texts(
    tiny_codec: HFTextCodec,
) -> None:
    prompt_ids = tiny_codec.encode("The keeper smiled")
    emoji_ids = tiny_codec.encode(EMOJI)[1:]  # without BOS
    assert len(emoji_ids) == 4  # one token per byte
    assert deltas(tiny_codec, prompt_ids, emoji_ids) == ["", "", "", EMOJI]


def test_special_tokens_are_spelled_out(tiny_codec: HFTextCodec) -> None:
    prompt_ids = tiny_codec.encode("Hello")
    eos = tiny_codec.encode("</s>")[-1]
    assert tiny_codec.is_special(eos)
    assert deltas(tiny_codec, prompt_ids, [eos]) == ["</s>"]


@given(prompt=st.text(min_size=1, max_size=20), text=st.text(max_size=40))
def test_byte_deltas_add_up_to_the_text(prompt: str, text: str) -> None:
    codec = ByteCodec()
    pieces = deltas(codec, codec.encode(prompt), list(text.encode("utf-8")))
    if "\ufffd" not in text:
        assert "".join(pieces) == text
    assert all("\ufffd" not in piece for piece in pieces)


@given(prompt=st.text(min_size=1, max_size=20), text=st.text(max_size=40))
def test_tiny_tokenizer_deltas_add_up_to_the_decoded_text(
    tiny_codec: HFTextCodec, prompt: str, text: str
) -> None:
    new_ids = tiny_codec.encode(text)[1:]
    pieces = deltas(tiny_codec, tiny_codec.encode(prompt), new_ids)
    if "\ufffd" not in text:
        assert "".join(pieces) == tiny_codec.decode(new_ids) == text


def test_generated_text_keeps_a_leading_space_thanks_to_the_left_context(
    tiny_codec: HFTextCodec,
) -> None:
    ids = tiny_codec.encode("the lighthouse keeper")[1:]
    split = len(tiny_codec.encode("the lighthouse")) - 1
    context, new = ids[split - 1], ids[split:]
    assert decode_new_text(tiny_codec.decode, context, new) == " keeper"


def test_generated_text_without_context_is_a_plain_decode(byte_codec: ByteCodec) -> None:
    assert decode_new_text(byte_codec.decode, None, list(b"abc")) == "abc"
