"""Request validation, as TGI 3.x's router does it: same rules, same order, same messages,
but for documented differences: `temperature` 0 is greedy decoding, not a 422; `watermark`
and `adapter_id`, which TGI honours, are refused (422) rather than ignored.

`validate_request` turns a parsed `GenerateRequest` into a `ValidatedRequest` (token ids, the
resolved sampling parameters and the new-token budget) or raises `ValidationError` with the
first rule that fails. The stream-only and `best_of` rules are separate functions because TGI
checks them before the others, and only on some routes. Everything here is pure: the tokenizer
comes in as a function.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from common.records import from_attributes
from protocol.tgi import GenerateParameters, GenerateRequest
from tgi_server.errors import ValidationError

__all__ = [
    "AUTO_CHUNK_TOKENS",
    "Limits",
    "SamplingParams",
    "ValidatedRequest",
    "check_best_of",
    "check_stream_parameters",
    "generation_budget",
    "greedy_at_zero_temperature",
    "validate_request",
]

AUTO_CHUNK_TOKENS = 1024
"""TGI 3.x schedules generation in chunks of at most this many new tokens."""

Encoder = Callable[[str], list[int]]
GrammarCompile = Callable[[Mapping[str, Any]], Any]
"""Compiles a request's `grammar` (raising ValidationError when it cannot)."""
SeedSource = Callable[[], int]


def random_seed() -> int:
    """A random u64, as TGI draws one for every request that does not give a seed."""
    return secrets.randbits(64)


@dataclass(frozen=True)
class Limits:
    """The per-request limits validation enforces (TGI's launcher flags of the same names)."""

    max_input_tokens: int = 1024
    max_total_tokens: int = 2048
    max_stop_sequences: int = 4
    max_best_of: int = 2
    max_top_n_tokens: int = 5


@dataclass(frozen=True)
class SamplingParams:
    """How the next token is chosen. None means "off" (TGI's neutral value)."""

    do_sample: bool = False
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    typical_p: float | None = None
    repetition_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int = 0

    @property
    def has_warpers(self) -> bool:
        """Whether any warper changes the distribution (TGI samples whenever one does)."""
        return (
            (self.temperature is not None and self.temperature != 1.0)
            or (self.top_k is not None and self.top_k != 0)
            or (self.top_p is not None and self.top_p < 1.0)
            or (self.typical_p is not None and self.typical_p < 1.0)
        )

    @property
    def samples(self) -> bool:
        """Sampling rather than greedy decoding, decided exactly as TGI's model server does."""
        return self.do_sample or self.has_warpers


@dataclass(frozen=True)
class ValidatedRequest:
    """A request that passed validation, ready for the engine."""

    inputs: str
    input_ids: tuple[int, ...]
    sampling: SamplingParams
    max_new_tokens: int
    stop_sequences: tuple[str, ...] = ()
    top_n_tokens: int = 0
    details: bool = False
    decoder_input_details: bool = False
    return_full_text: bool = False
    best_of: int = 1
    grammar: Any = None
    """The compiled grammar (`generation.grammar.CompiledGrammar`) the output must match, if any."""

    @property
    def input_length(self) -> int:
        return len(self.input_ids)


def check_best_of(best_of: int, limits: Limits) -> None:
    """TGI's `best_of` bound, checked before fan-out when a request asks for `best_of` > 1."""
    if limits.max_best_of == 1 and best_of != 1:
        raise ValidationError("`best_of` != 1 is not allowed for this endpoint")
    if best_of > limits.max_best_of:
        raise ValidationError(
            f"`best_of` must be > 0 and <= {limits.max_best_of}. Given: {best_of}"
        )


def check_stream_parameters(parameters: GenerateParameters) -> None:
    """What a stream cannot do, checked before anything else on the streaming routes."""
    if parameters.best_of is not None and parameters.best_of != 1:
        raise ValidationError("`best_of` != 1 is not supported when streaming tokens")
    if parameters.decoder_input_details:
        raise ValidationError(
            "`decoder_input_details` == true is not supported when streaming tokens"
        )


def validate_request(
    request: GenerateRequest,
    limits: Limits,
    encode: Encoder,
    *,
    seed_source: SeedSource = random_seed,
    compile_grammar: GrammarCompile | None = None,
) -> ValidatedRequest:
    """Apply TGI's rules in TGI's order; the first that fails raises `ValidationError`."""
    parameters = request.parameters
    _check_supported(parameters)
    sampling = _check_sampling(parameters, limits, seed_source)
    _check_inputs(request.inputs, parameters, limits)
    input_ids = _tokenize(request.inputs, parameters.truncate, encode)
    budget = _check_lengths(len(input_ids), parameters.max_new_tokens, limits)
    grammar = None
    if parameters.grammar is not None:
        if compile_grammar is None:
            raise ValidationError("grammar is not supported")
        grammar = compile_grammar(parameters.grammar)
    return ValidatedRequest(
        inputs=request.inputs,
        input_ids=input_ids,
        sampling=sampling,
        max_new_tokens=budget,
        stop_sequences=tuple(parameters.stop),
        top_n_tokens=parameters.top_n_tokens or 0,
        details=parameters.details,
        decoder_input_details=parameters.decoder_input_details,
        return_full_text=bool(parameters.return_full_text),
        best_of=max(parameters.best_of or 1, 1),
        grammar=grammar,
    )


def generation_budget(input_length: int, requested: int | None, limits: Limits) -> int:
    """The most new tokens TGI 3.x generates for a request (EOS and stop sequences aside).

    TGI generates in chunks of at most 1024 tokens. After a chunk that ends on `length` short
    of the requested total, it appends the text to the prompt and validates again; when that
    fails (the prompt is now too long, or the context is full) generation ends quietly.
    """
    generated = 0
    while True:
        context = input_length + generated
        remaining = None if requested is None else requested - generated
        if remaining == 0:
            return generated
        chunk = _first_chunk(context, remaining, limits)
        if chunk == 0 or (generated and not _fits(context, chunk, limits)):
            return generated
        generated += chunk


def _check_sampling(
    parameters: GenerateParameters, limits: Limits, seed_source: SeedSource
) -> SamplingParams:
    parameters = greedy_at_zero_temperature(parameters)
    best_of = 1 if parameters.best_of is None else parameters.best_of
    _check_best_of_sampling(parameters, best_of)
    _check_distribution_parameters(parameters)
    if parameters.max_new_tokens == 0:
        raise ValidationError("`max_new_tokens` must be strictly positive")
    if len(parameters.stop) > limits.max_stop_sequences:
        raise ValidationError(
            f"`stop` supports up to {limits.max_stop_sequences} stop sequences. "
            f"Given: {len(parameters.stop)}"
        )
    if parameters.seed is not None and best_of > 1:
        raise ValidationError("`seed` must not be set when `best_of` > 1")
    top_n_tokens = parameters.top_n_tokens or 0
    if top_n_tokens > limits.max_top_n_tokens:
        raise ValidationError(
            f"`top_n_tokens` must be >= 0 and <= {limits.max_top_n_tokens}. Given: {top_n_tokens}"
        )
    seed = seed_source() if parameters.seed is None else parameters.seed
    return from_attributes(SamplingParams, parameters, seed=seed)


def _check_supported(parameters: GenerateParameters) -> None:
    """What TGI would do and this backend cannot is refused, never ignored: a watermark (TGI's
    Kirchenbauer et al. logits processor) and a LoRA adapter (`adapter_id`; no adapter loads
    here)."""
    if parameters.watermark:
        raise ValidationError(
            "`watermark` is not supported by this backend: leave it false or unset"
        )
    if parameters.adapter_id is not None:
        raise ValidationError(
            f"`adapter_id` {parameters.adapter_id!r} is not supported: this backend loads no "
            "adapters; leave it unset to use the base model"
        )


def greedy_at_zero_temperature(parameters: GenerateParameters) -> GenerateParameters:
    """`temperature` 0 means greedy decoding, as OpenAI's API and vLLM read it (TGI refuses it
    with a 422): no sampling and no warper (`top_k`, `top_p`, `typical_p` could move the
    choice off the most likely token); the penalties still apply, as they do to greedy."""
    if parameters.temperature != 0.0:
        return parameters
    greedy = {"temperature": None, "do_sample": False, "top_k": None, "top_p": None}
    return parameters.model_copy(update={**greedy, "typical_p": None})


def _check_best_of_sampling(parameters: GenerateParameters, best_of: int) -> None:
    # The router's notion of sampling: any warper set at all, whatever its value.
    sampling = parameters.do_sample or any(
        value is not None
        for value in (
            parameters.temperature,
            parameters.top_k,
            parameters.top_p,
            parameters.typical_p,
        )
    )
    if best_of > 1 and not sampling:
        raise ValidationError("you must use sampling when `best_of` is > 1")


def _check_distribution_parameters(parameters: GenerateParameters) -> None:
    if parameters.temperature is not None and parameters.temperature < 0.0:
        raise ValidationError("`temperature` must be strictly positive, or 0 for greedy decoding")
    if parameters.repetition_penalty is not None and parameters.repetition_penalty <= 0.0:
        raise ValidationError("`repetition_penalty` must be strictly positive")
    frequency_penalty = parameters.frequency_penalty
    if frequency_penalty is not None and not -2.0 <= frequency_penalty <= 2.0:
        raise ValidationError("`frequency_penalty` must be >= -2.0 and <= 2.0")
    if parameters.top_p is not None and not 0.0 < parameters.top_p < 1.0:
        raise ValidationError("`top_p` must be > 0.0 and < 1.0")
    if parameters.typical_p is not None and not 0.0 < parameters.typical_p < 1.0:
        raise ValidationError("`typical_p` must be > 0.0 and < 1.0")
    if parameters.top_k is not None and parameters.top_k <= 0:
        raise ValidationError("`top_k` must be strictly positive")


def _check_inputs(inputs: str, parameters: GenerateParameters, limits: Limits) -> None:
    if not inputs:
        raise ValidationError("`inputs` cannot be empty")
    truncate = parameters.truncate
    if truncate is not None and not 0 < truncate <= limits.max_input_tokens:
        raise ValidationError(
            f"`truncate` must be strictly positive and less than {limits.max_input_tokens}. "
            f"Given: {truncate}"
        )


def _tokenize(inputs: str, truncate: int | None, encode: Encoder) -> tuple[int, ...]:
    try:
        ids = encode(inputs)
    except Exception as exc:  # any tokenizer failure is the client's 422
        raise ValidationError(f"tokenizer error {exc}") from exc
    if truncate is not None and len(ids) > truncate:
        ids = ids[len(ids) - truncate :]  # TGI keeps the end of the prompt
    return tuple(ids)


def _check_lengths(input_length: int, requested: int | None, limits: Limits) -> int:
    chunk = _first_chunk(input_length, requested, limits)
    if input_length + chunk > limits.max_total_tokens:
        raise ValidationError(
            f"`inputs` tokens + `max_new_tokens` must be <= {limits.max_total_tokens}. "
            f"Given: {input_length} `inputs` tokens and {chunk} `max_new_tokens`"
        )
    if input_length > limits.max_input_tokens:
        raise ValidationError(
            f"`inputs` must have less than {limits.max_input_tokens} tokens. Given: {input_length}"
        )
    return generation_budget(input_length, requested, limits)


def _first_chunk(context: int, requested: int | None, limits: Limits) -> int:
    if requested is None:
        return min(max(limits.max_total_tokens - context, 0), AUTO_CHUNK_TOKENS)
    return min(requested, AUTO_CHUNK_TOKENS)


def _fits(context: int, chunk: int, limits: Limits) -> bool:
    return context <= limits.max_input_tokens and context + chunk <= limits.max_total_tokens
