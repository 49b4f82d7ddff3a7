"""TGI's request and response bodies (TGI 3.x), shared by the backend, the PyWorker and clients.

Field names, types, defaults and nullability follow TGI's router: unknown fields are ignored,
integers must be JSON integers, booleans and lists may be omitted but not null.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, StrictBool, StrictInt

__all__ = [
    "Details",
    "FinishReason",
    "GenerateParameters",
    "GenerateRequest",
    "GenerateResponse",
    "Info",
    "PrefillToken",
    "StreamDetails",
    "StreamResponse",
    "Token",
]

FinishReason = Literal["length", "eos_token", "stop_sequence"]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class GenerateParameters(_Wire):
    """`parameters` of a generate request. None means "TGI's default" for every optional field."""

    best_of: NonNegativeInt | None = None
    decoder_input_details: StrictBool = False
    details: StrictBool = False
    do_sample: StrictBool = False
    frequency_penalty: float | None = None
    grammar: dict[str, Any] | None = None
    max_new_tokens: NonNegativeInt | None = None
    repetition_penalty: float | None = None
    return_full_text: StrictBool | None = None
    seed: NonNegativeInt | None = None
    stop: list[str] = Field(default_factory=list)
    temperature: float | None = None
    top_k: StrictInt | None = None
    top_n_tokens: NonNegativeInt | None = None
    top_p: float | None = None
    truncate: NonNegativeInt | None = None
    typical_p: float | None = None
    watermark: StrictBool = False
    adapter_id: str | None = None


def _parameters_when_omitted() -> GenerateParameters:
    # TGI samples by default when the whole `parameters` object is absent.
    return GenerateParameters(do_sample=True)


class GenerateRequest(_Wire):
    """Body of `POST /generate`, `/generate_stream` and `/tokenize`."""

    inputs: str
    parameters: GenerateParameters = Field(default_factory=_parameters_when_omitted)


class Token(_Wire):
    id: int
    text: str
    logprob: float | None
    special: bool


class PrefillToken(_Wire):
    id: int
    text: str
    logprob: float | None


class Details(_Wire):
    """`details` of a non-streamed response."""

    finish_reason: FinishReason
    generated_tokens: int
    seed: int | None
    prefill: list[PrefillToken] = Field(default_factory=list)
    tokens: list[Token] = Field(default_factory=list)
    best_of_sequences: list[dict[str, Any]] | None = None
    top_tokens: list[list[Token]] | None = None


class GenerateResponse(_Wire):
    """Body of a `POST /generate` 200; `details` is absent unless asked for."""

    generated_text: str
    details: Details | None = None


class StreamDetails(_Wire):
    finish_reason: FinishReason
    generated_tokens: int
    seed: int | None
    input_length: int | None = None


class StreamResponse(_Wire):
    """One SSE event of `/generate_stream`; the last one carries `generated_text`."""

    index: int
    token: Token
    top_tokens: list[Token] | None = None
    generated_text: str | None = None
    details: StreamDetails | None = None


class Info(_Wire):
    """Body of `GET /info`."""

    model_id: str
    model_sha: str | None = None
    model_pipeline_tag: str | None = None
    max_concurrent_requests: int
    max_best_of: int
    max_stop_sequences: int
    max_input_tokens: int
    max_total_tokens: int
    validation_workers: int
    max_client_batch_size: int
    router: str
    version: str
    sha: str | None = None
    docker_label: str | None = None
