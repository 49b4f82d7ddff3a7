"""Structured generation on /generate: outputs that end by themselves match their grammar."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from tests.integration.tgi_server.conftest import BackendClient
from tgi_server.app import ENGINE_KEY

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
