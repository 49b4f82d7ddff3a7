"""The OpenAI-style request bodies, turned into generate requests as TGI's router does.

`/v1/chat/completions`: the messages go through the tokenizer's chat template (the prompt is
then tokenized without special tokens); `temperature` 0 means greedy, any other value or none
means sampling; `max_tokens` (or `max_completion_tokens`) becomes `max_new_tokens`;
`presence_penalty` p becomes `repetition_penalty` p + 2; `top_logprobs` becomes `top_n_tokens`.
With tools in use, TGI appends to the last message `"\n---\n"` then, when the template does not
render `tools` itself, the tools as compact JSON and a newline, then `tool_prompt` (TGI's default
below when absent).
`/v1/completions`: one prompt or a list of at most `max_client_batch_size`, with the same
sampling rules (`presence_penalty` too, unless `repetition_penalty` is given: then a 422);
`suffix` is refused. On both, `n` above 1 is refused: one choice per prompt, and so is every
OpenAI field this backend cannot honour (`UNSUPPORTED_CHAT_FIELDS`,
`UNSUPPORTED_COMPLETION_FIELDS`) when it is given a value other than its neutral one.
Pure: the template comes in as a function.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from protocol.errors import ErrorType
from protocol.tgi import GenerateParameters, GenerateRequest
from tgi_server.errors import InvalidBodyError, OpenAIRequestError, ToolError

__all__ = [
    "UNSUPPORTED_CHAT_FIELDS",
    "UNSUPPORTED_COMPLETION_FIELDS",
    "ChatCall",
    "ChatRequest",
    "CompletionCall",
    "CompletionRequest",
    "Unsupported",
    "chat_call",
    "completion_call",
    "cut_tool_call",
    "refuse_unsupported",
    "tool_call",
]

B = TypeVar("B", bound=BaseModel)
RenderChat = Callable[[list[dict[str, Any]], list[Any] | None], str]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class StreamOptions(_Body):
    include_usage: bool = False


@dataclass(frozen=True)
class Unsupported:
    """An OpenAI request field this backend cannot honour: refused (422) unless its value is one
    of `neutral` (what asks for nothing), never ignored."""

    neutral: tuple[Any, ...]
    reason: str


_NO_LOGIT_BIAS = Unsupported((None, {}), "no logit bias is applied")

UNSUPPORTED_CHAT_FIELDS: dict[str, Unsupported] = {
    "audio": Unsupported((None,), "text is the only output modality"),
    "function_call": Unsupported((None,), "use `tool_choice`"),
    "functions": Unsupported((None, []), "use `tools`"),
    "logit_bias": _NO_LOGIT_BIAS,
    "modalities": Unsupported((None, ["text"]), "text is the only output modality"),
    "moderation": Unsupported((None,), "no moderation model runs here"),
    "reasoning_effort": Unsupported((None,), "the served model has no reasoning control"),
    "store": Unsupported((None, False), "completions are not stored"),
    "verbosity": Unsupported((None,), "the served model has no verbosity control"),
    "web_search_options": Unsupported((None,), "no web search runs here"),
}
"""Chat fields refused when set (docs/backend.md, Parameters)."""

UNSUPPORTED_COMPLETION_FIELDS: dict[str, Unsupported] = {
    "best_of": Unsupported((None, 1), "one completion is generated per prompt"),
    "echo": Unsupported((None, False), "the prompt is not echoed"),
    "logit_bias": _NO_LOGIT_BIAS,
    "logprobs": Unsupported((None,), "completions carry no log probabilities here"),
}
"""Completions fields refused when set (docs/backend.md, Parameters)."""


def refuse_unsupported(document: Any, fields: dict[str, Unsupported]) -> None:
    """422 naming the first of `fields` that `document` sets to a value other than its neutral
    one."""
    if not isinstance(document, dict):
        return
    for name, unsupported in fields.items():
        value = document.get(name)
        if not any(value == neutral for neutral in unsupported.neutral):
            raise OpenAIRequestError(
                f"`{name}` is not supported by this backend ({unsupported.reason}): leave it unset",
                ErrorType.VALIDATION,
            )


class _Sampling(_Body):
    model: str | None = None
    max_tokens: int | None = Field(default=None, ge=0)
    temperature: float | None = None
    top_p: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = Field(default=None, ge=0)
    n: int | None = Field(default=None, ge=1)
    """Choices per prompt: one only (a 422 otherwise), as the backend generates one."""
    stop: list[str] | str | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None


class ChatRequest(_Sampling):
    messages: list[dict[str, Any]]
    max_completion_tokens: int | None = Field(default=None, ge=0)
    presence_penalty: float | None = None
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0)
    response_format: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    tool_prompt: str | None = None


class CompletionRequest(_Sampling):
    prompt: str | list[str]
    presence_penalty: float | None = None
    repetition_penalty: float | None = None
    suffix: str | None = None


@dataclass(frozen=True)
class ChatCall:
    request: GenerateRequest
    stream: bool
    include_usage: bool
    logprobs: bool
    model: str | None
    uses_tools: bool = False
    """The output is a tool call in TGI's JSON form (see `tool_call`)."""


@dataclass(frozen=True)
class CompletionCall:
    requests: tuple[GenerateRequest, ...]
    stream: bool
    model: str | None


def parse_body(model: type[B], document: Any) -> B:
    try:
        return model.model_validate(document)
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        path = ".".join(str(part) for part in error["loc"])
        raise InvalidBodyError(f"{path}: {error['msg']}" if path else str(error["msg"])) from exc


def chat_call(document: Any, render: RenderChat, *, template_renders_tools: bool) -> ChatCall:
    """The generate request a chat body stands for (422 for what TGI refuses).

    `template_renders_tools`: the chat template uses its `tools` variable, so only the tool
    prompt (not the tools' JSON) is appended to the last message.
    """
    body = parse_body(ChatRequest, document)
    refuse_unsupported(document, UNSUPPORTED_CHAT_FIELDS)
    if body.tools and body.response_format is not None:
        raise ToolError("Grammar and tools are mutually exclusive")
    tools = _chosen_tools(body.tools or [], body.tool_choice)
    grammar = _tool_grammar(tools, body.tool_choice) if tools else _response_grammar(body)
    messages = [_flatten(message) for message in body.messages]
    if tools and messages:
        prompt_text = DEFAULT_TOOL_PROMPT if body.tool_prompt is None else body.tool_prompt
        suffix = tool_prompt_suffix(tools, body.tool_choice, prompt_text, template_renders_tools)
        messages[-1] = {**messages[-1], "content": messages[-1]["content"] + suffix}
    prompt = render(messages, tools or None)
    parameters = _parameters(
        body,
        max_new_tokens=body.max_tokens
        if body.max_tokens is not None
        else body.max_completion_tokens,
        repetition_penalty=_repetition_penalty(body.presence_penalty),
        top_n_tokens=body.top_logprobs if body.logprobs else None,
        details=True,
    )
    if grammar is not None:
        parameters = parameters.model_copy(update={"grammar": grammar})
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return ChatCall(
        GenerateRequest(inputs=prompt, parameters=parameters),
        body.stream,
        include_usage,
        body.logprobs,
        body.model,
        uses_tools=bool(tools),
    )


def completion_call(document: Any, max_client_batch_size: int) -> CompletionCall:
    """The generate requests of a completions body, one per prompt."""
    body = parse_body(CompletionRequest, document)
    refuse_unsupported(document, UNSUPPORTED_COMPLETION_FIELDS)
    if body.suffix is not None:
        raise OpenAIRequestError(
            "Suffix is not supported and can be achieved by preprocessing the prompt.",
            ErrorType.SUFFIX_NOT_SUPPORTED,
        )
    prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
    if not prompts:
        raise InvalidBodyError("prompt: expected a non-empty list")
    if len(prompts) > max_client_batch_size:
        raise OpenAIRequestError(
            f"Number of prompts exceeds the maximum allowed batch size of {max_client_batch_size}",
            ErrorType.BATCH_SIZE_EXCEEDED,
        )
    if body.presence_penalty is not None and body.repetition_penalty is not None:
        raise OpenAIRequestError(
            "`presence_penalty` and `repetition_penalty` are one penalty here (repetition ="
            " presence + 2, as TGI maps them): send one of them",
            ErrorType.VALIDATION,
        )
    repetition = body.repetition_penalty
    if repetition is None:
        repetition = _repetition_penalty(body.presence_penalty)
    parameters = _parameters(
        body,
        max_new_tokens=body.max_tokens,
        repetition_penalty=repetition,
        top_n_tokens=None,
        details=True,
    )
    requests = tuple(GenerateRequest(inputs=p, parameters=parameters) for p in prompts)
    return CompletionCall(requests, body.stream, body.model)


def _repetition_penalty(presence_penalty: float | None) -> float | None:
    """TGI's reading of OpenAI's `presence_penalty` p: `repetition_penalty` p + 2."""
    return None if presence_penalty is None else presence_penalty + 2.0


def _parameters(
    body: _Sampling,
    *,
    max_new_tokens: int | None,
    repetition_penalty: float | None,
    top_n_tokens: int | None,
    details: bool,
) -> GenerateParameters:
    if body.n is not None and body.n > 1:
        raise OpenAIRequestError(
            f"`n` = {body.n} is not supported: this backend generates one choice per prompt; "
            "send n requests (with different seeds) instead",
            ErrorType.VALIDATION,
        )
    greedy = body.temperature == 0.0
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    return GenerateParameters(
        do_sample=not greedy,
        temperature=None if greedy else body.temperature,
        top_p=body.top_p,
        frequency_penalty=body.frequency_penalty,
        repetition_penalty=repetition_penalty,
        max_new_tokens=max_new_tokens,
        seed=body.seed,
        stop=stop,
        top_n_tokens=top_n_tokens,
        details=details,
        return_full_text=False,
    )


NO_TOOL = "no_tool"
"""TGI's extra function under `tool_choice: auto`: the model answers in text instead."""

DEFAULT_TOOL_PROMPT = (
    "\nGiven the functions available, please respond with a JSON for a function call with its"
    " proper arguments that best answers the given prompt. Respond in the format {name: function"
    " name, parameters: dictionary of argument name and its value}.Do not use variables.\n"
)
"""TGI's `tool_prompt` when a request sends none (a wire constant: the prompt must match)."""


def tool_prompt_suffix(
    tools: list[dict[str, Any]], choice: Any, tool_prompt: str, template_renders_tools: bool
) -> str:
    """What TGI appends to the last message's content when tools are in use."""
    if template_renders_tools:
        return f"\n---\n{tool_prompt}"
    listed = [_tgi_tool(_function(tool)) for tool in tools]
    if choice is None or choice == "auto":
        listed.append(_tgi_tool(NO_TOOL_FUNCTION))
    return f"\n---\n{json.dumps(listed, separators=(',', ':'))}\n{tool_prompt}"


NO_TOOL_FUNCTION: dict[str, Any] = {
    "name": NO_TOOL,
    "description": "Open ended response with no specific tool selected",
    "parameters": {
        "type": "object",
        "properties": {
            "content": {
                "type": "string",
                "description": "The response content",
            }
        },
        "required": ["content"],
    },
}


def _tgi_tool(function: dict[str, Any]) -> dict[str, Any]:
    """A tool as TGI serialises it: `parameters` under the name `arguments`."""
    definition = {
        "description": function.get("description"),
        "name": function["name"],
        "arguments": function.get("parameters") or {},
    }
    return {"type": "function", "function": definition}


def _chosen_tools(tools: list[dict[str, Any]], choice: Any) -> list[dict[str, Any]]:
    """The tools the model may call under `tool_choice`; [] for none."""
    if not tools or choice == "none":
        return []
    name = _named_choice(choice)
    if name is None:
        return tools
    chosen = [tool for tool in tools if _function(tool).get("name") == name]
    if not chosen:
        raise ToolError(f"Tool with name {name} not found")
    return chosen


def _named_choice(choice: Any) -> str | None:
    if choice is None or choice in ("auto", "required"):
        return None
    if isinstance(choice, str):
        return choice
    if isinstance(choice, dict):
        function = choice.get("function")
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            return str(function["name"])
    raise ToolError(f"invalid tool_choice: {choice!r}")


def _function(tool: dict[str, Any]) -> dict[str, Any]:
    function = tool.get("function")
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise ToolError("each tool needs a function with a name")
    parameters = function.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ToolError("a tool's function.parameters must be a JSON Schema object")
    if not isinstance(parameters.get("properties") or {}, dict):
        raise ToolError("a tool's function.parameters.properties must be an object")
    required = parameters.get("required") or []
    if not isinstance(required, list) or not all(isinstance(name, str) for name in required):
        raise ToolError("a tool's function.parameters.required must be a list of names")
    return function


def _tool_grammar(tools: list[dict[str, Any]], choice: Any) -> dict[str, Any]:
    """TGI's tool grammar: `{"function": {"_name": <tool>, ...its arguments}}`."""
    options = [_tool_schema(_function(tool)) for tool in tools]
    if choice is None or choice == "auto":
        options.append(_tool_schema(NO_TOOL_FUNCTION))
    schema = {
        "type": "object",
        "properties": {"function": {"anyOf": options}},
        "required": ["function"],
    }
    return {"type": "json", "value": schema}


def _tool_schema(function: dict[str, Any]) -> dict[str, Any]:
    parameters = function.get("parameters") or {}
    properties = dict(parameters.get("properties") or {})
    required = list(parameters.get("required") or [])
    return {
        "type": "object",
        "properties": {"_name": {"type": "string", "const": function["name"]}, **properties},
        "required": ["_name", *required],
    }


def _response_grammar(body: ChatRequest) -> dict[str, Any] | None:
    """`response_format` as a TGI grammar (OpenAI's `json_schema` form accepted too)."""
    response_format = body.response_format
    if response_format is None or response_format.get("type") == "text":
        return None
    if response_format.get("type") == "json_schema" and "json_schema" in response_format:
        inner = response_format["json_schema"] or {}
        return {"type": "json_schema", "value": {"schema": inner.get("schema", {})}}
    return response_format


def tool_call(text: str) -> tuple[str | None, dict[str, Any]]:
    """(function name, arguments) from a tool-grammar output; name None for `no_tool`."""
    try:
        document = json.loads(text)
        function = dict(document["function"])
        name = str(function.pop("_name"))
    except (ValueError, KeyError, TypeError) as exc:
        raise ToolError(f"the model's tool call is not valid: {exc}") from exc
    if name == NO_TOOL:
        return None, function
    return name, function


_CALL_HEAD = re.compile(r'\s*\{\s*"function"\s*:\s*\{\s*"_name"\s*:\s*"(?P<name>[^"\\]*)"\s*,?\s*')
_CONTENT_HEAD = re.compile(r'"content"\s*:\s*"')


def cut_tool_call(text: str) -> tuple[str | None, str] | None:
    """A tool-grammar output the token budget cut short, read as far as it got: (function
    name, its arguments so far as JSON text), or (None, the text so far) for `no_tool`. None
    when even the function's name was cut."""
    head = _CALL_HEAD.match(text)
    if head is None:
        return None
    rest = text[head.end() :]
    if head["name"] != NO_TOOL:
        return head["name"], "{" + rest
    content = _CONTENT_HEAD.match(rest)
    return None, _string_so_far(rest[content.end() :]) if content else ""


def _string_so_far(partial: str) -> str:
    """The text of a JSON string literal cut before its closing quote (an escape sequence cut
    in the middle is dropped)."""
    for end in range(len(partial), max(len(partial) - 6, 0) - 1, -1):
        try:
            return str(json.loads(f'"{partial[:end]}"'))
        except ValueError:
            continue
    return ""


def _flatten(message: dict[str, Any]) -> dict[str, Any]:
    """A message with its content as one string: text parts joined, images as markdown."""
    content = message.get("content")
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text":
                parts.append(str(part.get("text", "")))
            elif isinstance(part, dict) and part.get("type") == "image_url":
                image = part.get("image_url")
                if not isinstance(image, dict) or not isinstance(image.get("url"), str):
                    raise InvalidBodyError('messages: an image_url part needs {"url": "..."}')
                parts.append(f"![]({image['url']})")
        content = "".join(parts)
    if content is None and not message.get("tool_calls"):
        raise InvalidBodyError("messages: a message needs content or tool_calls")
    if content is not None and not isinstance(content, str):
        raise InvalidBodyError("messages: a message's content must be a string or a list of parts")
    return {**message, "content": content if content is not None else ""}
