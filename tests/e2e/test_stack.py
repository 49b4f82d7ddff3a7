"""Router, PyWorker and backend as real processes: the whole path, as a user would drive it."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from client import AuthenticationError, Client
from tests.e2e.conftest import API_KEY, Stack
from tests.e2e.processes import post_json, run_command

pytestmark = pytest.mark.e2e

PROMPT = "The router signs a ticket"


def direct_generate(stack: Stack, max_new_tokens: int) -> dict[str, Any]:
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": max_new_tokens, "details": True}}
    status, answer = post_json(f"{stack.backend_url}/generate", body)
    assert status == 200
    result: dict[str, Any] = answer
    return result


def test_generate_through_router_and_worker_matches_the_backend(stack: Stack) -> None:
    with Client(stack.router_url, api_key=API_KEY) as client:
        result = client.generate(PROMPT, max_new_tokens=8, details=True)
    direct = direct_generate(stack, 8)
    assert result.generated_text == direct["generated_text"]
    assert result.details is not None
    assert result.details.generated_tokens == direct["details"]["generated_tokens"]


def test_generate_stream_yields_tokens_then_the_full_text(stack: Stack) -> None:
    with Client(stack.router_url, api_key=API_KEY) as client:
        events = list(client.generate_stream(PROMPT, max_new_tokens=8, details=True))
    direct = direct_generate(stack, 8)
    assert [event.index for event in events] == list(range(1, len(events) + 1))
    assert len(events) == direct["details"]["generated_tokens"]
    assert all(event.generated_text is None for event in events[:-1])
    assert events[-1].generated_text == direct["generated_text"]
    assert events[-1].details is not None
    assert events[-1].details.generated_tokens == len(events)


def test_a_forged_ticket_is_refused_by_the_worker(stack: Stack) -> None:
    with Client(stack.router_url, api_key=API_KEY) as client:
        ticket = client.route(4)
    forged = {**ticket.auth_data(), "cost": 4096}
    payload = {"inputs": PROMPT, "parameters": {"max_new_tokens": 4096}}
    status, body = post_json(f"{ticket.url}/generate", {"auth_data": forged, "payload": payload})
    assert status == 401
    assert body["reason"] == "bad_signature"


def test_a_replayed_ticket_is_refused_by_the_worker(stack: Stack) -> None:
    with Client(stack.router_url, api_key=API_KEY) as client:
        ticket = client.route(4)
    body = {
        "auth_data": ticket.auth_data(),
        "payload": {"inputs": PROMPT, "parameters": {"max_new_tokens": 4}},
    }
    assert post_json(f"{ticket.url}/generate", body)[0] == 200
    status, answer = post_json(f"{ticket.url}/generate", body)
    assert (status, answer["reason"]) == (403, "replayed")


def test_a_ticket_that_pays_for_less_than_max_new_tokens_is_refused(stack: Stack) -> None:
    with Client(stack.router_url, api_key=API_KEY) as client:
        ticket = client.route(2)
    payload = {"inputs": PROMPT, "parameters": {"max_new_tokens": 50}}
    status, body = post_json(
        f"{ticket.url}/generate", {"auth_data": ticket.auth_data(), "payload": payload}
    )
    assert (status, body["reason"]) == (403, "cost_too_low")


def test_the_sdk_raises_a_typed_error_for_a_wrong_key(stack: Stack) -> None:
    with (
        Client(stack.router_url, api_key="wrong") as client,
        pytest.raises(AuthenticationError) as caught,
    ):
        client.generate(PROMPT, max_new_tokens=2)
    assert caught.value.status == 401


def run_cli(*args: str, api_key: str | None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin"}
    if api_key is not None:
        env["TGIS_API_KEY"] = api_key
    return run_command(["generate", *args], env, inherit_environment=False)


@pytest.mark.parametrize("stream", [False, True])
def test_the_generate_command_prints_the_text(stack: Stack, stream: bool) -> None:
    flags = ["--stream"] if stream else []
    result = run_cli(
        PROMPT, "--router", stack.router_url, "--max-new-tokens", "8", *flags, api_key=API_KEY
    )
    assert result.returncode == 0, result.stderr
    assert direct_generate(stack, 8)["generated_text"] in result.stdout


def test_the_generate_command_explains_a_wrong_key(stack: Stack) -> None:
    result = run_cli("hi", "--router", stack.router_url, api_key="wrong")
    assert result.returncode == 1
    assert "API key" in result.stderr
    assert "Traceback" not in result.stderr


def test_chat_goes_through_the_worker_to_the_openai_route(stack: Stack) -> None:
    messages = [{"role": "user", "content": "Say something."}]
    with Client(stack.router_url, api_key=API_KEY) as client:
        answer = client.chat(messages, max_tokens=6, temperature=0.0)
    status, direct = post_json(
        f"{stack.backend_url}/v1/chat/completions",
        {"messages": messages, "max_tokens": 6, "temperature": 0.0},
    )
    assert status == 200
    assert answer.content == direct["choices"][0]["message"]["content"]
    assert answer.usage is not None
    assert answer.usage.completion_tokens <= 6


def test_a_chat_ticket_must_pay_for_max_tokens(stack: Stack) -> None:
    with Client(stack.router_url, api_key=API_KEY) as client:
        ticket = client.route(5)
    payload = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 50}
    status, body = post_json(
        f"{ticket.url}/v1/chat/completions", {"auth_data": ticket.auth_data(), "payload": payload}
    )
    assert (status, body["reason"]) == (403, "cost_too_low")
