"""A streamed tool call's deltas: the name first, then arguments that openai's own stream state
assembles into the JSON of the call, for any way the model's text is cut into tokens."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

from protocol.tgi import FinishReason
from tgi_server.errors import ToolError
from tgi_server.openai.tool_stream import ToolCallStream
from tgi_server.openai.wire import delta_chunk

WEATHER_ARGUMENTS = {
    "location": 'Paris, "FR" {x}',
    "days": 3,
    "units": ["celsius"],
    "where": {"lat": 48.5},
}


def output(name: str, arguments: dict[str, Any], **dump: Any) -> str:
    """The model's text under TGI's tool grammar, `_name` first."""
    return json.dumps({"function": {"_name": name, **arguments}}, **dump)


def deltas_of(tokens: list[str]) -> list[list[dict[str, Any]]]:
    """Each token's deltas, the last token's with `finish`'s."""
    stream = ToolCallStream()
    per_token = [stream.push(token) for token in tokens]
    per_token[-1] += stream.finish("".join(tokens))
    return per_token


def assembled_by_openai(tokens: list[str]) -> tuple[str | None, str]:
    """(name, arguments) as openai's ChatCompletionStreamState assembles our chunks."""
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    per_token = deltas_of(tokens)
    chunks = [delta for deltas in per_token for delta in deltas]
    for index, delta in enumerate(chunks):
        finish: FinishReason | None = "eos_token" if index == len(chunks) - 1 else None
        state.handle_chunk(ChatCompletionChunk.model_validate(delta_chunk(delta, "m", finish)))
    calls = state.get_final_completion().choices[0].message.tool_calls
    assert calls is not None
    assert len(calls) == 1
    call = calls[0]
    assert call.type == "function"
    assert call.id == "0"
    return call.function.name, call.function.arguments


def cuts(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 10_000])
@pytest.mark.parametrize("dump", [{}, {"separators": (",", ":")}, {"indent": 2}])
def test_openai_assembles_the_name_and_the_arguments_the_model_wrote(
    size: int, dump: dict[str, Any]
) -> None:
    name, arguments = assembled_by_openai(
        cuts(output("get_weather", WEATHER_ARGUMENTS, **dump), size)
    )
    assert name == "get_weather"
    assert json.loads(arguments) == WEATHER_ARGUMENTS


def test_the_name_comes_first_with_empty_arguments_and_arguments_follow_as_generated() -> None:
    tokens = ['{"function": {"_name": "get_', 'weather", "location', '": "Pa', 'ris"}}']
    per_token = deltas_of(tokens)
    assert per_token[0] == []  # the name is not whole yet
    head = {"index": 0, "id": "0", "type": "function"}
    function = {"name": "get_weather", "arguments": ""}
    assert per_token[1][0] == {"role": "assistant", "tool_calls": [{**head, "function": function}]}
    pieces = [
        delta["tool_calls"][0]["function"]["arguments"]
        for deltas in per_token
        for delta in deltas
        if "id" not in delta["tool_calls"][0]
    ]
    assert pieces == ['{ "location', '": "Pa', 'ris"', "}"]  # the closing braces held back


def test_a_call_without_arguments_has_an_empty_object() -> None:
    name, arguments = assembled_by_openai(cuts('{"function": {"_name": "now"}}', 4))
    assert (name, json.loads(arguments)) == ("now", {})


def test_a_name_after_the_arguments_sends_the_call_whole_at_the_end() -> None:
    text = '{"function": {"City": "Rome", "_name": "get_weather"}}'  # a grammar's sorted keys
    per_token = deltas_of(cuts(text, 5))
    assert all(deltas == [] for deltas in per_token[:-1])
    assert assembled_by_openai(cuts(text, 5)) == ("get_weather", '{"City": "Rome"}')


def test_no_tool_is_one_content_delta_at_the_end() -> None:
    text = output("no_tool", {"content": "Hello there"})
    per_token = deltas_of(cuts(text, 3))
    assert all(deltas == [] for deltas in per_token[:-1])
    assert per_token[-1] == [{"role": "assistant", "content": "Hello there"}]


def test_an_unfinished_call_is_a_tool_error_after_what_was_sent() -> None:
    stream = ToolCallStream()
    assert stream.push('{"function": {"_name": "f", "a": ')
    with pytest.raises(ToolError):
        stream.finish('{"function": {"_name": "f", "a": ')


@pytest.mark.parametrize("size", [1, 3, 7])
def test_a_call_the_token_budget_cut_ends_with_what_was_generated(size: int) -> None:
    """As OpenAI ends a call cut by `max_tokens`: its arguments so far, not an error."""
    text = '{"function": {"_name": "get_weather", "location": "Par'
    stream = ToolCallStream()
    deltas = [delta for token in cuts(text, size) for delta in stream.push(token)]
    deltas += stream.finish(text, cut=True)
    assert deltas[0]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": ""}
    sent = "".join(d["tool_calls"][0]["function"]["arguments"] for d in deltas[1:])
    assert sent == '{ "location": "Par'  # the model's own text after `_name`'s comma


def test_a_call_cut_in_its_name_is_still_a_tool_error() -> None:
    stream = ToolCallStream()
    assert stream.push('{"function": {"_name": "get_wea') == []
    with pytest.raises(ToolError):
        stream.finish('{"function": {"_name": "get_wea', cut=True)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(
    arguments=st.dictionaries(
        st.text(max_size=6).filter(lambda key: key != "_name"), json_values, max_size=4
    ),
    indent=st.sampled_from([None, 0, 1, 4]),
    cut_at=st.lists(st.integers(min_value=1, max_value=400), max_size=12),
)
def test_any_arguments_cut_anywhere_assemble_to_themselves(
    arguments: dict[str, Any], indent: int | None, cut_at: list[int]
) -> None:
    text = output("tool", arguments, indent=indent)
    points = sorted({0, len(text), *(p for p in cut_at if p < len(text))})
    tokens = [text[a:b] for a, b in itertools.pairwise(points)]
    name, assembled = assembled_by_openai(tokens)
    assert name == "tool"
    assert json.loads(assembled) == arguments
