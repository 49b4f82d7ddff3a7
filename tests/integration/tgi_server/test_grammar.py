"""Structured generation on /generate: outputs that end by themselves match their grammar."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from tests.integration.tgi_server.conftest import BackendClient
from tgi_server.http.app_keys import ENGINE_KEY

PROMPT = "The ferry crossed"
SCHEMA = {
    "type": "object",
    "properties": {"open": {"type": "boolean"}, "rating": {"enum": ["good", "bad"]}},
    "required": ["open", "rating"],
    "additionalProperties": False,
}


async def generate(
    client: BackendClient, grammar: dict[str, Any], **parameters: Any
) -> tuple[int, dict[str, Any]]:
    body = {
        "inputs": PROMPT,
        "parameters": {"max_new_tokens": 60, "details": True, "grammar": grammar, **parameters},
    }
    response = await client.post("/generate", json=body)
    payload: dict[str, Any] = await response.json()
    return response.status, payload


async def test_a_regex_grammar_shapes_the_whole_output(client: BackendClient) -> None:
    pattern = "[0-9]{3}-[a-c]{2}"
    status, payload = await generate(client, {"type": "regex", "value": pattern})
    assert status == 200
    assert payload["details"]["finish_reason"] == "eos_token"
    assert re.fullmatch(pattern, payload["generated_text"])


async def test_json_grammars_give_json_that_fits_the_schema(client: BackendClient) -> None:
    for grammar in (
        {"type": "json", "value": SCHEMA},
        {"type": "json_object", "value": json.dumps(SCHEMA)},
        {"type": "json_schema", "value": {"name": "review", "schema": SCHEMA}},
    ):
        status, payload = await generate(client, grammar, do_sample=True, seed=7)
        assert status == 200, payload
        document = json.loads(payload["generated_text"])
        assert set(document) == {"open", "rating"}
        assert isinstance(document["open"], bool)
        assert document["rating"] in ("good", "bad")


async def test_each_distinct_grammar_is_compiled_once(client: BackendClient) -> None:
    assert client.app is not None
    compiler = client.app[ENGINE_KEY].model.grammar
    assert compiler is not None
    before = compiler.compilations
    grammar = {"type": "regex", "value": "(yes|no)!"}
    first = await generate(client, grammar)
    second = await generate(client, grammar)
    assert first == second
    assert compiler.compilations == before + 1


async def test_a_bad_grammar_is_a_422_that_disturbs_no_one(client: BackendClient) -> None:
    plain_body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 8}}
    alone = await (await client.post("/generate", json=plain_body)).json()
    bad, plain = await asyncio.gather(
        generate(client, {"type": "regex", "value": "(["}),
        client.post("/generate", json=plain_body),
    )
    status, payload = bad
    assert status == 422
    assert payload["error_type"] == "validation"
    assert payload["error"].startswith("Input validation error: grammar is not valid")
    assert plain.status == 200
    assert await plain.json() == alone
    status, payload = await generate(client, {"type": "yaml", "value": "x"})
    assert status == 422


def _stream_texts(raw: bytes) -> list[dict[str, Any]]:
    frames = [f.removeprefix(b"data:").strip() for f in raw.strip().split(b"\n\n")]
    return [json.loads(frame) for frame in frames if frame != b"[DONE]"]


CRAB = "🦀é"  # 4 + 2 UTF-8 bytes: the tiny tokenizer spells them one byte token at a time


async def test_streamed_texts_never_hold_half_a_character(client: BackendClient) -> None:
    regex = {"type": "regex", "value": f"({CRAB}){{3}}"}
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 40, "grammar": regex}}
    raw = await (await client.post("/generate_stream", json=body)).read()
    events = _stream_texts(raw)
    texts = [event["token"]["text"] for event in events if not event["token"]["special"]]
    assert "".join(texts) == CRAB * 3 == events[-1]["generated_text"]
    assert "" in texts  # a token that ends inside a character gives an empty text
    assert all(text in ("", "🦀", "é") for text in texts)
    chat = {
        "messages": [{"role": "user", "content": "crabs"}],
        "max_tokens": 40,
        "stream": True,
        "response_format": regex,
    }
    raw = await (await client.post("/v1/chat/completions", json=chat)).read()
    contents = [chunk["choices"][0]["delta"]["content"] for chunk in _stream_texts(raw)]
    assert "".join(contents) == CRAB * 3
    assert all(text in ("", "🦀", "é") for text in contents)


async def test_a_grammar_that_cannot_compile_is_a_422_on_chat_too(client: BackendClient) -> None:
    chat = {
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 4,
        "response_format": {"type": "regex", "value": "(["},
    }
    response = await client.post("/v1/chat/completions", json=chat)
    assert response.status == 422
    payload = await response.json()
    assert payload["error"].startswith("Input validation error: grammar is not valid")
    streamed = await client.post("/v1/chat/completions", json={**chat, "stream": True})
    events = _stream_texts(await streamed.read())
    assert events[0]["error"]["http_status_code"] == 422
    assert "grammar is not valid" in events[0]["error"]["message"]
