"""OpenAI streams through the socket sink: the bytes are the general chunk builders' bytes."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest

from protocol.sse import encode_json_event
from protocol.tgi import GenerateRequest
from tests.chunked import unchunk
from tests.unit.tgi_server.conftest import FakeTransport
from tgi_server.errors import ToolError
from tgi_server.generation.events import Completion, GeneratedToken, TokenEvent
from tgi_server.http.streaming import EncodeEvent, SocketStreamSink
from tgi_server.openai.requests import ChatCall
from tgi_server.openai.routes import chat_encoder, completion_encoder
from tgi_server.openai.wire import (
    chat_chunk,
    completion_chunk,
    completion_final,
    delta_chunk,
    usage_chunk,
)

COMPLETION = Completion(" ok", "eos_token", 2, None, 3)
FIRST = TokenEvent(1, GeneratedToken(5, " o", -0.5, False))
LAST = TokenEvent(2, GeneratedToken(6, "k", -0.25, False), completion=COMPLETION)
TOOL_TEXT = '{"function": {"_name": "get_weather", "city": "Paris"}}'
TOOL_DONE = Completion(TOOL_TEXT, "eos_token", 9, None, 3)


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tgi_server.openai.wire.time.time", lambda: 1_700_000_000.5)


def call(*, include_usage: bool = False, uses_tools: bool = False) -> ChatCall:
    request = GenerateRequest(inputs="hi")
    return ChatCall(request, True, include_usage, False, None, uses_tools=uses_tools)


async def streamed(encode: EncodeEvent, *events: TokenEvent) -> tuple[bytes, Completion]:
    transport = FakeTransport()
    sink = SocketStreamSink(cast(asyncio.Transport, transport), chunked=True, encode=encode)
    for event in events:
        sink.put_nowait(event)
    completion = await asyncio.wait_for(sink.wait(15.0), 1)
    return unchunk(bytes(transport.written)) + sink.final, completion  # as the client gets them


async def test_chat_chunks_and_the_usage_chunk_are_the_builders_bytes() -> None:
    body, completion = await streamed(chat_encoder(call(include_usage=True), "m"), FIRST, LAST)
    assert completion == COMPLETION
    assert body == b"".join(
        [
            encode_json_event(chat_chunk(FIRST, "m", logprobs=False)),
            encode_json_event(chat_chunk(LAST, "m", logprobs=False)),
            encode_json_event(usage_chunk(COMPLETION, "m")),
        ]
    )


async def test_a_tool_call_streams_its_name_then_its_arguments() -> None:
    pieces = ['{"function": {"_name": "get_', 'weather", ', '"city": "Par', "is", '"}}']
    events = [TokenEvent(i, GeneratedToken(5, p, -0.5, False)) for i, p in enumerate(pieces)]
    events[-1] = TokenEvent(9, events[-1].token, completion=TOOL_DONE)
    transport = FakeTransport()
    encode = chat_encoder(call(uses_tools=True, include_usage=True), "m")
    sink = SocketStreamSink(cast(asyncio.Transport, transport), chunked=True, encode=encode)
    sink.put_nowait(events[0])
    assert transport.written == b""  # no empty chunk while the name is unknown
    for event in events[1:]:
        sink.put_nowait(event)
    await asyncio.wait_for(sink.wait(15.0), 1)
    name = {"name": "get_weather", "arguments": ""}
    call_head = {"index": 0, "id": "0", "type": "function", "function": name}
    deltas = [{"role": "assistant", "tool_calls": [call_head]}] + [
        {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
        for piece in ("{", ' "city": "Par', "is", '"', "}")
    ]
    expected = [delta_chunk(delta, "m", None) for delta in deltas[:-1]]
    expected.append(delta_chunk(deltas[-1], "m", "eos_token"))
    assert unchunk(bytes(transport.written)) + sink.final == b"".join(
        [*map(encode_json_event, expected), encode_json_event(usage_chunk(TOOL_DONE, "m"))]
    )


async def test_a_tool_call_the_model_got_wrong_ends_the_wait_with_a_tool_error() -> None:
    broken = Completion("{not json", "length", 2, None, 3)
    last = TokenEvent(2, GeneratedToken(6, "x", -0.1, False), completion=broken)
    with pytest.raises(ToolError):
        await streamed(chat_encoder(call(uses_tools=True), "m"), last)


async def test_completion_chunks_and_the_final_chunk_are_the_builders_bytes() -> None:
    body, _ = await streamed(completion_encoder(1, "m"), FIRST, LAST)
    assert body == encode_json_event(completion_chunk(FIRST, 1, "m")) + encode_json_event(
        completion_final(LAST, COMPLETION, 1, "m")
    )
