"""The OpenAI routes' response bodies, key for key in TGI's order.

TGI reports `eos_token` as `"stop"` and keeps `"stop_sequence"` and `"length"` on the chat
route; the completions stream's final chunk uses the raw names. `id` is always "".
"""

from __future__ import annotations

import json
import time
from typing import Any

from protocol.tgi import FinishReason
from protocol.version import VERSION
from tgi_server.generation.events import Completion, GeneratedToken, TokenEvent
from tgi_server.http.wire import f32
from tgi_server.service import GenerateResult

__all__ = [
    "ToolAnswer",
    "assistant_message",
    "chat_body",
    "chat_chunk",
    "completion_body",
    "completion_chunk",
    "completion_final",
    "delta_chunk",
    "error_event",
    "openai_finish_reason",
    "usage_body",
    "usage_chunk",
]

JSON = dict[str, Any]
SYSTEM_FINGERPRINT = f"{VERSION}-native"


def openai_finish_reason(reason: FinishReason) -> str:
    return "stop" if reason == "eos_token" else reason


def usage_body(prompt_tokens: int, completion_tokens: int) -> JSON:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _head(kind: str, model: str) -> JSON:
    return {
        "object": kind,
        "id": "",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }


def _logprob_entry(token: GeneratedToken, top: tuple[GeneratedToken, ...]) -> JSON:
    return {
        "token": token.text,
        "logprob": f32(token.logprob),
        "top_logprobs": [{"token": t.text, "logprob": f32(t.logprob)} for t in top],
    }


ToolAnswer = tuple[str | None, JSON | str]
"""A tool call: (function name, its arguments), or (None, `no_tool`'s arguments: the text
answer); arguments as text when the token budget cut the call short (`cut_tool_call`)."""


def assistant_message(text: str, tool: ToolAnswer | None) -> JSON:
    """The assistant's message: its text, or the tool call (name, arguments) it made."""
    if tool is None:
        return {"role": "assistant", "content": text}
    name, arguments = tool
    if name is None:  # `no_tool`: the model chose to answer in text
        return {"role": "assistant", "content": _no_tool_text(arguments)}
    return {"role": "assistant", "tool_calls": [_tool_call_body(name, arguments)]}


def _no_tool_text(arguments: JSON | str) -> str:
    return arguments if isinstance(arguments, str) else str(arguments.get("content", ""))


def _tool_call_body(name: str, arguments: JSON | str) -> JSON:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    function = {"description": None, "name": name, "arguments": text}
    return {"id": "0", "type": "function", "function": function}


def chat_body(
    result: GenerateResult,
    model: str,
    *,
    logprobs: bool,
    tool: ToolAnswer | None = None,
) -> JSON:
    """A non-streamed chat completion (a tool call when `tool` is given)."""
    best = result.best
    completion = best.completion
    choice: JSON = {
        "index": 0,
        "message": assistant_message(completion.generated_text, tool),
        "logprobs": None,
        "finish_reason": openai_finish_reason(completion.finish_reason),
    }
    if logprobs:
        entries = [
            _logprob_entry(token, top)
            for token, top in zip(best.tokens, best.top_tokens, strict=True)
        ]
        choice["logprobs"] = {"content": entries}
    body = _head("chat.completion", model)
    body["choices"] = [choice]
    body["usage"] = usage_body(completion.input_length, completion.generated_tokens)
    return body


def chat_chunk(event: TokenEvent, model: str, *, logprobs: bool) -> JSON:
    """One streamed chat token; the last one has its finish reason."""
    text = "" if event.token.special else event.token.text
    finish = event.completion.finish_reason if event.completion else None
    body = _head("chat.completion.chunk", model)
    body["choices"] = [
        {
            "index": 0,
            "delta": {"role": "assistant", "content": text},
            "logprobs": {"content": [_logprob_entry(event.token, event.top_tokens)]}
            if logprobs
            else None,
            "finish_reason": openai_finish_reason(finish) if finish else None,
        }
    ]
    body["usage"] = None
    return body


def delta_chunk(delta: JSON, model: str, finish_reason: FinishReason | None) -> JSON:
    """A streamed chat chunk around `delta` (a tool call's, `openai.tool_stream`)."""
    body = _head("chat.completion.chunk", model)
    body["choices"] = [
        {
            "index": 0,
            "delta": delta,
            "logprobs": None,
            "finish_reason": openai_finish_reason(finish_reason) if finish_reason else None,
        }
    ]
    body["usage"] = None
    return body


def usage_chunk(completion: Completion, model: str) -> JSON:
    body = _head("chat.completion.chunk", model)
    body["choices"] = []
    body["usage"] = usage_body(completion.input_length, completion.generated_tokens)
    return body


def completion_body(results: list[GenerateResult], model: str) -> JSON:
    """A non-streamed text completion over one or more prompts."""
    body = _head("text_completion", model)
    body["choices"] = [
        {
            "index": index,
            "text": result.best.completion.generated_text,
            "logprobs": None,
            "finish_reason": openai_finish_reason(result.best.completion.finish_reason),
        }
        for index, result in enumerate(results)
    ]
    body["usage"] = usage_body(
        sum(r.best.completion.input_length for r in results),
        sum(r.best.completion.generated_tokens for r in results),
    )
    return body


def completion_chunk(event: TokenEvent, index: int, model: str) -> JSON:
    body: JSON = {
        "object": "text_completion",
        "id": "",
        "created": int(time.time()),
        "choices": [
            {"index": index, "text": event.token.text, "logprobs": None, "finish_reason": ""}
        ],
        "model": model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }
    return body


def completion_final(event: TokenEvent, completion: Completion, index: int, model: str) -> JSON:
    """The last chunk of one prompt: its token, the raw finish reason, and usage."""
    body = _head("text_completion", model)
    body["choices"] = [
        {
            "index": index,
            "text": event.token.text,
            "logprobs": None,
            "finish_reason": completion.finish_reason,
        }
    ]
    body["usage"] = usage_body(completion.input_length, completion.generated_tokens)
    return body


def error_event(message: str) -> JSON:
    """An error inside an OpenAI-route stream (TGI always says 422)."""
    return {"error": {"message": message, "http_status_code": 422}}
