"""The rest of TGI's API through every hop, with real processes (router → PyWorker → embedded
backend) and unmodified clients holding nothing but the gateway's URL and the endpoint's key:
/info, /health, /v1/models, /tokenize, /chat_tokenize, /invocations, and a streamed tool call
that openai's stream helper assembles."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from huggingface_hub import InferenceClient
from openai.types.chat import (
    ChatCompletionMessageParam,
    ChatCompletionNamedToolChoiceParam,
    ChatCompletionToolParam,
)

from tests.e2e.conftest import API_KEY, Stack
from tests.e2e.processes import get_json, post_json

pytestmark = pytest.mark.e2e

AUTH = {"Authorization": f"Bearer {API_KEY}"}
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Weather in Oslo?"}]
WEATHER: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"enum": ["Paris", "Oslo"]}, "metric": {"type": "boolean"}},
            "required": ["city", "metric"],
        },
    },
}


def gateway(stack: Stack) -> str:
    return f"{stack.router_url}/endpoints/default"


def backend_info(stack: Stack) -> dict[str, Any]:
    status, info = get_json(f"{stack.backend_url}/info")
    assert status == 200
    return dict(info)


def test_inference_client_reads_info_and_health_with_the_key(stack: Stack) -> None:
    client = InferenceClient(model=gateway(stack), token=API_KEY, provider="hf-inference")
    assert client.get_endpoint_info() == backend_info(stack)
    assert client.health_check()
    stranger = InferenceClient(model=gateway(stack), token="wrong", provider="hf-inference")
    assert not stranger.health_check()


def test_openai_lists_the_served_model(stack: Stack) -> None:
    client = openai.OpenAI(base_url=f"{gateway(stack)}/v1", api_key=API_KEY)
    [model] = client.models.list().data
    assert model.id == backend_info(stack)["model_id"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/tokenize", {"inputs": "The gateway tokenizes", "parameters": {"truncate": 3}}),
        ("/chat_tokenize", {"messages": MESSAGES, "tools": [WEATHER]}),
    ],
)
def test_tokenizing_through_the_gateway_is_the_backends_answer(
    stack: Stack, path: str, body: dict[str, Any]
) -> None:
    assert post_json(f"{gateway(stack)}{path}", body)[0] == 401  # the key, as everywhere
    status, answer = post_json(f"{gateway(stack)}{path}", body, AUTH)
    assert status == 200
    assert (status, answer) == post_json(f"{stack.backend_url}{path}", body)


def test_invocations_through_the_gateway_answer_as_the_body_says(stack: Stack) -> None:
    chat = {"messages": MESSAGES, "max_tokens": 3, "temperature": 0}
    status, answer = post_json(f"{gateway(stack)}/invocations", chat, AUTH)
    assert (status, answer["object"], answer["usage"]["completion_tokens"]) == (
        200,
        "chat.completion",
        3,
    )
    compat = {"inputs": "SageMaker says", "parameters": {"max_new_tokens": 2}}
    status, answer = post_json(f"{gateway(stack)}/invocations", compat, AUTH)
    assert status == 200
    assert answer == post_json(f"{stack.backend_url}/invocations", compat)[1]


def test_openai_stream_helper_assembles_a_streamed_tool_call(stack: Stack) -> None:
    client = openai.OpenAI(base_url=f"{gateway(stack)}/v1", api_key=API_KEY)
    named: ChatCompletionNamedToolChoiceParam = {
        "type": "function",
        "function": {"name": "get_weather"},
    }
    names, pieces = [], []
    with client.chat.completions.stream(
        model="tgi",
        messages=MESSAGES,
        tools=[WEATHER],
        tool_choice=named,
        max_tokens=200,
        temperature=0,
    ) as stream:
        for event in stream:
            if event.type == "chunk":
                for delta in event.chunk.choices[0].delta.tool_calls or []:
                    if delta.function and delta.function.name:
                        names.append(delta.function.name)
            elif event.type == "tool_calls.function.arguments.delta":
                assert names == ["get_weather"]  # the name came first, once
                pieces.append(event.arguments_delta)
        final = stream.get_final_completion()
    assert len(pieces) > 1  # the arguments came piece by piece
    [call] = final.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    assert arguments["city"] in ("Paris", "Oslo")
    assert isinstance(arguments["metric"], bool)
    assert set(arguments) == {"city", "metric"}
    assert "".join(pieces) == call.function.arguments
