"""The chat body turned into a prompt: TGI's tool prompt, its default and where it goes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tgi_server.errors import InvalidBodyError, OpenAIRequestError
from tgi_server.openai.requests import (
    DEFAULT_TOOL_PROMPT,
    chat_call,
    completion_call,
    cut_tool_call,
)

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


class Recorder:
    """A chat template that records what it was given and renders the contents only."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.tools: list[Any] | None = None

    def __call__(self, messages: list[dict[str, Any]], tools: list[Any] | None) -> str:
        self.messages, self.tools = messages, tools
        return "|".join(str(m["content"]) for m in messages)


def _last_content(document: dict[str, Any], *, renders_tools: bool = False) -> str:
    render = Recorder()
    chat_call(document, render, template_renders_tools=renders_tools)
    return str(render.messages[-1]["content"])


def test_the_default_tool_prompt_follows_the_tools_json_on_the_last_message() -> None:
    document = {
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "tools": [WEATHER],
        "tool_choice": "get_weather",
    }
    render = Recorder()
    call = chat_call(document, render, template_renders_tools=False)
    listed = [
        {
            "type": "function",
            "function": {
                "description": "The weather in a city",
                "name": "get_weather",
                "arguments": WEATHER["function"]["parameters"],  # type: ignore[index]
            },
        }
    ]
    expected = "hi\n---\n" + json.dumps(listed, separators=(",", ":")) + "\n" + DEFAULT_TOOL_PROMPT
    assert render.messages[-1]["content"] == expected
    assert render.messages[0]["content"] == "be brief"
    assert call.request.inputs == "be brief|" + expected
    assert DEFAULT_TOOL_PROMPT.startswith("\nGiven the functions available")


@pytest.mark.parametrize(("tool_prompt", "ending"), [("Call one.", "\nCall one."), ("", "}}]\n")])
def test_a_client_tool_prompt_replaces_the_default_even_an_empty_one(
    tool_prompt: str, ending: str
) -> None:
    document = {
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [WEATHER],
        "tool_choice": "required",
        "tool_prompt": tool_prompt,
    }
    content = _last_content(document)
    assert content.endswith(ending)
    assert DEFAULT_TOOL_PROMPT not in content


def test_auto_lists_the_no_tool_function_too() -> None:
    document = {"messages": [{"role": "user", "content": "hi"}], "tools": [WEATHER]}
    content = _last_content(document)
    listed = json.loads(content.split("\n---\n")[1].rsplit("\n", 3)[0].split("\n")[0])
    assert [tool["function"]["name"] for tool in listed] == ["get_weather", "no_tool"]


def test_a_template_that_renders_tools_gets_only_the_prompt() -> None:
    document = {
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [WEATHER],
        "tool_prompt": "Call one.",
    }
    assert _last_content(document, renders_tools=True) == "hi\n---\nCall one."


def test_no_tools_or_tool_choice_none_leave_the_messages_alone() -> None:
    plain = {"messages": [{"role": "user", "content": "hi"}], "tool_prompt": "ignored"}
    assert _last_content(plain) == "hi"
    declined = {**plain, "tools": [WEATHER], "tool_choice": "none"}
    assert _last_content(declined) == "hi"


def test_the_tool_prompt_joins_list_content_after_its_text() -> None:
    parts = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    document = {
        "messages": [{"role": "user", "content": parts}],
        "tools": [WEATHER],
        "tool_choice": "required",
        "tool_prompt": "P",
    }
    assert _last_content(document, renders_tools=True) == "ab\n---\nP"


@pytest.mark.parametrize("content", [5, True, {"text": "hi"}])
@pytest.mark.parametrize("tools", [None, [WEATHER]])
def test_content_that_is_neither_text_nor_parts_is_a_422(
    content: Any, tools: list[Any] | None
) -> None:
    document = {"messages": [{"role": "user", "content": content}], "tools": tools}
    with pytest.raises(InvalidBodyError, match="content must be a string or a list of parts"):
        chat_call(document, Recorder(), template_renders_tools=False)


@pytest.mark.parametrize(
    ("text", "read"),
    [
        ('{"function": {"_name": "get_weather", "city": "Par', ("get_weather", '{"city": "Par')),
        ('{ "function" : { "_name" : "f" ,', ("f", "{")),
        ('{"function":{"_name":"f"', ("f", "{")),
        ('{"function": {"_name": "no_tool", "content": "It is \\u00e9t', (None, "It is \u00e9t")),
        ('{"function": {"_name": "no_tool", "content": "It is \\u00e', (None, "It is ")),
        ('{"function": {"_name": "no_tool", "content": "a \\"b', (None, 'a "b')),
        ('{"function": {"_name": "no_tool", ', (None, "")),
        ('{"function": {"_name": "get_wea', None),
        ("{not json", None),
    ],
)
def test_a_cut_tool_call_is_read_as_far_as_it_got(
    text: str, read: tuple[str | None, str] | None
) -> None:
    assert cut_tool_call(text) == read


def test_completions_read_presence_penalty_as_chat_does() -> None:
    call = completion_call({"prompt": "a", "presence_penalty": 0.5}, max_client_batch_size=4)
    assert call.requests[0].parameters.repetition_penalty == 2.5
    with pytest.raises(OpenAIRequestError, match="`presence_penalty` and `repetition_penalty`"):
        completion_call(
            {"prompt": "a", "presence_penalty": 0.5, "repetition_penalty": 1.2},
            max_client_batch_size=4,
        )


@pytest.mark.parametrize(
    ("body", "refused"),
    [
        ({"logit_bias": {"5": 10}}, "logit_bias"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"store": True}, "store"),
        ({"functions": [{"name": "f"}]}, "functions"),
    ],
)
def test_chat_fields_this_backend_cannot_honour_are_refused_by_name(
    body: dict[str, Any], refused: str
) -> None:
    with pytest.raises(OpenAIRequestError, match=f"`{refused}` is not supported"):
        chat_call({"messages": [], **body}, Recorder(), template_renders_tools=False)


@pytest.mark.parametrize(
    "neutral",
    [{"logit_bias": {}}, {"modalities": ["text"]}, {"store": False}, {"audio": None}],
)
def test_their_neutral_values_pass(neutral: dict[str, Any]) -> None:
    chat_call({"messages": [], **neutral}, Recorder(), template_renders_tools=False)
