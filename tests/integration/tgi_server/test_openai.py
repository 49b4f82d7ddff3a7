"""The OpenAI routes: chat completions and completions, streamed or not, and their errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from protocol.sse import encode_json_event
from tests.integration.tgi_server.conftest import (
    BackendClient,
    MakeClient,
    eventually,
    metric_lines,
)
from tgi_server.http.app_keys import ENGINE_KEY, SLOTS_KEY

MESSAGES = [{"role": "user", "content": "Tell me about the lighthouse"}]


async def post(client: BackendClient, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    response = await client.post(path, json=body)
    return response.status, await response.json()


def greedy_chat(max_tokens: int, **fields: Any) -> dict[str, Any]:
    """A chat body for `MESSAGES`, answered greedily (temperature 0) in at most `max_tokens`
    tokens, with `fields` added."""
    return {"messages": MESSAGES, "max_tokens": max_tokens, "temperature": 0, **fields}


def sse_payloads(raw: bytes) -> list[bytes]:
    frames = raw.strip().split(b"\n\n")
    assert all(frame.startswith(b"data: ") for frame in frames)
    return [frame.removeprefix(b"data: ") for frame in frames]


async def test_chat_answers_greedily_with_usage(client: BackendClient) -> None:
    body = greedy_chat(5, model="tgi")
    status, payload = await post(client, "/v1/chat/completions", body)
    assert status == 200
    assert list(payload) == [
        "object",
        "id",
        "created",
        "model",
        "system_fingerprint",
        "choices",
        "usage",
    ]
    assert payload["object"] == "chat.completion"
    assert payload["model"] == "tiny-llama"
    choice = payload["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["finish_reason"] == "length"
    assert payload["usage"]["completion_tokens"] == 5
    usage = payload["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + 5
    _, again = await post(client, "/v1/chat/completions", body)
    assert again["choices"][0]["message"]["content"] == choice["message"]["content"]


async def test_chat_logprobs_list_each_token(client: BackendClient) -> None:
    body = greedy_chat(3, logprobs=True, top_logprobs=2)
    _, payload = await post(client, "/v1/chat/completions", body)
    content = payload["choices"][0]["logprobs"]["content"]
    assert len(content) == 3
    assert all(len(entry["top_logprobs"]) >= 2 for entry in content)


async def test_chat_stream_is_chunks_then_usage_then_done(client: BackendClient) -> None:
    body = greedy_chat(4, stream=True, stream_options={"include_usage": True})
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    payloads = sse_payloads(await response.read())
    assert payloads[-1] == b"[DONE]"
    chunks = [json.loads(payload) for payload in payloads[:-1]]
    tokens, usage = chunks[:-1], chunks[-1]
    assert len(tokens) == 4
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert [c["choices"][0]["finish_reason"] for c in tokens] == [None, None, None, "length"]
    assert usage["choices"] == []
    assert usage["usage"]["completion_tokens"] == 4
    _, whole = await post(client, "/v1/chat/completions", {**body, "stream": False})
    text = "".join(chunk["choices"][0]["delta"]["content"] for chunk in tokens)
    # A stream never sends half a character; the whole text may end with one (as U+FFFD).
    assert whole["choices"][0]["message"]["content"].rstrip("\ufffd") == text


async def test_chat_stream_reports_validation_errors_in_stream(client: BackendClient) -> None:
    body = {"messages": MESSAGES, "top_p": 1.0, "stream": True}
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status == 200
    payloads = sse_payloads(await response.read())
    assert payloads[-1] == b"[DONE]"
    error = json.loads(payloads[0])["error"]
    assert error["http_status_code"] == 422
    assert "top_p" in error["message"]


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"enum": ["Paris", "Oslo"]}},
            "required": ["city"],
        },
    },
}


async def test_tools_with_response_format_are_refused(client: BackendClient) -> None:
    both = {"messages": MESSAGES, "tools": [WEATHER], "response_format": {"type": "json_object"}}
    status, payload = await post(client, "/v1/chat/completions", both)
    assert status == 422
    assert payload == {
        "error": "Tool error: Grammar and tools are mutually exclusive",
        "error_type": "tool_error",
    }


async def test_a_named_tool_is_called_with_arguments_fitting_its_schema(
    client: BackendClient,
) -> None:
    named = {"type": "function", "function": {"name": "get_weather"}}
    body = greedy_chat(200, tools=[WEATHER], tool_choice=named)
    status, payload = await post(client, "/v1/chat/completions", body)
    assert status == 200, payload
    message = payload["choices"][0]["message"]
    assert "content" not in message
    (call,) = message["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"])["city"] in ("Paris", "Oslo")
    response = await client.post("/v1/chat/completions", json={**body, "stream": True})
    payloads = sse_payloads(await response.read())
    assert payloads[-1] == b"[DONE]"
    chunks = [json.loads(p)["choices"][0] for p in payloads[:-1]]
    first, *rest = [chunk["delta"]["tool_calls"][0] for chunk in chunks if chunk["delta"]]
    assert first["function"] == {"name": "get_weather", "arguments": ""}  # the name first
    assert len(rest) > 1  # then the arguments, piece by piece
    streamed = "".join(delta["function"]["arguments"] for delta in rest)
    assert json.loads(streamed) == json.loads(call["function"]["arguments"])
    assert chunks[-1]["finish_reason"] == "stop"


async def test_chat_tokenize_gives_the_chat_routes_prompt_and_its_tokens(
    client: BackendClient,
) -> None:
    with_tools = greedy_chat(3, tools=[WEATHER], tool_choice="required")
    _, payload = await post(client, "/chat_tokenize", with_tools)
    assert "get_weather" in payload["templated_text"]  # the tools, as the chat route adds them
    status, payload = await post(client, "/chat_tokenize", greedy_chat(3))
    assert status == 200
    assert list(payload) == ["tokenize_response", "templated_text"]
    prompt = payload["templated_text"]
    assert MESSAGES[0]["content"] in prompt
    tokens = payload["tokenize_response"]
    encoded = prompt.encode()
    assert all(encoded[t["start"] : t["stop"]].decode() == t["text"] for t in tokens)
    _, chat = await post(client, "/v1/chat/completions", greedy_chat(3))
    assert len(tokens) == chat["usage"]["prompt_tokens"]  # the tokens the chat route counts
    status, payload = await post(client, "/chat_tokenize", {"messages": "no"})
    assert status == 422


async def test_a_tool_call_cut_by_max_tokens_is_answered_as_far_as_it_got(
    client: BackendClient,
) -> None:
    """As OpenAI answers it: the call with its arguments so far, finish reason `length`; not a
    422 that loses what was generated (TGI's answer)."""
    free_text = {
        "type": "function",
        "function": {
            "name": "describe",
            "parameters": {
                "type": "object",
                "properties": {"text": {"type": "string"}},
                "required": ["text"],
            },
        },
    }
    body = greedy_chat(40, tools=[free_text], tool_choice="describe")
    status, payload = await post(client, "/v1/chat/completions", body)
    assert status == 200, payload
    choice = payload["choices"][0]
    assert choice["finish_reason"] == "length"
    (call,) = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "describe"
    assert call["function"]["arguments"].startswith('{"text"')
    response = await client.post("/v1/chat/completions", json={**body, "stream": True})
    choices = [json.loads(data)["choices"][0] for data in sse_payloads(await response.read())[:-1]]
    functions = [c["delta"]["tool_calls"][0]["function"] for c in choices if c["delta"]]
    assert functions[0] == {"name": "describe", "arguments": ""}  # the name first
    assert "".join(f["arguments"] for f in functions) == call["function"]["arguments"]
    assert choices[-1]["finish_reason"] == "length"


@pytest.mark.parametrize(
    "parameters", ["x", {"properties": "ab"}, {"required": 5}, {"required": [1]}]
)
async def test_tool_parameters_of_the_wrong_shape_are_a_422(
    client: BackendClient, parameters: object
) -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": parameters}}
    status, payload = await post(
        client, "/v1/chat/completions", {"messages": MESSAGES, "tools": [tool]}
    )
    assert (status, payload["error_type"]) == (422, "tool_error")


@pytest.mark.parametrize("image_url", ["http://x/y.png", None, {"href": "x"}])
async def test_an_image_part_without_a_url_object_is_a_422(
    client: BackendClient, image_url: object
) -> None:
    content = [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": image_url}]
    body = {"messages": [{"role": "user", "content": content}], "max_tokens": 2}
    status, payload = await post(client, "/v1/chat/completions", body)
    assert status == 422
    assert "image_url" in payload["error"]


async def test_an_unknown_named_tool_is_a_tool_error(client: BackendClient) -> None:
    body = {"messages": MESSAGES, "tools": [WEATHER], "tool_choice": "nope"}
    status, payload = await post(client, "/v1/chat/completions", body)
    assert (status, payload["error_type"]) == (422, "tool_error")


async def test_the_tool_prompt_is_part_of_the_prompt(client: BackendClient) -> None:
    body = greedy_chat(200, tools=[WEATHER], tool_choice="required")
    lengths = {}
    for name, extra in [
        ("empty", {"tool_prompt": ""}),
        ("default", {}),
        ("own", {"tool_prompt": "Call it."}),
    ]:
        status, payload = await post(client, "/v1/chat/completions", {**body, **extra})
        assert status == 200, payload
        lengths[name] = payload["usage"]["prompt_tokens"]
    declined = {**body, "tool_choice": "none", "tool_prompt": "Call it."}
    status, payload = await post(client, "/v1/chat/completions", declined)
    assert status == 200
    assert (
        payload["usage"]["prompt_tokens"] < lengths["empty"] < lengths["own"] < lengths["default"]
    )


async def test_tool_choice_none_answers_in_text(client: BackendClient) -> None:
    body = {"messages": MESSAGES, "tools": [WEATHER], "tool_choice": "none", "max_tokens": 3}
    status, payload = await post(client, "/v1/chat/completions", body)
    assert status == 200
    assert "content" in payload["choices"][0]["message"]


async def test_response_format_constrains_the_answer(client: BackendClient) -> None:
    schema = {
        "type": "object",
        "properties": {"open": {"type": "boolean"}},
        "required": ["open"],
        "additionalProperties": False,
    }
    response_format = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    body = greedy_chat(100, response_format=response_format)
    status, payload = await post(client, "/v1/chat/completions", body)
    assert status == 200
    choice = payload["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert isinstance(json.loads(choice["message"]["content"])["open"], bool)


async def test_chat_without_messages_is_a_body_error(client: BackendClient) -> None:
    status, payload = await post(client, "/v1/chat/completions", {"model": "tgi"})
    assert status == 422
    assert payload["error"].startswith("Failed to deserialize the JSON body")


async def test_completions_answer_every_prompt(client: BackendClient) -> None:
    body = {"prompt": ["The ferry", "A gull"], "max_tokens": 3, "temperature": 0}
    status, payload = await post(client, "/v1/completions", body)
    assert status == 200
    assert payload["object"] == "text_completion"
    assert [choice["index"] for choice in payload["choices"]] == [0, 1]
    assert payload["usage"]["completion_tokens"] == 6
    one = await post(client, "/v1/completions", {**body, "prompt": "A gull"})
    assert one[1]["choices"][0]["text"] == payload["choices"][1]["text"]


async def test_completions_stream_ends_with_a_final_chunk_per_prompt(
    client: BackendClient,
) -> None:
    body = {"prompt": "The ferry", "max_tokens": 3, "temperature": 0, "stream": True}
    response = await client.post("/v1/completions", json=body)
    payloads = sse_payloads(await response.read())
    assert payloads[-1] == b"[DONE]"
    chunks = [json.loads(payload) for payload in payloads[:-1]]
    assert [chunk["choices"][0]["finish_reason"] for chunk in chunks] == ["", "", "length"]
    assert chunks[-1]["usage"]["completion_tokens"] == 3


async def test_a_stream_of_two_prompts_ends_each_before_the_next_begins(
    client: BackendClient,
) -> None:
    body = {"prompt": ["The ferry", "A gull"], "max_tokens": 3, "temperature": 0, "stream": True}
    payloads = sse_payloads(await (await client.post("/v1/completions", json=body)).read())
    assert payloads[-1] == b"[DONE]"
    chunks = [json.loads(payload)["choices"][0] for payload in payloads[:-1]]
    assert [(c["index"], c["finish_reason"]) for c in chunks] == [
        (0, ""),
        (0, ""),
        (0, "length"),
        (1, ""),
        (1, ""),
        (1, "length"),
    ]


async def test_an_error_in_the_second_prompt_comes_after_the_first_ends(
    client: BackendClient,
) -> None:
    prompts = ["The ferry", "gull " * 5000]  # the second is over the input limit
    body = {"prompt": prompts, "max_tokens": 2, "temperature": 0, "stream": True}
    payloads = sse_payloads(await (await client.post("/v1/completions", json=body)).read())
    assert payloads[-1] == b"[DONE]"
    first = [json.loads(payload) for payload in payloads[:2]]
    assert [chunk["choices"][0]["finish_reason"] for chunk in first] == ["", "length"]
    error = json.loads(payloads[2])
    assert "Input validation error" in error["error"]["message"]
    assert len(payloads) == 4


async def test_completions_refuse_suffix_and_too_many_prompts(client: BackendClient) -> None:
    status, payload = await post(client, "/v1/completions", {"prompt": "x", "suffix": "y"})
    assert (status, payload["error_type"]) == (422, "suffix not supported")
    status, payload = await post(client, "/v1/completions", {"prompt": ["x"] * 5})
    assert status == 422
    assert payload == {
        "error": "Number of prompts exceeds the maximum allowed batch size of 4",
        "error_type": "batch size exceeded",
    }


async def test_invocations_dispatch_on_the_body(client: BackendClient) -> None:
    chat = greedy_chat(2)
    status, payload = await post(client, "/invocations", chat)
    assert (status, payload["object"]) == (200, "chat.completion")
    status, payload = await post(client, "/invocations", {"prompt": "x", "max_tokens": 2})
    assert (status, payload["object"]) == (200, "text_completion")
    status, payload = await post(client, "/invocations", {"nothing": 1})
    assert status == 422


async def test_a_chat_too_long_for_the_context_is_a_422(make_client: MakeClient) -> None:
    client = await make_client(max_input_tokens=8, max_total_tokens=16)
    body = {"messages": MESSAGES * 5, "max_tokens": 4}
    status, payload = await post(client, "/v1/chat/completions", body)
    assert status == 422
    assert payload["error_type"] == "validation"
    assert "must be <= 16" in payload["error"]
    response = await client.post("/v1/chat/completions", json={**body, "stream": True})
    payloads = sse_payloads(await response.read())
    assert payloads[-1] == b"[DONE]"
    (error,) = [json.loads(p) for p in payloads[:-1]]
    assert error["error"]["http_status_code"] == 422
    assert "must be <= 16" in error["error"]["message"]
    completion = {"prompt": "one two three four five six seven eight nine ten", "max_tokens": 4}
    status, payload = await post(client, "/v1/completions", completion)
    assert (status, payload["error_type"]) == (422, "validation")
    assert (await client.get("/health")).status == 200


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/generate_stream", {"inputs": "The ferry", "parameters": {"max_new_tokens": 1000}}),
        ("/v1/chat/completions", {"messages": MESSAGES, "max_tokens": 1000, "stream": True}),
        (
            "/v1/completions",
            {"prompt": ["The lighthouse", "The ferry"], "max_tokens": 1000, "stream": True},
        ),
    ],
)
async def test_a_client_that_leaves_a_stream_frees_its_slot(
    make_client: MakeClient, path: str, body: dict[str, Any]
) -> None:
    client = await make_client(max_concurrent_requests=1)
    app = client.app
    response = await client.post(path, json=body)
    first = await response.content.readuntil(b"\n\n")
    assert first.startswith(b"data: {")
    response.close()  # drop the connection mid-stream
    await eventually(lambda: app[SLOTS_KEY].in_use == 0 and app[ENGINE_KEY].stats.cancelled == 1)
    metrics = await metric_lines(client)
    assert 'tgi_request_failure_total{err="dropped"} 1.0' in metrics
    status, _ = await post(
        client, "/generate", {"inputs": "x", "parameters": {"max_new_tokens": 2}}
    )
    assert status == 200
    assert app[ENGINE_KEY].stats.cancelled == 1  # a second prompt never started
    assert app[ENGINE_KEY].stats.completed == 1  # only the follower ran to its end


async def test_openai_stream_frames_are_the_builders_compact_json(client: BackendClient) -> None:
    body = greedy_chat(4, stream=True)
    raw = await (await client.post("/v1/chat/completions", json=body)).read()
    payloads = sse_payloads(raw)
    rebuilt = b"".join(encode_json_event(json.loads(p)) for p in payloads[:-1])
    assert raw == rebuilt + b"data: [DONE]\n\n"
    assert len(payloads) == 5


async def test_one_failing_prompt_ends_the_others_at_once(client: BackendClient) -> None:
    """The second prompt is over the input limit: the 422 comes back, and the first prompt,
    which would run for 1 000 tokens, leaves its slot and the engine at once."""
    app = client.app
    assert app is not None
    body = {"prompt": ["The ferry", "gull " * 5000], "max_tokens": 1000, "temperature": 0}
    status, payload = await post(client, "/v1/completions", body)
    assert status == 422
    assert "Input validation error" in payload["error"]
    await eventually(lambda: app[SLOTS_KEY].in_use == 0, within_s=2.0)
    metrics = await metric_lines(client)
    assert 'tgi_request_failure_total{err="dropped"} 1.0' in metrics
    assert "tgi_request_success_total 0.0" in metrics


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", greedy_chat(3, n=2)),
        ("/v1/completions", {"prompt": "x", "max_tokens": 3, "n": 3}),
    ],
)
async def test_more_than_one_choice_is_refused_not_ignored(
    client: BackendClient, path: str, body: dict[str, Any]
) -> None:
    # The backend generates one choice: answering one to `n` = 2 would be silently wrong.
    status, payload = await post(client, path, body)
    assert (status, payload["error_type"]) == (422, "validation")
    assert payload["error"].startswith(f"`n` = {body['n']} is not supported")
    status, _ = await post(client, path, {**body, "n": 1})
    assert status == 200
