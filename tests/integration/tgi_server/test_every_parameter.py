"""No request field is silently ignored.

Every field of TGI's generate request (as huggingface_hub's `TextGenerationInput` and
`TextGenerationInputGenerateParameters` list them) and of OpenAI's chat and completions requests
(openai's `CompletionCreateParams` TypedDicts), plus TGI's own additions to those, either
changes the answer to a baseline request (the tiny model, sampling with a fixed seed) or is
refused with a 422 that names it. A field that cannot change the answer by its nature has an
explicit expectation saying why, and is checked to leave the answer exactly as it was.

The tables must list exactly the fields the client packages know: a field a new client version
adds fails `test_every_field_has_an_expectation` until it is decided here.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import huggingface_hub
import pytest
from openai.types import completion_create_params
from openai.types.chat import completion_create_params as chat_create_params

from tests.integration.tgi_server.conftest import BackendClient

PROMPT = "The lighthouse keeper"
MESSAGES = [{"role": "user", "content": "Tell me about the lighthouse"}]
SAMPLED = {"max_new_tokens": 16, "do_sample": True, "seed": 7}
"""The baseline's sampling, with a fixed seed. The tiny model's random weights give it nearly
flat distributions, which seeded sampling walks almost alike whatever shifts them a little: a
field that changes the distribution shows within 16 tokens, not at once."""

GREEDY = {"do_sample": False}
GREEDY_CHAT = {"temperature": 0, "max_tokens": 24}
"""Greedy baselines for the penalties, whose effect shows once a token repeats: greedy
decoding repeats itself (here within 24 tokens of chat), seeded sampling seldom does."""

OMIT = object()
"""A `base` value: take the field out of the baseline."""

TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"enum": ["Paris", "Oslo"]}},
            "required": ["city"],
        },
    },
}


@dataclass(frozen=True)
class Changes:
    """Setting the field to `value` changes the answer, over a baseline changed by `base` first.
    `evidence`, where given, is what shows the effect in the answer instead (`best_of`, which
    needs an unseeded, so random, baseline)."""

    value: Any
    base: Mapping[str, Any] = field(default_factory=dict)
    evidence: Callable[[Any], bool] | None = None


@dataclass(frozen=True)
class Refused:
    """Setting the field to `value` is a 422 that names it."""

    value: Any


@dataclass(frozen=True)
class NoEffect:
    """Setting the field to `value` leaves the answer exactly as it was, because `why`."""

    value: Any
    why: str


Expectation = Changes | Refused | NoEffect


STOP = ["e"]
"""A stop sequence: TGI ends the text once it ends with one (checked after each token, after
the length), and many of the tiny model's tokens end with an "e"."""


def _one_best_of_sequence(answer: Any) -> bool:
    return len(answer[0]["details"]["best_of_sequences"]) == 1


TGI_REQUEST: dict[str, Expectation] = {
    "inputs": Changes("A ferry crossed the bay"),
    "parameters": Changes({"max_new_tokens": 8}),  # TGI's defaults: greedy, no seed
    "stream": Changes(True),  # server-sent events instead of one JSON list
}
"""`POST /` (`TextGenerationInput`, huggingface_hub's body): `inputs`, `parameters`, `stream`."""

TGI_PARAMETERS: dict[str, Expectation] = {
    "adapter_id": Refused("my-lora"),
    "best_of": Changes(
        2, base={"seed": OMIT, "details": True}, evidence=_one_best_of_sequence
    ),  # TGI refuses a seed with best_of > 1
    "decoder_input_details": Changes(True),  # details with the prompt's tokens
    "details": Changes(True),
    "do_sample": Changes(False),
    "frequency_penalty": Changes(1.5, base=GREEDY),
    "grammar": Changes({"type": "regex", "value": "[0-9]{4}"}),
    "max_new_tokens": Changes(3),
    "repetition_penalty": Changes(1.8, base=GREEDY),
    "return_full_text": Changes(True),
    "seed": Changes(8),
    "stop": Changes(STOP),
    "temperature": Changes(0.4),
    "top_k": Changes(2),
    "top_n_tokens": Changes(2, base={"details": True}),
    "top_p": Changes(0.3),
    "truncate": Changes(1, base=GREEDY),  # seeded sampling hardly depends on the prompt
    "typical_p": Changes(0.3),
    "watermark": Refused(True),
}
"""`parameters` (`TextGenerationInputGenerateParameters`)."""

_USER_ID = "an end-user id for OpenAI's abuse monitoring, never input to the model"
_CACHE = "a hint for OpenAI's prompt cache, which changes cost and latency, never the answer"

CHAT: dict[str, Expectation] = {
    "audio": Refused({"voice": "alloy", "format": "wav"}),
    "frequency_penalty": Changes(1.5, base=GREEDY_CHAT),
    "function_call": Refused("auto"),
    "functions": Refused([TOOL["function"]]),
    "logit_bias": Refused({"17": 100}),
    "logprobs": Changes(True),
    "max_completion_tokens": Changes(3, base={"max_tokens": OMIT}),
    "max_tokens": Changes(3),
    "messages": Changes([{"role": "user", "content": "A ferry crossed the bay"}]),
    "metadata": NoEffect(
        {"team": "a"}, "tags of a completion OpenAI stores; `store` is refused here"
    ),
    "modalities": Refused(["text", "audio"]),
    "model": Changes("my-model"),  # echoed back
    "moderation": Refused({"model": "omni-moderation-latest"}),
    "n": Refused(2),
    "parallel_tool_calls": NoEffect(
        False, "a permission, not a request: one tool call at most is made, as both allow"
    ),
    "prediction": NoEffect(
        {"type": "content", "content": "The lighthouse"},
        "predicted output makes OpenAI faster, never different",
    ),
    "presence_penalty": Changes(1.5, base=GREEDY_CHAT),
    "prompt_cache_key": NoEffect("k1", _CACHE),
    "prompt_cache_options": NoEffect({"mode": "explicit"}, _CACHE),
    "prompt_cache_retention": NoEffect("24h", _CACHE),
    "reasoning_effort": Refused("high"),
    "response_format": Changes(
        {"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "integer"}}}
    ),
    "safety_identifier": NoEffect("user-1", _USER_ID),
    "seed": Changes(8),
    "service_tier": NoEffect("flex", "OpenAI's price and latency tier; one tier here"),
    "stop": Changes(STOP),
    "store": Refused(True),
    "stream": Changes(True),
    "stream_options": Changes({"include_usage": True}, base={"stream": True}),
    "temperature": Changes(0.4),
    "tool_choice": Changes("none", base={"tools": [TOOL], "max_tokens": 100}),
    "tools": Changes([TOOL], base={"max_tokens": 100}),
    "top_logprobs": Changes(2, base={"logprobs": True}),
    "top_p": Changes(0.3),
    "user": NoEffect("user-1", _USER_ID),
    "verbosity": Refused("low"),
    "web_search_options": Refused({}),
    # TGI's addition
    "tool_prompt": Changes("Call it.", base={"tools": [TOOL], "max_tokens": 100}),
}
"""`POST /v1/chat/completions` (`ChatCompletionCreateParams`, and TGI's `tool_prompt`)."""

COMPLETIONS: dict[str, Expectation] = {
    "best_of": Refused(2),
    "echo": Refused(True),
    "frequency_penalty": Changes(1.5, base={"temperature": 0}),
    "logit_bias": Refused({"17": 100}),
    "logprobs": Refused(2),
    "max_tokens": Changes(3),
    "model": Changes("my-model"),  # echoed back
    "n": Refused(2),
    "presence_penalty": Changes(1.5, base={"temperature": 0}),
    "prompt": Changes("A ferry crossed the bay"),
    "seed": Changes(8),
    "stop": Changes(STOP),
    "stream": Changes(True),
    "stream_options": NoEffect(
        {"include_usage": True},
        "TGI's completions stream ends each prompt with a chunk that carries its usage anyway",
    ),
    "suffix": Refused(" the end."),
    "temperature": Changes(0.4),
    "top_p": Changes(0.3),
    "user": NoEffect("user-1", _USER_ID),
    # TGI's addition
    "repetition_penalty": Changes(1.8, base={"temperature": 0}),
}
"""`POST /v1/completions` (`CompletionCreateParams`, and TGI's `repetition_penalty`)."""

TGI_ADDITIONS = {"chat": {"tool_prompt"}, "completions": {"repetition_penalty"}}


def _dataclass_fields(kind: type) -> set[str]:
    return {f.name for f in dataclasses.fields(kind)}


def _typed_dict_keys(*kinds: Any) -> set[str]:
    return {key for kind in kinds for key in kind.__required_keys__ | kind.__optional_keys__}


def test_every_field_has_an_expectation() -> None:
    assert set(TGI_REQUEST) == _dataclass_fields(huggingface_hub.TextGenerationInput)
    parameters = huggingface_hub.TextGenerationInputGenerateParameters
    assert set(TGI_PARAMETERS) == _dataclass_fields(parameters)
    chat = _typed_dict_keys(
        chat_create_params.CompletionCreateParamsStreaming,
        chat_create_params.CompletionCreateParamsNonStreaming,
    )
    assert set(CHAT) == chat | TGI_ADDITIONS["chat"]
    completions = _typed_dict_keys(
        completion_create_params.CompletionCreateParamsStreaming,
        completion_create_params.CompletionCreateParamsNonStreaming,
    )
    assert set(COMPLETIONS) == completions | TGI_ADDITIONS["completions"]


@dataclass(frozen=True)
class Route:
    path: str
    baseline: dict[str, Any]
    nested: str | None
    """The object of the body the fields go in (`parameters`), or None for the body itself."""


TGI = Route("/", {"inputs": PROMPT, "parameters": SAMPLED}, None)
TGI_IN_PARAMETERS = Route(TGI.path, TGI.baseline, "parameters")
CHAT_ROUTE = Route(
    "/v1/chat/completions",
    {"model": "tgi", "messages": MESSAGES, "max_tokens": 16, "seed": 7},
    None,
)
COMPLETIONS_ROUTE = Route(
    "/v1/completions", {"model": "tgi", "prompt": PROMPT, "max_tokens": 16, "seed": 7}, None
)


def _cases(route: Route, table: dict[str, Expectation]) -> list[Any]:
    return [pytest.param(route, name, table[name], id=f"{route.path}:{name}") for name in table]


CASES = [
    *_cases(TGI, TGI_REQUEST),
    *_cases(TGI_IN_PARAMETERS, TGI_PARAMETERS),
    *_cases(CHAT_ROUTE, CHAT),
    *_cases(COMPLETIONS_ROUTE, COMPLETIONS),
]


def _with(body: dict[str, Any], nested: str | None, changes: Mapping[str, Any]) -> dict[str, Any]:
    """`body` with `changes` made to it, or to its `nested` object."""
    if nested is not None:
        return {**body, nested: _with(body[nested], None, changes)}
    updated = {**body, **changes}
    return {name: value for name, value in updated.items() if value is not OMIT}


async def _answer(client: BackendClient, path: str, body: dict[str, Any]) -> tuple[int, str]:
    """The status and the answer's text, its timestamps made equal."""
    response = await client.post(path, json=body)
    text = await response.text()
    return response.status, re.sub(r'"created":\s*\d+', '"created":0', text)


@pytest.mark.parametrize(("route", "name", "expectation"), CASES)
async def test_a_field_changes_the_answer_or_is_refused(
    client: BackendClient, route: Route, name: str, expectation: Expectation
) -> None:
    base = expectation.base if isinstance(expectation, Changes) else {}
    baseline_body = _with(route.baseline, route.nested, base)
    status, baseline = await _answer(client, route.path, baseline_body)
    assert status == 200, baseline
    variant = _with(baseline_body, route.nested, {name: expectation.value})
    status, answer = await _answer(client, route.path, variant)
    if isinstance(expectation, Refused):
        assert status == 422, answer
        assert re.search(rf"\b{name}\b", answer, re.IGNORECASE), answer
        return
    assert status == 200, answer
    if isinstance(expectation, NoEffect):
        assert answer == baseline, expectation.why
    elif expectation.evidence is not None:
        assert expectation.evidence(json.loads(answer)), answer
    else:
        assert answer != baseline
