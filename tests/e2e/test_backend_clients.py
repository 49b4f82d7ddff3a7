"""The real client packages against a live `tgi-serverless backend` process.

huggingface_hub's InferenceClient (text_generation with stream, details and grammar;
chat_completion streamed and with tools), the openai client (chat completions streamed and not;
completions), outlines' `from_tgi` (int, a pydantic model, Literal choices, a Regex) and the
`text-generation` client (installed with `--no-deps`: it pins an old
huggingface_hub) must not be able to tell the backend from TGI.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
from huggingface_hub import InferenceClient, TextGenerationInputGrammarType
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam
from pydantic import BaseModel

from tests.e2e.processes import ManagedProcess, get_json, wait_for
from tests.ports import free_port

pytestmark = pytest.mark.e2e

PROMPT = "The lighthouse keeper"
MESSAGES = [{"role": "user", "content": "Tell me about the lighthouse"}]


@pytest.fixture(scope="module")
def backend_url(tmp_path_factory: pytest.TempPathFactory, tgis_cache_dir: Path) -> Iterator[str]:
    logs = tmp_path_factory.mktemp("clients-logs")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"TGIS_CACHE_DIR": str(tgis_cache_dir), "HF_HUB_OFFLINE": "1"}
    with ManagedProcess("backend", ["backend", "--port", str(port)], env, logs) as backend:
        wait_for("the backend", lambda: get_json(f"{url}/info")[0] == 200, [backend])
        yield url


def test_inference_client_text_generation(backend_url: str) -> None:
    client = InferenceClient(base_url=backend_url)
    plain = client.text_generation(PROMPT, max_new_tokens=6, details=True)
    assert plain.details is not None
    assert plain.details.generated_tokens == 6
    assert len(plain.details.tokens) == 6
    pieces = list(client.text_generation(PROMPT, max_new_tokens=6, stream=True))
    assert "".join(pieces) == plain.generated_text  # the generated text alone, both ways
    events = list(client.text_generation(PROMPT, max_new_tokens=6, stream=True, details=True))
    assert events[-1].details is not None
    assert events[-1].details.finish_reason == "length"


def test_inference_client_grammar(backend_url: str) -> None:
    client = InferenceClient(base_url=backend_url)
    answer = client.text_generation(
        PROMPT,
        max_new_tokens=30,
        grammar=TextGenerationInputGrammarType(type="regex", value="[0-9]{2}-[a-c]{2}"),
    )
    assert re.fullmatch("[0-9]{2}-[a-c]{2}", answer)


def test_inference_client_chat_stream_and_tools(backend_url: str) -> None:
    client = InferenceClient(base_url=backend_url)
    whole = client.chat_completion(MESSAGES, max_tokens=5, temperature=0)
    assert whole.choices[0].finish_reason == "length"
    chunks = list(client.chat_completion(MESSAGES, max_tokens=5, temperature=0, stream=True))
    assert len(chunks) == 5
    tool = {
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
    options: dict[str, Any] = {"tools": [tool], "tool_choice": "get_weather"}
    called = client.chat_completion(MESSAGES, max_tokens=200, temperature=0, **options)
    short = client.chat_completion(
        MESSAGES, max_tokens=200, temperature=0, tool_prompt="Call it.", **options
    )
    assert short.usage.prompt_tokens < called.usage.prompt_tokens  # TGI's default is longer
    calls = called.choices[0].message.tool_calls
    assert calls is not None
    assert calls[0].function.name == "get_weather"
    arguments = calls[0].function.arguments
    parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
    assert parsed["city"] in ("Paris", "Oslo")


def test_openai_client_chat_and_completions(backend_url: str) -> None:
    client = OpenAI(base_url=f"{backend_url}/v1", api_key="unused")
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hello there"}]
    chat = client.chat.completions.create(
        model="tgi", messages=messages, max_tokens=5, temperature=0
    )
    text = chat.choices[0].message.content
    assert chat.usage is not None
    assert chat.usage.completion_tokens == 5
    stream = client.chat.completions.create(
        model="tgi",
        messages=messages,
        max_tokens=5,
        temperature=0,
        stream=True,
    )
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text is not None
    assert text.rstrip("\ufffd") == streamed
    completion = client.completions.create(model="tgi", prompt=PROMPT, max_tokens=4)
    assert completion.choices[0].finish_reason in ("length", "stop")
    assert completion.usage is not None
    with_usage = list(
        client.chat.completions.create(
            model="tgi",
            messages=messages,
            max_tokens=3,
            temperature=0,  # greedy, as above: sampling may end on EOS before the budget
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert with_usage[-1].choices == []
    assert with_usage[-1].usage is not None
    assert with_usage[-1].usage.completion_tokens == 3
    chunks = list(
        client.completions.create(
            model="tgi", prompt=[PROMPT, "The ferry"], max_tokens=3, temperature=0, stream=True
        )
    )
    assert sorted(chunk.choices[0].index for chunk in chunks) == [0, 0, 0, 1, 1, 1]


def test_inference_client_stream_never_splits_a_character(backend_url: str) -> None:
    client = InferenceClient(base_url=backend_url)
    crab = "🦀é"  # the tiny tokenizer spells these one byte token at a time
    grammar = TextGenerationInputGrammarType(type="regex", value=f"({crab}){{2}}")
    events = list(
        client.text_generation(
            PROMPT, max_new_tokens=30, grammar=grammar, stream=True, details=True
        )
    )
    texts = [event.token.text for event in events if not event.token.special]
    assert "".join(texts) == crab * 2
    assert set(texts) <= {"", "🦀", "é"}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # its pydantic v1 style
def test_text_generation_client(backend_url: str) -> None:
    text_generation = pytest.importorskip("text_generation")
    client = text_generation.Client(backend_url)
    response = client.generate(PROMPT, max_new_tokens=5, decoder_input_details=True)
    assert response.details.generated_tokens == 5
    assert len(response.details.prefill) > 1
    events = list(client.generate_stream(PROMPT, max_new_tokens=5))
    assert len(events) == 5
    assert events[-1].generated_text == response.generated_text


class Review(BaseModel):
    open: bool
    rating: Literal["good", "bad"]


def test_outlines_from_tgi_output_types(backend_url: str) -> None:
    outlines = pytest.importorskip("outlines")
    from outlines.types import Regex

    model = outlines.from_tgi(InferenceClient(base_url=backend_url))
    options: dict[str, Any] = {"max_new_tokens": 40}  # as users call it: no return_full_text
    number = model(PROMPT, int, **options)
    assert re.fullmatch("[+-]?(0|[1-9][0-9]*)", number)
    review = Review.model_validate_json(model(PROMPT, Review, **options))
    assert review.rating in ("good", "bad")
    assert model(PROMPT, Literal["north", "south"], **options) in ("north", "south")
    assert re.fullmatch("[0-9]{3}-[a-c]{2}", model(PROMPT, Regex("[0-9]{3}-[a-c]{2}"), **options))
