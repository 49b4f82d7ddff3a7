"""POST /generate_stream: TGI's SSE bytes, in-stream errors, and clients that leave early."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

import tgi_server.http.routes
import tgi_server.openai.routes
from protocol.tgi import StreamResponse
from tests.chunked import unchunk
from tests.integration.tgi_server.conftest import (
    BackendClient,
    MakeClient,
    eventually,
    metric_lines,
)
from tgi_server.http.app_keys import ENGINE_KEY, SLOTS_KEY
from tgi_server.http.wire import stream_event_bytes
from tgi_server.openai.wire import completion_chunk

PROMPT = "The ferry crossed"


async def stream_bytes(client: BackendClient, body: dict[str, Any]) -> tuple[bytes, Any]:
    response = await client.post("/generate_stream", json=body)
    assert response.status == 200
    return await response.read(), response.headers


def events_of(raw: bytes) -> list[bytes]:
    """The `data:` payloads, checking TGI's framing on the way: `data: {json}\\n\\n` each."""
    assert raw.endswith(b"\n\n")
    frames = raw[:-2].split(b"\n\n")
    assert all(frame.startswith(b"data: {") and b"\n" not in frame for frame in frames)
    return [frame.removeprefix(b"data: ") for frame in frames]


async def test_the_stream_is_tgis_sse_byte_for_byte(client: BackendClient) -> None:
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 5, "details": True}}
    raw, headers = await stream_bytes(client, body)
    assert headers["Content-Type"] == "text/event-stream"
    assert headers["Cache-Control"] == "no-cache"
    assert headers["X-Accel-Buffering"] == "no"
    assert headers["x-compute-type"] == "cpu"
    payloads = events_of(raw)
    events = [json.loads(payload) for payload in payloads]
    for payload, event in zip(payloads, events, strict=True):
        compact = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
        assert payload == compact
        assert list(event) == ["index", "token", "generated_text", "details"]
        StreamResponse.model_validate(event)
    assert [event["index"] for event in events] == list(range(1, len(events) + 1))
    assert all(event["generated_text"] is None for event in events[:-1])
    assert all(event["details"] is None for event in events[:-1])
    final = events[-1]
    assert final["details"]["generated_tokens"] == len(events)
    assert list(final["details"]) == ["finish_reason", "generated_tokens", "seed", "input_length"]
    assert final["details"]["seed"] is None


async def test_the_stream_says_what_generate_says(client: BackendClient) -> None:
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 9}}
    response = await client.post("/generate", json=body)
    expected = (await response.json())["generated_text"]
    raw, _ = await stream_bytes(client, body)
    events = [json.loads(payload) for payload in events_of(raw)]
    assert events[-1]["generated_text"] == expected
    assert events[-1]["details"] is None
    texts = "".join(event["token"]["text"] for event in events if not event["token"]["special"])
    assert texts == expected.rstrip("\ufffd")  # a trailing partial character has text ""


async def test_top_tokens_sit_between_token_and_generated_text(client: BackendClient) -> None:
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 2, "top_n_tokens": 2}}
    raw, _ = await stream_bytes(client, body)
    event = json.loads(events_of(raw)[0])
    assert list(event) == ["index", "token", "top_tokens", "generated_text", "details"]
    assert len(event["top_tokens"]) >= 2


async def error_event(client: BackendClient, body: dict[str, Any]) -> dict[str, Any]:
    raw, _ = await stream_bytes(client, body)
    (payload,) = events_of(raw)
    event: dict[str, Any] = json.loads(payload)
    return event


async def test_validation_errors_arrive_inside_a_200_stream(client: BackendClient) -> None:
    assert await error_event(client, {"inputs": ""}) == {
        "error": "Input validation error: `inputs` cannot be empty",
        "error_type": "validation",
    }
    event = await error_event(client, {"inputs": "a", "parameters": {"best_of": 2}})
    assert event["error"] == (
        "Input validation error: `best_of` != 1 is not supported when streaming tokens"
    )
    body = {"inputs": "a", "parameters": {"decoder_input_details": True}}
    assert (await error_event(client, body))["error"] == (
        "Input validation error: `decoder_input_details` == true is not supported "
        "when streaming tokens"
    )


async def test_overload_arrives_inside_the_stream(make_client: MakeClient) -> None:
    client = await make_client(max_concurrent_requests=1)
    long_body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 1000}}
    async with client.post("/generate_stream", json=long_body) as holder:
        await holder.content.readuntil(b"\n\n")
        event = await error_event(client, {"inputs": "a"})
        assert event == {"error": "Model is overloaded", "error_type": "overloaded"}
        refused = await client.post("/generate", json={"inputs": "a"})
        assert refused.status == 429
        assert await refused.json() == {"error": "Model is overloaded", "error_type": "overloaded"}


async def raw_exchange(client: BackendClient, request: bytes) -> bytes:
    """Send `request` as it is and read until the server closes the connection."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()


def request_bytes(version: str, body: bytes) -> bytes:
    return (
        f"POST /generate_stream {version}\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


async def test_http_11_streams_are_chunked_and_http_10_ones_plain(client: BackendClient) -> None:
    body = json.dumps({"inputs": PROMPT, "parameters": {"max_new_tokens": 3}}).encode()
    chunked = await raw_exchange(client, request_bytes("HTTP/1.1", body))
    head, _, payload = chunked.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert len(events_of(unchunk(payload))) == 3
    plain = await raw_exchange(client, request_bytes("HTTP/1.0", body))
    head, _, payload = plain.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding" not in head
    assert len(events_of(payload)) == 3


def failing_on_second_event(real: Callable[..., Any]) -> Callable[..., Any]:
    """`real`, except that it raises on the stream's second token event."""

    def encode(event: Any, *args: Any, **kwargs: Any) -> Any:
        if event.index == 2:
            raise ValueError("cannot encode (simulated)")
        return real(event, *args, **kwargs)

    return encode


async def test_an_error_while_writing_the_stream_ends_it_with_an_error_event_and_is_counted(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        tgi_server.http.routes, "stream_event_bytes", failing_on_second_event(stream_event_bytes)
    )
    client = await make_client(max_concurrent_requests=1)
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 50}}
    raw, _ = await stream_bytes(client, body)
    first, last = raw.rstrip(b"\n").split(b"\n\n")
    assert first.startswith(b'data: {"index":1,')
    assert json.loads(last.removeprefix(b"data: ")) == {
        "error": "Request failed during generation: Server error: cannot encode (simulated)",
        "error_type": "generation",
    }
    app = client.app
    await eventually(lambda: app[SLOTS_KEY].in_use == 0 and app[ENGINE_KEY].stats.cancelled == 1)
    metrics = await metric_lines(client)
    assert "tgi_request_count_total 1.0" in metrics
    assert 'tgi_request_failure_total{err="generation"} 1.0' in metrics
    assert "tgi_request_success_total 0.0" in metrics


async def test_an_error_while_writing_an_openai_stream_ends_it_with_an_error_event(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        tgi_server.openai.routes,
        "completion_chunk",
        failing_on_second_event(completion_chunk),
    )
    client = await make_client(max_concurrent_requests=1)
    body = {"model": "tgi", "prompt": PROMPT, "max_tokens": 50, "stream": True}
    response = await client.post("/v1/completions", json=body)
    assert response.status == 200
    frames = (await response.read()).rstrip(b"\n").split(b"\n\n")
    assert len(frames) == 3
    assert frames[-1] == b"data: [DONE]"
    error = json.loads(frames[1].removeprefix(b"data: "))
    assert "cannot encode (simulated)" in json.dumps(error)
    app = client.app
    await eventually(lambda: app[SLOTS_KEY].in_use == 0)
    metrics = await metric_lines(client)
    assert 'tgi_request_failure_total{err="generation"} 1.0' in metrics


async def test_a_stream_records_its_validation_and_whole_time(client: BackendClient) -> None:
    body = {"inputs": "The ferry", "parameters": {"max_new_tokens": 3}}
    await (await client.post("/generate_stream", json=body)).read()
    lines = await metric_lines(client)

    def value(name: str) -> float:
        return float(next(line for line in lines if line.startswith(name + " ")).split()[-1])

    validation = value("tgi_request_validation_duration_sum")
    assert validation > 0  # timed from the request's arrival to the end of validation
    assert value("tgi_request_duration_sum") > validation
