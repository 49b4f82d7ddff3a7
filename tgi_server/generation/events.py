"""What the engine tells a waiting request: one event per generated token, or a failure.

These are plain values; the HTTP layer turns them into TGI's JSON (`http.wire`) or OpenAI's
(`openai.wire`).
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.tgi import FinishReason
from tgi_server.errors import BackendError

__all__ = [
    "Completion",
    "EngineEvent",
    "FailureEvent",
    "GeneratedToken",
    "PrefillToken",
    "TokenEvent",
]


@dataclass(frozen=True)
class GeneratedToken:
    id: int
    text: str
    logprob: float
    special: bool


@dataclass(frozen=True)
class PrefillToken:
    id: int
    text: str
    logprob: float | None
    """None for the first prompt token, which has nothing to be predicted from."""


@dataclass(frozen=True)
class Completion:
    """How a sequence ended; carried by its last token's event."""

    generated_text: str
    finish_reason: FinishReason
    generated_tokens: int
    seed: int | None
    input_length: int
    prefill: tuple[PrefillToken, ...] = ()
    queued_at: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0
    """`time.monotonic()` when the request was queued, got the model, and finished."""
    max_new_tokens: int = 0
    """The request's new-token budget (after validation)."""


@dataclass(frozen=True)
class TokenEvent:
    index: int
    """1-based position of the token among the generated ones."""
    token: GeneratedToken
    top_tokens: tuple[GeneratedToken, ...] = ()
    completion: Completion | None = None


@dataclass(frozen=True)
class FailureEvent:
    error: BackendError


EngineEvent = TokenEvent | FailureEvent
