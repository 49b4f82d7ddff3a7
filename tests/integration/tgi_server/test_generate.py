"""POST /generate with the real tiny model: bodies, details, determinism, headers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from protocol.tgi import GenerateResponse
from tests.integration.tgi_server.conftest import BackendClient
from tgi_server.model.loading import LoadedModel

PROMPT = "The lighthouse keeper"
TIMING_HEADERS = (
    "x-compute-time",
    "x-total-time",
    "x-validation-time",
    "x-queue-time",
    "x-inference-time",
    "x-time-per-token",
)


async def generate(client: BackendClient, **parameters: Any) -> dict[str, Any]:
    response = await client.post("/generate", json={"inputs": PROMPT, "parameters": parameters})
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def test_generate_with_details(client: BackendClient, loaded_model: LoadedModel) -> None:
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 6, "details": True}}
    response = await client.post("/generate", json=body)
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    payload = await response.json()
    GenerateResponse.model_validate(payload)
    details = payload["details"]
    assert list(details) == ["finish_reason", "generated_tokens", "seed", "prefill", "tokens"]
    assert details["seed"] is None  # greedy
    assert details["prefill"] == []
    tokens = details["tokens"]
    assert len(tokens) == details["generated_tokens"]
    assert details["finish_reason"] in ("length", "eos_token")
    if details["finish_reason"] == "length":
        assert len(tokens) == 6
    assert all(set(token) == {"id", "text", "logprob", "special"} for token in tokens)
    assert all(token["logprob"] <= 0 for token in tokens)
    prompt_tokens = len(loaded_model.tokenizer(PROMPT)["input_ids"])
    assert response.headers["x-prompt-tokens"] == str(prompt_tokens)
    assert response.headers["x-generated-tokens"] == str(len(tokens))
    assert response.headers["x-compute-type"] == "cpu"
    assert response.headers["x-compute-characters"] == str(len(PROMPT))
    assert all(float(response.headers[name]) >= 0 for name in TIMING_HEADERS)


async def test_generated_text_matches_the_tokens(
    client: BackendClient, loaded_model: LoadedModel
) -> None:
    payload = await generate(client, max_new_tokens=8, details=True)
    ids = [token["id"] for token in payload["details"]["tokens"]]
    context = loaded_model.tokenizer(PROMPT)["input_ids"][-1]
    expected = loaded_model.tokenizer.decode([context, *ids], skip_special_tokens=True)
    prefix = loaded_model.tokenizer.decode([context], skip_special_tokens=True)
    assert payload["generated_text"] == expected[len(prefix) :]


async def test_details_are_absent_unless_asked_for(client: BackendClient) -> None:
    payload = await generate(client, max_new_tokens=3)
    assert list(payload) == ["generated_text"]


async def test_greedy_is_deterministic(client: BackendClient) -> None:
    first = await generate(client, max_new_tokens=10)
    second = await generate(client, max_new_tokens=10)
    assert first == second


async def test_a_seed_reproduces_a_sampled_answer(client: BackendClient) -> None:
    parameters = {"max_new_tokens": 12, "do_sample": True, "seed": 42, "details": True}
    first = await generate(client, **parameters)
    second = await generate(client, **parameters)
    assert first["generated_text"] == second["generated_text"]
    assert first["details"]["seed"] == 42
    other = await generate(client, **{**parameters, "seed": 43})
    assert other["details"]["tokens"] != first["details"]["tokens"]


async def test_sampling_without_a_seed_reports_the_random_one(client: BackendClient) -> None:
    payload = await generate(client, max_new_tokens=2, temperature=0.7, details=True)
    seed = payload["details"]["seed"]
    assert isinstance(seed, int)
    assert 0 <= seed < 2**64


async def test_decoder_input_details_give_prefill_with_a_null_first_logprob(
    client: BackendClient, loaded_model: LoadedModel
) -> None:
    payload = await generate(client, max_new_tokens=1, decoder_input_details=True)
    prefill = payload["details"]["prefill"]
    ids = loaded_model.tokenizer(PROMPT)["input_ids"]
    assert [token["id"] for token in prefill] == ids
    assert prefill[0] == {"id": ids[0], "text": "<s>", "logprob": None}
    assert all(token["logprob"] < 0 for token in prefill[1:])


async def test_return_full_text_prepends_the_prompt(client: BackendClient) -> None:
    plain = await generate(client, max_new_tokens=5)
    full = await generate(client, max_new_tokens=5, return_full_text=True)
    assert full["generated_text"] == PROMPT + plain["generated_text"]


async def test_a_stop_sequence_ends_generation_and_stays_in_the_text(
    client: BackendClient,
) -> None:
    free = await generate(client, max_new_tokens=12, details=True)
    texts = [token["text"] for token in free["details"]["tokens"]]
    position = next(i for i, text in enumerate(texts) if i >= 2 and text.strip())
    stop = texts[position]
    stopped = await generate(client, max_new_tokens=12, details=True, stop=[stop])
    assert stopped["details"]["finish_reason"] == "stop_sequence"
    assert stopped["details"]["generated_tokens"] <= position + 1
    assert stopped["generated_text"].endswith(stop)
    assert free["generated_text"].startswith(stopped["generated_text"])


async def test_top_tokens_list_the_alternatives_of_every_step(client: BackendClient) -> None:
    payload = await generate(client, max_new_tokens=4, top_n_tokens=3, details=True)
    details = payload["details"]
    assert list(details)[-1] == "top_tokens"
    assert len(details["top_tokens"]) == len(details["tokens"])
    for chosen, alternatives in zip(details["tokens"], details["top_tokens"], strict=True):
        assert len(alternatives) >= 3
        assert alternatives[0]["id"] == chosen["id"]  # greedy picks the best one
        logprobs = [alternative["logprob"] for alternative in alternatives]
        assert logprobs == sorted(logprobs, reverse=True)


async def test_best_of_returns_the_losing_candidates(client: BackendClient) -> None:
    payload = await generate(client, max_new_tokens=4, best_of=2, do_sample=True, details=True)
    details = payload["details"]
    assert len(details["best_of_sequences"]) == 1
    loser = details["best_of_sequences"][0]
    assert loser["seed"] != details["seed"]

    def mean(tokens: list[dict[str, Any]]) -> float:
        return float(sum(token["logprob"] for token in tokens)) / len(tokens)

    assert mean(details["tokens"]) >= mean(loser["tokens"])


async def test_many_concurrent_requests_are_all_served_in_full(client: BackendClient) -> None:
    async def one(index: int) -> dict[str, Any]:
        body = {"inputs": f"{PROMPT} {index}", "parameters": {"max_new_tokens": 4, "details": True}}
        response = await client.post("/generate", json=body)
        assert response.status == 200
        payload: dict[str, Any] = await response.json()
        return payload

    results = await asyncio.gather(*(one(index) for index in range(24)))
    assert all(result["details"]["generated_tokens"] >= 1 for result in results)
    again = await one(7)
    # Greedy: the same prompt gives the same tokens under load. Logprobs may differ in the last
    # float digits, since a batch's shape changes the order of the sums, as on TGI.
    assert again["generated_text"] == results[7]["generated_text"]
    tokens, before = again["details"]["tokens"], results[7]["details"]["tokens"]
    assert [token["id"] for token in tokens] == [token["id"] for token in before]
    for token, earlier in zip(tokens, before, strict=True):
        assert token["logprob"] == pytest.approx(earlier["logprob"], abs=1e-4)


@pytest.mark.parametrize("route", ["/generate", "/generate_stream", "/"])
async def test_a_temperature_of_zero_answers_what_greedy_decoding_does(
    client: BackendClient, route: str
) -> None:
    greedy = await generate(client, max_new_tokens=8)
    parameters = {"max_new_tokens": 8, "temperature": 0, "do_sample": True, "top_k": 3}
    response = await client.post(route, json={"inputs": PROMPT, "parameters": parameters})
    assert response.status == 200, await response.text()
    if route == "/generate_stream":
        events = [line for line in (await response.text()).split("\n") if line.startswith("data:")]
        text = json.loads(events[-1].removeprefix("data:"))["generated_text"]
    else:
        answer = await response.json()
        text = (answer[0] if isinstance(answer, list) else answer)["generated_text"]
    assert text == greedy["generated_text"]
