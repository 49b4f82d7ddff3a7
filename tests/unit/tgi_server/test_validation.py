"""Validation: TGI's rules, messages and order, and the 3.x new-token budget."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.tgi import GenerateParameters, GenerateRequest
from tgi_server.errors import ValidationError
from tgi_server.validation import (
    Limits,
    SamplingParams,
    ValidatedRequest,
    check_best_of,
    check_stream_parameters,
    generation_budget,
    validate_request,
)

LIMITS = Limits()


def one_token_per_character(text: str) -> list[int]:
    return list(range(len(text)))


def validate(body: dict[str, Any], limits: Limits = LIMITS) -> ValidatedRequest:
    request = GenerateRequest.model_validate(body)
    return validate_request(request, limits, one_token_per_character, seed_source=lambda: 42)


def message_of(body: dict[str, Any], limits: Limits = LIMITS) -> str:
    with pytest.raises(ValidationError) as caught:
        validate(body, limits)
    assert caught.value.status == 422
    assert caught.value.error_type == "validation"
    prefix = "Input validation error: "
    assert caught.value.message.startswith(prefix)
    return caught.value.message.removeprefix(prefix)


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        ({"best_of": 2}, "you must use sampling when `best_of` is > 1"),
        (
            {"temperature": -1.5},
            "`temperature` must be strictly positive, or 0 for greedy decoding",
        ),
        ({"temperature": 0.0, "best_of": 2}, "you must use sampling when `best_of` is > 1"),
        ({"repetition_penalty": 0.0}, "`repetition_penalty` must be strictly positive"),
        ({"frequency_penalty": 2.5}, "`frequency_penalty` must be >= -2.0 and <= 2.0"),
        ({"frequency_penalty": -2.01}, "`frequency_penalty` must be >= -2.0 and <= 2.0"),
        ({"top_p": 1.0}, "`top_p` must be > 0.0 and < 1.0"),
        ({"top_p": 0.0}, "`top_p` must be > 0.0 and < 1.0"),
        ({"typical_p": 1.0}, "`typical_p` must be > 0.0 and < 1.0"),
        ({"top_k": 0}, "`top_k` must be strictly positive"),
        ({"top_k": -3}, "`top_k` must be strictly positive"),
        ({"max_new_tokens": 0}, "`max_new_tokens` must be strictly positive"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "`stop` supports up to 4 stop sequences. Given: 5"),
        (
            {"best_of": 2, "do_sample": True, "seed": 1},
            "`seed` must not be set when `best_of` > 1",
        ),
        ({"top_n_tokens": 6}, "`top_n_tokens` must be >= 0 and <= 5. Given: 6"),
        (
            {"truncate": 0},
            "`truncate` must be strictly positive and less than 1024. Given: 0",
        ),
        (
            {"truncate": 1025},
            "`truncate` must be strictly positive and less than 1024. Given: 1025",
        ),
        ({"grammar": {"type": "regex", "value": "a+"}}, "grammar is not supported"),
    ],
)
def test_each_rule_has_tgis_message(parameters: dict[str, Any], expected: str) -> None:
    assert message_of({"inputs": "hello", "parameters": parameters}) == expected


def test_empty_inputs_are_rejected() -> None:
    assert message_of({"inputs": ""}) == "`inputs` cannot be empty"


def test_prompt_plus_new_tokens_over_the_total_names_both() -> None:
    body = {"inputs": "x" * 2000, "parameters": {"max_new_tokens": 100}}
    assert message_of(body) == (
        "`inputs` tokens + `max_new_tokens` must be <= 2048. "
        "Given: 2000 `inputs` tokens and 100 `max_new_tokens`"
    )


def test_new_tokens_count_in_chunks_of_1024() -> None:
    body = {"inputs": "x" * 1000, "parameters": {"max_new_tokens": 5000}}
    # 1000 + min(5000, 1024) fits in 2048, so only the chunk is checked and it passes.
    assert validate(body).max_new_tokens == 1024


def test_a_long_prompt_without_max_new_tokens_gets_the_input_length_message() -> None:
    # max_new_tokens absent: min(2048 - 1500, 1024) = 548 new tokens fit, the prompt does not.
    assert message_of({"inputs": "x" * 1500}) == (
        "`inputs` must have less than 1024 tokens. Given: 1500"
    )


def test_a_prompt_over_the_total_without_max_new_tokens_reports_zero_new_tokens() -> None:
    assert message_of({"inputs": "x" * 3000}) == (
        "`inputs` tokens + `max_new_tokens` must be <= 2048. "
        "Given: 3000 `inputs` tokens and 0 `max_new_tokens`"
    )


def test_truncation_keeps_the_end_of_the_prompt_before_the_length_checks() -> None:
    validated = validate({"inputs": "x" * 3000, "parameters": {"truncate": 10}})
    assert validated.input_ids == tuple(range(2990, 3000))
    assert validated.input_length == 10


def test_tokenizer_failures_are_validation_errors() -> None:
    def broken(text: str) -> list[int]:
        raise RuntimeError("boom")

    request = GenerateRequest(inputs="hi")
    with pytest.raises(ValidationError, match="tokenizer error boom"):
        validate_request(request, LIMITS, broken)


# Each entry breaks one rule; listed in the order TGI checks them. Applying the patches of
# rule i and of every later rule must report rule i: the first failure wins.
ORDERED_RULES: list[tuple[dict[str, Any], str]] = [
    (
        {"parameters": {"temperature": -1.0}},
        "`temperature` must be strictly positive, or 0 for greedy decoding",
    ),
    (
        {"parameters": {"repetition_penalty": -1.0}},
        "`repetition_penalty` must be strictly positive",
    ),
    (
        {"parameters": {"frequency_penalty": 3.0}},
        "`frequency_penalty` must be >= -2.0 and <= 2.0",
    ),
    ({"parameters": {"top_p": 1.5}}, "`top_p` must be > 0.0 and < 1.0"),
    ({"parameters": {"typical_p": 0.0}}, "`typical_p` must be > 0.0 and < 1.0"),
    ({"parameters": {"top_k": 0}}, "`top_k` must be strictly positive"),
    ({"parameters": {"max_new_tokens": 0}}, "`max_new_tokens` must be strictly positive"),
    ({"parameters": {"stop": ["."] * 9}}, "`stop` supports up to 4 stop sequences. Given: 9"),
    (
        {"parameters": {"seed": 7, "best_of": 2, "do_sample": True}},
        "`seed` must not be set when `best_of` > 1",
    ),
    ({"parameters": {"top_n_tokens": 99}}, "`top_n_tokens` must be >= 0 and <= 5. Given: 99"),
    ({"inputs": ""}, "`inputs` cannot be empty"),
    (
        {"parameters": {"truncate": 5000}},
        "`truncate` must be strictly positive and less than 1024. Given: 5000",
    ),
    (
        {"inputs": "x" * 4000},
        "`inputs` tokens + `max_new_tokens` must be <= 2048. "
        "Given: 4000 `inputs` tokens and 0 `max_new_tokens`",
    ),
    ({"parameters": {"grammar": {"type": "json", "value": {}}}}, "grammar is not supported"),
]


@pytest.mark.parametrize("first", range(len(ORDERED_RULES)))
def test_the_first_broken_rule_in_tgis_order_is_reported(first: int) -> None:
    body: dict[str, Any] = {"inputs": "hello", "parameters": {}}
    for patch, _ in reversed(ORDERED_RULES[first:]):  # earlier rules' patches win
        body["inputs"] = patch.get("inputs", body["inputs"])
        body["parameters"].update(patch.get("parameters", {}))
    assert message_of(body) == ORDERED_RULES[first][1]


def test_parameters_omitted_means_sampling_with_a_random_seed() -> None:
    validated = validate({"inputs": "hello"})
    assert validated.sampling.samples
    assert validated.sampling.seed == 42
    assert validated.max_new_tokens == 1024
    assert not validated.return_full_text
    assert not validated.details


def test_validated_request_keeps_the_output_options() -> None:
    body = {
        "inputs": "hello",
        "parameters": {
            "max_new_tokens": 7,
            "stop": ["!"],
            "top_n_tokens": 2,
            "details": True,
            "decoder_input_details": True,
            "return_full_text": True,
            "seed": 9,
        },
    }
    validated = validate(body)
    assert validated.max_new_tokens == 7
    assert validated.stop_sequences == ("!",)
    assert validated.top_n_tokens == 2
    assert validated.details
    assert validated.decoder_input_details
    assert validated.return_full_text
    assert validated.sampling.seed == 9
    assert not validated.sampling.samples


@pytest.mark.parametrize(
    ("params", "samples"),
    [
        (SamplingParams(), False),
        (SamplingParams(do_sample=True), True),
        (SamplingParams(temperature=1.0), False),
        (SamplingParams(temperature=0.5), True),
        (SamplingParams(top_k=10), True),
        (SamplingParams(top_p=0.9), True),
        (SamplingParams(typical_p=0.9), True),
        (SamplingParams(repetition_penalty=1.3), False),
        (SamplingParams(frequency_penalty=0.5), False),
    ],
)
def test_sampling_is_decided_as_tgis_model_server_does(
    params: SamplingParams, samples: bool
) -> None:
    assert params.samples is samples


def test_best_of_only_needs_a_sampling_parameter_to_be_set() -> None:
    # The router counts temperature=1.0 as sampling even though the server will be greedy.
    validated = validate({"inputs": "hi", "parameters": {"best_of": 2, "temperature": 1.0}})
    assert validated.best_of == 2
    assert not validated.sampling.samples


def test_best_of_bounds() -> None:
    with pytest.raises(ValidationError, match=r"`best_of` must be > 0 and <= 2. Given: 3"):
        check_best_of(3, LIMITS)
    with pytest.raises(ValidationError, match="`best_of` != 1 is not allowed for this endpoint"):
        check_best_of(2, Limits(max_best_of=1))
    check_best_of(2, LIMITS)


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        ({"best_of": 2}, "`best_of` != 1 is not supported when streaming tokens"),
        ({"best_of": 0}, "`best_of` != 1 is not supported when streaming tokens"),
        (
            {"decoder_input_details": True},
            "`decoder_input_details` == true is not supported when streaming tokens",
        ),
        (
            {"decoder_input_details": True, "best_of": 2},
            "`best_of` != 1 is not supported when streaming tokens",
        ),
    ],
)
def test_stream_only_rules(parameters: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValidationError) as caught:
        check_stream_parameters(GenerateParameters.model_validate(parameters))
    assert caught.value.detail == expected


def test_stream_rules_accept_ordinary_parameters() -> None:
    check_stream_parameters(GenerateParameters(best_of=1, details=True))


@pytest.mark.parametrize(
    ("input_length", "requested", "limits", "budget"),
    [
        (5, 20, LIMITS, 20),
        (5, None, LIMITS, 1024),  # one chunk; the longer prompt then fails re-validation
        (5, 1500, LIMITS, 1024),
        (2040, None, LIMITS, 8),
        (5, None, Limits(max_input_tokens=4000, max_total_tokens=5000), 4096),
        (5, 3000, Limits(max_input_tokens=4000, max_total_tokens=5000), 3000),
    ],
)
def test_generation_budget_follows_tgis_chunking(
    input_length: int, requested: int | None, limits: Limits, budget: int
) -> None:
    assert generation_budget(input_length, requested, limits) == budget


@given(
    input_length=st.integers(1, 3000),
    requested=st.none() | st.integers(1, 5000),
    max_input=st.integers(1, 3000),
    extra=st.integers(1, 3000),
)
def test_an_accepted_request_never_outgrows_the_context(
    input_length: int, requested: int | None, max_input: int, extra: int
) -> None:
    limits = Limits(max_input_tokens=max_input, max_total_tokens=max_input + extra)
    body: dict[str, Any] = {"inputs": "x" * input_length, "parameters": {}}
    if requested is not None:
        body["parameters"]["max_new_tokens"] = requested
    try:
        validated = validate(body, limits)
    except ValidationError:
        return
    assert validated.max_new_tokens >= 1
    assert input_length + validated.max_new_tokens <= limits.max_total_tokens
    if requested is not None:
        assert validated.max_new_tokens <= requested


@pytest.mark.parametrize(
    "asked",
    [
        {"temperature": 0.0},
        {"temperature": 0},
        {"temperature": -0.0},
        {"temperature": 0.0, "do_sample": True, "top_k": 5, "top_p": 0.5, "typical_p": 0.5},
    ],
)
def test_a_temperature_of_zero_is_greedy_decoding(asked: dict[str, Any]) -> None:
    # As OpenAI's API and vLLM read it (TGI answers 422): seed 000's multiple-choice example
    # sends it. No sampling and no warper; the penalties still apply.
    sampling = validate({"inputs": "abc", "parameters": {**asked, "repetition_penalty": 1.2}})
    assert sampling.sampling.do_sample is False
    assert not sampling.sampling.has_warpers
    assert sampling.sampling.repetition_penalty == 1.2


@pytest.mark.parametrize(
    ("asked", "named"),
    [({"watermark": True}, "`watermark`"), ({"adapter_id": "my-lora"}, "`adapter_id` 'my-lora'")],
)
def test_what_this_backend_cannot_do_is_refused_not_ignored(
    asked: dict[str, Any], named: str
) -> None:
    # TGI honours both; silently generating without them would give the client what it did
    # not ask for.
    assert message_of({"inputs": "abc", "parameters": asked}).startswith(named)


def test_their_neutral_values_are_fine() -> None:
    validated = validate({"inputs": "abc", "parameters": {"watermark": False, "adapter_id": None}})
    assert validated.max_new_tokens > 0
