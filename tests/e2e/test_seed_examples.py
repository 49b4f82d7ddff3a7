"""Every code example of the seed documents 000 (Outlines' TGI model), 001 (TGI's guidance page)
and 004 (a TGI overview), run as their readers run them: with the real, unmodified
huggingface_hub, outlines, openai and curl, against `tgi-serverless backend` directly and
through the router's gateway (router → PyWorker → backend, with the endpoint's API key).

Each example is copied as printed, with only its URL changed (and, through the gateway, the API
key added); a comment names its seed and section. The tiny model has no judgement, so what a
chat model would choose is not asserted: the shape is (the output's type, its schema, the tool
call's arguments against the tool's parameters). Free strings and integers seldom end on
their own with the tiny model's random weights, so a structured answer is either a complete
document of its schema or, where the example's token budget cut it, the start of one.

The examples' code is typed as their authors wrote it (untyped dict literals, a model that may
be sync or async), hence the error codes mypy is told to skip in this file.
"""
# mypy: disable-error-code="arg-type,union-attr,call-overload,no-untyped-call"

from __future__ import annotations

import asyncio
import gc
import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tests.e2e.conftest import API_KEY, Stack

jsonschema = pytest.importorskip("jsonschema")
partial_regex = pytest.importorskip("regex")  # matches a prefix of a regex's language
outlines_json_schema = pytest.importorskip("outlines_core.json_schema")

pytestmark = [
    pytest.mark.e2e,
    # The seeds never close their (Async)InferenceClient: its sockets and transports are
    # closed when collected, after the example's event loop has ended.
    pytest.mark.filterwarnings("ignore:unclosed <socket:ResourceWarning"),
    pytest.mark.filterwarnings("ignore:unclosed transport:ResourceWarning"),
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <socket:pytest.PytestUnraisableExceptionWarning"
    ),
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <function _SelectorTransport.__del__"
        ":pytest.PytestUnraisableExceptionWarning"
    ),
]


@dataclass(frozen=True)
class Target:
    """Where the seeds' `http://localhost:<port>` now points."""

    url: str
    api_key: str | None
    """The endpoint's API key through the gateway; None straight to the backend."""

    def curl(self, *args: str) -> str:
        """`curl -s *args` (the seed's command line), with the key's header when there is one;
        its output."""
        auth = ["-H", f"Authorization: Bearer {self.api_key}"] if self.api_key else []
        done = subprocess.run(
            ["curl", "-s", "--max-time", "120", *args, *auth],
            capture_output=True,
            text=True,
            timeout=150,
            check=True,
        )
        return done.stdout


@pytest.fixture(params=["backend", "gateway"])
def target(request: pytest.FixtureRequest, stack: Stack) -> Target:
    """The backend itself, or the gateway of the router in front of it (one stack per
    module)."""
    if request.param == "backend":
        return Target(stack.backend_url, None)
    return Target(f"{stack.router_url}/endpoints/default", API_KEY)


@pytest.fixture(autouse=True)
def _collect_the_seeds_clients() -> Iterator[None]:
    """Collect the clients an example left open while its warning filters apply."""
    yield
    gc.collect()


def matches_schema(document: Any, schema: dict[str, Any]) -> bool:
    try:
        jsonschema.validate(document, schema)
    except jsonschema.ValidationError:
        return False
    return True


JSON_STRING_CHARACTER = r'([^"\\\x00-\x1F]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})'
"""One character of a JSON string as RFC 8259 has it. outlines-core's regexes also leave out
U+007F to U+009F, which JSON allows and our grammar engine may write (seen in CI: a C1 control
in a tool call's `location`)."""


def schema_regex(schema: dict[str, Any], *, sort_keys: bool) -> str:
    """outlines-core's regular expression for `schema`, with any JSON whitespace between tokens
    and JSON's own string characters."""
    pattern = outlines_json_schema.build_regex_from_schema(
        json.dumps(schema, sort_keys=sort_keys), whitespace_pattern=r"[\n\t ]*"
    )
    return str(pattern).replace(outlines_json_schema.STRING_INNER, JSON_STRING_CHARACTER)


def assert_follows_schema(text: str, schema: dict[str, Any]) -> None:
    """`text` is a JSON document valid under `schema` or, cut by the token budget, the start of
    one: a prefix of the language of the schema's regular expression, the properties in the
    schema's order or sorted by name, as TGI generates them."""
    try:
        document = json.loads(text)
    except ValueError:
        patterns = [schema_regex(schema, sort_keys=sort) for sort in (False, True)]
        assert any(partial_regex.fullmatch(p, text, partial=True) for p in patterns), text
        return
    assert matches_schema(document, schema), document


# ----------------------------------------------------------------------------------------------
# Seed 000: Outlines' TGI model
# ----------------------------------------------------------------------------------------------


def test_seed_000_model_initialization(target: Target) -> None:
    # seed 000, "Model Initialization"
    import huggingface_hub
    import outlines

    # Create the inference client
    client = huggingface_hub.InferenceClient(target.url, api_key=target.api_key)
    async_client = huggingface_hub.AsyncInferenceClient(target.url, api_key=target.api_key)

    # Create a sync model
    sync_model = outlines.from_tgi(client)
    print(type(sync_model))  # <class 'outlines.models.tgi.TGI'>

    # Create an async model
    async_model = outlines.from_tgi(async_client)
    print(type(async_model))  # <class 'outlines.models.tgi.AsyncTGI'>

    assert type(sync_model) is outlines.models.tgi.TGI
    assert type(async_model) is outlines.models.tgi.AsyncTGI


def test_seed_000_text_generation(target: Target) -> None:
    # seed 000, "Text Generation"
    import huggingface_hub
    import outlines

    # Create the model
    client = huggingface_hub.InferenceClient(target.url, api_key=target.api_key)
    model = outlines.from_tgi(client)

    # Call it to generate text
    with pytest.raises(TypeError, match="unexpected keyword argument 'stop_sequences'"):  # noqa: PT012
        result = model("Write a short story about a cat.", stop_sequences=["."])
        print(result)  # 'In a quiet village where the cobblestones hummed softly beneath ...'

    # Today's huggingface_hub has no `stop_sequences` (its name is `stop`): the seed's call
    # fails in the client, before any request. Its reader's next try, with today's name:
    result = model("Write a short story about a cat.", stop=["."])
    assert_stopped_at_the_first_period(result)


def test_seed_000_text_generation_streaming(target: Target) -> None:
    # seed 000, "Text Generation" (streaming)
    import huggingface_hub
    import outlines

    # Create the model
    client = huggingface_hub.InferenceClient(target.url, api_key=target.api_key)
    model = outlines.from_tgi(client)

    # Stream text
    with pytest.raises(TypeError, match="unexpected keyword argument 'stop_sequences'"):  # noqa: PT012
        for chunk in model.stream("Write a short story about a cat.", stop_sequences=["."]):
            print(chunk)  # 'In ...'

    # As above: `stop_sequences` is `stop` in today's huggingface_hub.
    chunks = list(model.stream("Write a short story about a cat.", stop=["."]))
    assert all(isinstance(chunk, str) for chunk in chunks)
    assert_stopped_at_the_first_period("".join(chunks))


def assert_stopped_at_the_first_period(text: str) -> None:
    """The generated text alone (no prompt), ended by the stop sequence, which TGI keeps, or by
    the model before any: never past a period. TGI stops when the text ends with a stop
    sequence, so a token that carries more than the period (the tiny vocabulary has one, `."`)
    does not stop it."""
    assert isinstance(text, str)
    assert text
    assert not text.startswith("Write a short story")
    assert "." not in text.replace('."', "")[:-1], text


def test_seed_000_basic_async_generation(target: Target) -> None:
    # seed 000, "Asynchronous Calls" / "Basic Async Generation"
    import huggingface_hub
    import outlines

    results = []

    async def generate_text() -> None:
        # Create an async model
        async_client = huggingface_hub.AsyncInferenceClient(target.url, api_key=target.api_key)
        async_model = outlines.from_tgi(async_client)

        result = await async_model("Write a haiku about Python.", max_new_tokens=50)
        print(result)
        results.append(result)

    asyncio.run(generate_text())

    assert isinstance(results[0], str)
    assert results[0]
    assert not results[0].startswith("Write a haiku")


def test_seed_000_async_streaming(target: Target) -> None:
    # seed 000, "Asynchronous Calls" / "Async Streaming"
    import huggingface_hub
    import outlines

    chunks = []

    async def stream_text() -> None:
        async_client = huggingface_hub.AsyncInferenceClient(target.url, api_key=target.api_key)
        async_model = outlines.from_tgi(async_client)

        async for chunk in async_model.stream("Tell me a story about a robot.", max_new_tokens=100):
            print(chunk, end="")
            chunks.append(chunk)

    asyncio.run(stream_text())

    assert chunks
    assert all(isinstance(chunk, str) for chunk in chunks)


def test_seed_000_concurrent_async_requests(target: Target) -> None:
    # seed 000, "Asynchronous Calls" / "Concurrent Async Requests"
    import huggingface_hub
    import outlines

    answers: list[str] = []

    async def generate_multiple() -> None:
        async_client = huggingface_hub.AsyncInferenceClient(target.url, api_key=target.api_key)
        async_model = outlines.from_tgi(async_client)

        # Define multiple prompts
        prompts = [
            "Write a tagline for a coffee shop.",
            "Write a tagline for a bookstore.",
            "Write a tagline for a gym."
        ]  # fmt: skip

        tasks = [async_model(prompt, max_new_tokens=30) for prompt in prompts]
        results = await asyncio.gather(*tasks)

        for prompt, result in zip(prompts, results):  # noqa: B905
            print(f"{prompt}\n{result}\n")
        answers.extend(results)

    asyncio.run(generate_multiple())

    assert len(answers) == 3
    assert all(isinstance(answer, str) and answer for answer in answers)


def test_seed_000_simple_type(target: Target) -> None:
    # seed 000, "Structured Generation" / "Simple Type"
    import huggingface_hub
    import outlines

    output_type = int

    tgi_client = huggingface_hub.InferenceClient(target.url, api_key=target.api_key)
    model = outlines.from_tgi(tgi_client)

    result = model("How many countries are there in the world?", output_type)
    print(result)  # '200'

    assert re.fullmatch("[+-]?(0|[1-9][0-9]*)", result)


def test_seed_000_json_schema(target: Target) -> None:
    # seed 000, "Structured Generation" / "JSON Schema"
    from typing import List  # noqa: UP035 (as the seed writes it)

    import huggingface_hub
    import outlines
    from pydantic import BaseModel

    class Character(BaseModel):
        name: str
        age: int
        skills: List[str]  # noqa: UP006

    tgi_client = huggingface_hub.InferenceClient(target.url, api_key=target.api_key)
    model = outlines.from_tgi(tgi_client)

    result = model("Create a character.", output_type=Character, frequency_penalty=1.5)
    print(result)  # '{"name": "Evelyn", "age": 34, "skills": ["archery", "stealth", "alchemy"]}'
    try:
        print(Character.model_validate_json(result))  # name=Evelyn, age=34, skills=[...]
    except ValidationError as error:
        # No budget is given: the tiny model's words may run until the default one cuts the
        # document (as in the async example below), and then only its start can be judged.
        (problem,) = error.errors()
        assert problem["type"] == "json_invalid"
        assert_follows_schema(result, Character.model_json_schema())
    else:
        assert isinstance(Character.model_validate_json(result).age, int)


def test_seed_000_multiple_choice(target: Target) -> None:
    # seed 000, "Structured Generation" / "Multiple Choice"
    from typing import Literal

    import huggingface_hub
    import outlines

    output_type = Literal["Paris", "London", "Rome", "Berlin"]

    tgi_client = huggingface_hub.InferenceClient(target.url, api_key=target.api_key)
    model = outlines.from_tgi(tgi_client)

    result = model("What is the capital of France?", output_type, temperature=0)
    print(result)  # 'Paris'

    assert result in ("Paris", "London", "Rome", "Berlin")
    again = model("What is the capital of France?", output_type, temperature=0)
    assert again == result  # temperature 0 is greedy: the same answer every time


def test_seed_000_regex(target: Target) -> None:
    # seed 000, "Structured Generation" / "Regex"
    import huggingface_hub
    import outlines
    from outlines.types import Regex

    output_type = Regex(r"\d{3}-\d{2}-\d{4}")

    tgi_client = huggingface_hub.InferenceClient(target.url, api_key=target.api_key)
    model = outlines.from_tgi(tgi_client)

    result = model("Generate a fake social security number.", output_type, top_p=0.1)
    print(result)  # '782-32-3789'

    assert re.fullmatch(r"\d{3}-\d{2}-\d{4}", result)


def test_seed_000_async_structured_generation(target: Target) -> None:
    # seed 000, "Async Structured Generation"
    import huggingface_hub
    import outlines
    from pydantic import BaseModel

    class User(BaseModel):
        name: str
        email: str
        age: int

    users: list[User] = []

    async def generate_user() -> None:
        async_client = huggingface_hub.AsyncInferenceClient(target.url, api_key=target.api_key)
        async_model = outlines.from_tgi(async_client)

        result = await async_model("Generate a random user profile.", output_type=User)
        user = User.model_validate_json(result)
        print(f"Name: {user.name}, Email: {user.email}, Age: {user.age}")
        users.append(user)

    try:
        asyncio.run(generate_user())
    except ValidationError as error:
        # No budget is given, and greedy decoding repeats the age's digits until TGI's default
        # one (1024 tokens) cuts it: the seed's own validation then fails on a cut document.
        (problem,) = error.errors()
        assert problem["type"] == "json_invalid"
        assert_follows_schema(problem["input"], User.model_json_schema())
    else:
        assert isinstance(users[0].age, int)


# ----------------------------------------------------------------------------------------------
# Seed 001: TGI's guidance page
# ----------------------------------------------------------------------------------------------

ANIMALS_SCHEMA = {
    "properties": {
        "location": {"type": "string"},
        "activity": {"type": "string"},
        "animals_seen": {"type": "integer", "minimum": 1, "maximum": 5},
        "animals": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["location", "activity", "animals_seen", "animals"],
}
"""The schema of seed 001's grammar examples, to check their outputs against."""


def test_seed_001_the_grammar_parameter_with_curl(target: Target) -> None:
    # seed 001, "The Grammar Parameter" (curl)
    output = target.curl(
        f"{target.url}/generate",
        "-X", "POST",
        "-H", "Content-Type: application/json",
        "-d", """{
"inputs": "I saw a puppy a cat and a raccoon during my bike ride in the park",
"parameters": {
"repetition_penalty": 1.3,
"grammar": {
"type": "json",
"value": {
"properties": {
"location": {
"type": "string"
},
"activity": {
"type": "string"
},
"animals_seen": {
"type": "integer",
"minimum": 1,
"maximum": 5
},
"animals": {
"type": "array",
"items": {
"type": "string"
}
}
},
"required": ["location", "activity", "animals_seen", "animals"]
}
}
}
}""",
    )  # fmt: skip

    assert_follows_schema(json.loads(output)["generated_text"], ANIMALS_SCHEMA)


def test_seed_001_hugging_face_hub_python_library(target: Target) -> None:
    # seed 001, "Hugging Face Hub Python Library"
    from huggingface_hub import InferenceClient

    client = InferenceClient(target.url, api_key=target.api_key)
    schema = {
        "properties": {
            "location": {"title": "Location", "type": "string"},
            "activity": {"title": "Activity", "type": "string"},
            "animals_seen": {
                "maximum": 5,
                "minimum": 1,
                "title": "Animals Seen",
                "type": "integer",
            },
            "animals": {"items": {"type": "string"}, "title": "Animals", "type": "array"},
        },
        "required": ["location", "activity", "animals_seen", "animals"],
        "title": "Animals",
        "type": "object",
    }
    user_input = "I saw a puppy a cat and a raccoon during my bike ride in the park"
    resp = client.text_generation(
        f"convert to JSON: 'f{user_input}'. please use the following schema: {schema}",
        max_new_tokens=100,
        seed=42,
        grammar={"type": "json", "value": schema},
    )
    print(resp)
    # { "activity": "bike ride", "animals": ["puppy", "cat", "raccoon"], "animals_seen": 3, ...

    assert_follows_schema(resp, schema)


@pytest.mark.filterwarnings("ignore::pydantic.PydanticDeprecatedSince20")  # the seed's .schema()
def test_seed_001_constrain_with_pydantic(target: Target) -> None:
    # seed 001, "Constrain with Pydantic"
    from typing import List  # noqa: UP035 (as the seed writes it)

    from huggingface_hub import InferenceClient
    from pydantic import BaseModel, conint

    class Animals(BaseModel):
        location: str
        activity: str
        animals_seen: conint(ge=1, le=5)  # type: ignore[valid-type]  # Constrained integer type
        animals: List[str]  # noqa: UP006

    client = InferenceClient(target.url, api_key=target.api_key)

    user_input = "I saw a puppy a cat and a raccoon during my bike ride in the park"
    resp = client.text_generation(
        f"convert to JSON: 'f{user_input}'. please use the following schema: {Animals.schema()}",
        max_new_tokens=100,
        seed=42,
        grammar={"type": "json", "value": Animals.schema()},
    )
    print(resp)
    # { "activity": "bike ride", "animals": ["puppy", "cat", "raccoon"], "animals_seen": 3, ...

    assert_follows_schema(resp, Animals.model_json_schema())  # animals_seen in [1, 5] too


def test_seed_001_a_grammar_as_a_regular_expression(target: Target) -> None:
    # seed 001, "defining a grammar as regular expressions" (the seed's "\." in plain f-strings,
    # an invalid escape Python warns about, is written as a raw f-string: the same value)
    from huggingface_hub import InferenceClient

    client = InferenceClient(target.url, api_key=target.api_key)
    section_regex = "(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)"
    regexp = rf"HELLO\.{section_regex}\.WORLD\.{section_regex}"
    # This is a more realistic example of an ip address regex
    # regexp = f"{section_regex}\.{section_regex}\.{section_regex}\.{section_regex}"
    resp = client.text_generation(
        f"Whats Googles DNS? Please use the following regex: {regexp}",
        seed=42,
        grammar={
            "type": "regex",
            "value": regexp,
        },
    )
    print(resp)
    # HELLO.255.WORLD.255

    assert re.fullmatch(regexp, resp)


WEATHER_TOOL_PARAMETERS = {
    "type": "object",
    "properties": {
        "location": {"type": "string"},
        "format": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["location", "format"],
}


def test_seed_001_the_tools_parameter_with_curl(target: Target) -> None:
    # seed 001, "The Tools Parameter" (curl)
    output = target.curl(
        f"{target.url}/v1/chat/completions",
        "-X", "POST",
        "-H", "Content-Type: application/json",
        "-d", """{
"model": "tgi",
"messages": [
{
"role": "user",
"content": "What is the weather like in New York?"
}
],
"tools": [
{
"type": "function",
"function": {
"name": "get_current_weather",
"description": "Get the current weather",
"parameters": {
"type": "object",
"properties": {
"location": {
"type": "string",
"description": "The city and state, e.g. San Francisco, CA"
},
"format": {
"type": "string",
"enum": ["celsius", "fahrenheit"],
"description": "The temperature unit to use. Infer this from the users location."
}
},
"required": ["location", "format"]
}
}
}
],
"tool_choice": "get_current_weather"
}""",
    )  # fmt: skip

    call = json.loads(output)["choices"][0]["message"]["tool_calls"][0]
    assert call["type"] == "function"
    assert call["function"]["name"] == "get_current_weather"
    assert_follows_schema(call["function"]["arguments"], WEATHER_TOOL_PARAMETERS)


SEED_001_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_current_weather",
            "description": "Get the current weather",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {
                        "type": "string",
                        "description": "The city and state, e.g. San Francisco, CA",
                    },
                    "format": {
                        "type": "string",
                        "enum": ["celsius", "fahrenheit"],
                        "description": "The temperature unit to use. Infer this from the users location.",  # noqa: E501
                    },
                },
                "required": ["location", "format"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_n_day_weather_forecast",
            "description": "Get an N-day weather forecast",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {
                        "type": "string",
                        "description": "The city and state, e.g. San Francisco, CA",
                    },
                    "format": {
                        "type": "string",
                        "enum": ["celsius", "fahrenheit"],
                        "description": "The temperature unit to use. Infer this from the users location.",  # noqa: E501
                    },
                    "num_days": {
                        "type": "integer",
                        "description": "The number of days to forecast",
                    },
                },
                "required": ["location", "format", "num_days"],
            },
        },
    },
]
"""Seed 001's `tools` (its "Chat Completion with Tools"), which its OpenAI example reuses."""


def assert_a_call_of_one_of(
    tools: list[dict[str, Any]], name: str, arguments: str | dict[str, Any]
) -> None:
    """`name` is one of `tools`, and `arguments` (JSON text, or already parsed) fit its
    parameters, or start to where the token budget cut the call."""
    parameters = {tool["function"]["name"]: tool["function"]["parameters"] for tool in tools}
    assert name in parameters
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    assert_follows_schema(text, parameters[name])


def test_seed_001_chat_completion_with_tools(target: Target) -> None:
    # seed 001, "Chat Completion with Tools"
    from huggingface_hub import InferenceClient

    client = InferenceClient(target.url, api_key=target.api_key)
    tools = SEED_001_TOOLS  # the seed's list, above
    chat = client.chat_completion(
        messages=[
            {
                "role": "system",
                "content": "You're a helpful assistant! Answer the users question best you can.",
            },
            {
                "role": "user",
                "content": "What is the weather like in Brooklyn, New York?",
            },
        ],
        tools=tools,
        seed=42,
        max_tokens=100,
    )
    print(chat.choices[0].message.tool_calls)
    # [ChatCompletionOutputToolCall(function=ChatCompletionOutputFunctionDefinition(...

    assert_tool_call_or_text(chat.choices[0].message, tools)


def assert_tool_call_or_text(message: Any, tools: list[dict[str, Any]]) -> None:
    """Under `tool_choice` auto the model calls one of `tools` (arguments fitting it) or answers
    in text (TGI's `no_tool`): which one is the model's judgement, not asserted."""
    if message.tool_calls:
        call = message.tool_calls[0]
        assert_a_call_of_one_of(tools, call.function.name, call.function.arguments)
    else:
        assert isinstance(message.content, str)


def test_seed_001_openai_integration(target: Target) -> None:
    # seed 001, "OpenAI integration"
    from openai import OpenAI

    tools = SEED_001_TOOLS  # "NOTE: tools defined above and removed for brevity"
    # Initialize the client, pointing it to one of the available models
    client = OpenAI(
        base_url=f"{target.url}/v1",
        api_key=target.api_key or "_",
    )

    chat_completion = client.chat.completions.create(
        model="tgi",
        messages=[
            {
                "role": "system",
                "content": "Don't make assumptions about what values to plug into functions. Ask for clarification if a user request is ambiguous.",  # noqa: E501
            },
            {
                "role": "user",
                "content": "What's the weather like the next 3 days in San Francisco, CA?",
            },
        ],
        tools=tools,
        tool_choice="auto",  # tool selected by model
        max_tokens=500,
    )
    called = chat_completion.choices[0].message.tool_calls
    print(called)

    assert_tool_call_or_text(chat_completion.choices[0].message, tools)


TOOL_CHOICES: dict[str, Any] = {
    "auto": "auto",
    "none": "none",
    "required": "required",
    "a function name": "get_current_weather",
    "a function object": {"type": "function", "function": {"name": "get_current_weather"}},
}
"""Seed 001's "Tool Choice Configuration": its five example usages."""


@pytest.mark.parametrize("choice", TOOL_CHOICES, ids=list(TOOL_CHOICES))
def test_seed_001_tool_choice_configuration(target: Target, choice: str) -> None:
    # seed 001, "Tool Choice Configuration": tool_choice="auto" | "none" | "required" |
    # "get_current_weather" | {"type": "function", "function": {"name": "get_current_weather"}}
    from openai import OpenAI

    client = OpenAI(base_url=f"{target.url}/v1", api_key=target.api_key or "_")
    message = (
        client.chat.completions.create(
            model="tgi",
            messages=[{"role": "user", "content": "What is the weather like in New York?"}],
            tools=SEED_001_TOOLS,
            tool_choice=TOOL_CHOICES[choice],
            max_tokens=200,
            seed=42,
        )
        .choices[0]
        .message
    )
    if choice == "none":  # never a tool
        assert message.tool_calls is None
        assert isinstance(message.content, str)
    elif choice == "auto":  # the model decides
        assert_tool_call_or_text(message, SEED_001_TOOLS)
    else:  # a tool, that tool when named
        assert message.tool_calls
        name = message.tool_calls[0].function.name
        assert choice == "required" or name == "get_current_weather"
        assert_a_call_of_one_of(SEED_001_TOOLS, name, message.tool_calls[0].function.arguments)


# ----------------------------------------------------------------------------------------------
# Seed 004: a TGI overview
# ----------------------------------------------------------------------------------------------


def test_seed_004_rest_api_with_curl(target: Target) -> None:
    # seed 004, "使用 REST API" (curl, streamed)
    output = target.curl(
        f"{target.url}/v1/chat/completions",
        "-X", "POST",
        "-d", """{
  "model": "tgi",
  "messages": [
    {
      "role": "system",
      "content": "You are a helpful assistant."
    },
    {
      "role": "user",
      "content": "What is deep learning?"
    }
  ],
  "stream": true,
  "max_tokens": 20
}""",
        "-H", "Content-Type: application/json",
    )  # fmt: skip

    events = [line.removeprefix("data:").strip() for line in output.split("\n\n") if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert 1 <= len(chunks) <= 20
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] in ("length", "stop")


def test_seed_004_huggingface_hub_python_client(target: Target) -> None:
    # seed 004, "使用 `huggingface_hub` 的 Python 客户端"
    from huggingface_hub import InferenceClient

    client = InferenceClient(
        base_url=f"{target.url}/v1/",
        api_key=target.api_key,
    )

    output = client.chat.completions.create(
        model="tgi",
        messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Count to 10"},
        ],
        stream=True,
        max_tokens=1024,
    )

    contents = []
    for chunk in output:
        print(chunk.choices[0].delta.content)
        contents.append(chunk.choices[0].delta.content)

    assert contents
    assert all(isinstance(content, str) for content in contents)


def test_seed_004_openai_format_api(target: Target) -> None:
    # seed 004, "使用 OpenAI 格式的 API"
    from openai import OpenAI
    from openai.types.chat import ChatCompletionChunk

    # init the client but point it to TGI
    client = OpenAI(
        base_url=f"{target.url}/v1/",
        api_key=target.api_key or "-"
    )  # fmt: skip

    chat_completion = client.chat.completions.create(
        model="tgi",
        messages=[
            {"role": "system", "content": "You are a helpful assistant." },
            {"role": "user", "content": "What is deep learning?"}
        ],
        stream=True
    )  # fmt: skip

    # iterate and print stream
    messages = []
    for message in chat_completion:
        print(message)
        messages.append(message)

    assert all(isinstance(message, ChatCompletionChunk) for message in messages)
    assert messages[-1].choices[0].finish_reason in ("stop", "length")


def test_seed_004_safetensors_conversion(
    tgis_cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # seed 004, "为 TGI 部署准备模型" / 2 "模型格式": "your-model" is the built-in tiny model
    from tgi_server.model.tiny import ensure_tiny_model

    your_model = str(ensure_tiny_model(tgis_cache_dir))
    monkeypatch.chdir(tmp_path)

    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(your_model)
    state_dict = model.state_dict()
    save_file(state_dict, "model.safetensors")

    from safetensors.torch import load_file

    saved = load_file(tmp_path / "model.safetensors")
    assert saved.keys() == state_dict.keys()
    assert all(saved[name].equal(tensor) for name, tensor in state_dict.items())


def cuda_and_bitsandbytes() -> bool:
    import importlib.util

    import torch

    return bool(torch.cuda.is_available()) and importlib.util.find_spec("bitsandbytes") is not None


@pytest.mark.skipif(
    not cuda_and_bitsandbytes(), reason="bitsandbytes quantization needs a CUDA GPU"
)
def test_seed_004_quantization(tgis_cache_dir: Path) -> None:
    # seed 004, "为 TGI 部署准备模型" / "量化": "your-model" is the built-in tiny model
    from tgi_server.model.tiny import ensure_tiny_model

    your_model = str(ensure_tiny_model(tgis_cache_dir))

    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    quantization_config = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_compute_dtype="float16"
    )  # fmt: skip

    model = AutoModelForCausalLM.from_pretrained(
        your_model,
        quantization_config=quantization_config
    )  # fmt: skip

    assert model.is_loaded_in_4bit
