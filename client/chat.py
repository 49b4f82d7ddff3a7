"""OpenAI-style chat completions (TGI's `/v1/chat/completions`) as pure logic: the payload and its
cost, and the typed answer. The request goes through a worker like any other (§4.3)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pydantic

from client.errors import ProtocolError, ValidationError

__all__ = [
    "CHAT_PATH",
    "ChatCall",
    "ChatChoice",
    "ChatCompletion",
    "ChatMessage",
    "ChatUsage",
    "build_chat_call",
    "parse_chat_completion",
]

CHAT_PATH = "/v1/chat/completions"


class _Answer(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")


class ChatMessage(_Answer):
    role: str
    content: str | None = None


class ChatChoice(_Answer):
    index: int = 0
    message: ChatMessage
    finish_reason: str | None = None


class ChatUsage(_Answer):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ChatCompletion(_Answer):
    """A chat completion; unknown fields are kept (as attributes and in `model_dump()`)."""

    id: str = ""
    model: str = ""
    choices: list[ChatChoice]
    usage: ChatUsage | None = None

    @property
    def content(self) -> str:
        """The first choice's text ("" when it has none, e.g. a tool call)."""
        return self.choices[0].message.content or "" if self.choices else ""


@dataclass(frozen=True)
class ChatCall:
    payload: dict[str, Any]
    cost: int


def build_chat_call(
    messages: Sequence[Mapping[str, Any]], max_tokens: int, options: Mapping[str, Any]
) -> ChatCall:
    """The payload for `messages` (each a dict with `role` and `content`), generating at most
    `max_tokens` tokens, which is also the cost the ticket pays."""
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValidationError("max_tokens must be an integer >= 1", origin="client")
    if not messages:
        raise ValidationError("messages must not be empty", origin="client")
    for message in messages:
        if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
            raise ValidationError("each message must be a dict with a `role`", origin="client")
    if options.get("stream"):
        raise ValidationError("chat() does not stream; leave `stream` out", origin="client")
    payload = {"model": "tgi", **options, "messages": [dict(m) for m in messages]}
    payload["max_tokens"] = max_tokens
    return ChatCall(payload=payload, cost=max_tokens)


def parse_chat_completion(body: bytes) -> ChatCompletion:
    try:
        return ChatCompletion.model_validate_json(body)
    except pydantic.ValidationError:
        raise ProtocolError(
            "the worker's chat answer is not a chat completion", origin="worker", status=200
        ) from None
