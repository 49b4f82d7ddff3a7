"""Unmodified client packages through the router, with real processes (router → PyWorker →
embedded backend): huggingface_hub, openai, outlines and text-generation in gateway mode, with
nothing but a base URL and the endpoint's API key; and Vast.ai's own client through `/route/`.
"""

from __future__ import annotations

import re
from typing import Any

import openai
import pytest
from huggingface_hub import InferenceClient
from openai.types.chat import ChatCompletionMessageParam

from tests.e2e.conftest import ADMIN_KEY, API_KEY, Stack
from tests.e2e.processes import post_json
from tests.e2e.vast_client import generate_with_vast_client
from tests.ports import free_port
from tests.worker_identity import bearer, join_token_from_api

pytestmark = pytest.mark.e2e

PROMPT = "The gateway forwards"
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hello there"}]
HF_MESSAGES: list[dict[Any, Any]] = [{"role": "user", "content": "Hello there"}]


def gateway(stack: Stack) -> str:
    return f"{stack.router_url}/endpoints/default"


def direct(stack: Stack, max_new_tokens: int) -> str:
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": max_new_tokens}}
    status, answer = post_json(f"{stack.backend_url}/generate", body, {})
    assert status == 200
    text: str = answer["generated_text"]
    return text


def test_inference_client_text_generation(stack: Stack) -> None:
    client = InferenceClient(base_url=gateway(stack), api_key=API_KEY)
    plain = client.text_generation(PROMPT, max_new_tokens=6, details=True)
    # It posts to POST / without return_full_text: the generated text alone, as its users expect.
    assert plain.generated_text == direct(stack, 6)
    assert plain.details is not None
    assert plain.details.generated_tokens == 6
    pieces = list(client.text_generation(PROMPT, max_new_tokens=6, stream=True))
    assert "".join(pieces) == plain.generated_text


def test_inference_client_chat(stack: Stack) -> None:
    client = InferenceClient(base_url=gateway(stack), api_key=API_KEY)
    whole = client.chat_completion(HF_MESSAGES, max_tokens=5, temperature=0)
    assert whole.choices[0].finish_reason == "length"
    chunks = list(client.chat_completion(HF_MESSAGES, max_tokens=5, temperature=0, stream=True))
    assert len(chunks) == 5


def test_inference_client_with_a_wrong_key_gets_401(stack: Stack) -> None:
    client = InferenceClient(base_url=gateway(stack), api_key="wrong")
    with pytest.raises(Exception, match="wrong API key"):  # our 401 body, as it shows it
        client.text_generation(PROMPT, max_new_tokens=2)


def test_openai_client_chat_and_completions(stack: Stack) -> None:
    client = openai.OpenAI(base_url=f"{gateway(stack)}/v1", api_key=API_KEY)
    chat = client.chat.completions.create(
        model="tgi", messages=MESSAGES, max_tokens=5, temperature=0
    )
    assert chat.usage is not None
    assert chat.usage.completion_tokens == 5
    stream = client.chat.completions.create(
        model="tgi", messages=MESSAGES, max_tokens=5, temperature=0, stream=True
    )
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert chat.choices[0].message.content is not None
    assert chat.choices[0].message.content.rstrip("\ufffd") == streamed
    completion = client.completions.create(model="tgi", prompt=PROMPT, max_tokens=4, temperature=0)
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 4
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{gateway(stack)}/v1", api_key="wrong").completions.create(
            model="tgi", prompt=PROMPT, max_tokens=2
        )


def test_outlines_through_the_gateway(stack: Stack) -> None:
    outlines = pytest.importorskip("outlines")
    from outlines.types import Regex

    model = outlines.from_tgi(InferenceClient(base_url=gateway(stack), api_key=API_KEY))
    options: dict[str, Any] = {"max_new_tokens": 30}  # as users call it: no return_full_text
    assert re.fullmatch("[+-]?(0|[1-9][0-9]*)", model(PROMPT, int, **options))
    assert re.fullmatch("[0-9]{3}-[a-c]{2}", model(PROMPT, Regex("[0-9]{3}-[a-c]{2}"), **options))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # its pydantic v1 style
def test_text_generation_client_through_the_gateway(stack: Stack) -> None:
    text_generation = pytest.importorskip("text_generation")
    client = text_generation.Client(
        gateway(stack), headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60
    )
    response = client.generate(PROMPT, max_new_tokens=5)
    assert response.generated_text == direct(stack, 5)
    events = list(client.generate_stream(PROMPT, max_new_tokens=5))
    assert len(events) == 5
    assert events[-1].generated_text == response.generated_text


def test_a_dead_worker_is_skipped_for_a_live_one(stack: Stack) -> None:
    """A worker the router believes ready but that is gone: the gateway tries it first (it
    looks idle while the live one looks loaded), fails to connect, and retries on the live one."""
    ghost = f"http://127.0.0.1:{free_port()}"
    report = {"id": "ghost", "url": ghost, "state": "ready", "max_perf": 1000.0}
    join = bearer(join_token_from_api(stack.router_url, ADMIN_KEY))
    status, answer = post_json(f"{stack.router_url}/worker_status/", report, join)
    assert status == 200
    worker_auth = bearer(answer["credential"])
    try:
        for _ in range(3):  # tickets count in flight: the live worker now looks busy
            body = {"endpoint": "default", "cost": 500, "avoid": [ghost]}
            status, ticket = post_json(
                f"{stack.router_url}/route/", body, {"Authorization": f"Bearer {API_KEY}"}
            )
            assert (status, ticket["url"]) == (200, stack.worker_url)
        client = InferenceClient(base_url=gateway(stack), api_key=API_KEY)
        assert client.text_generation(PROMPT, max_new_tokens=4) == direct(stack, 4)
        assert f"worker {ghost} of endpoint 'default' failed" in stack.router.output()
    finally:
        stopped = {**report, "state": "stopped"}
        assert post_json(f"{stack.router_url}/worker_status/", stopped, worker_auth)[0] == 200


def test_vasts_client_through_the_router_and_our_worker(stack: Stack) -> None:
    payload = {"inputs": PROMPT, "parameters": {"max_new_tokens": 6}}
    whole, events = generate_with_vast_client(stack.router_url, API_KEY, payload, cost=6)
    assert whole["ok"], whole
    assert whole["url"] == stack.worker_url
    assert whole["response"]["generated_text"] == direct(stack, 6)
    assert len(events) == 6
    assert events[-1]["generated_text"] == direct(stack, 6)
