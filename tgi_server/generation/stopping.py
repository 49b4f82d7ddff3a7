"""When a sequence stops, checked after every token in TGI's order.

1. `length`: the sequence has its maximum number of new tokens;
2. `eos_token`: the token is one of the model's end-of-sequence tokens;
3. `stop_sequence`: the text generated so far ends with one of the stop strings.

Stop strings are matched on decoded text, so they need not align with token boundaries, and
the matched string stays in the output, as in TGI.
"""

from __future__ import annotations

from collections.abc import Iterable

from protocol.tgi import FinishReason

__all__ = ["StopSequenceMatcher", "StoppingCriteria"]


class StopSequenceMatcher:
    """Says whether the text fed so far ends with any of the stop strings."""

    def __init__(self, stop_sequences: Iterable[str]) -> None:
        self._stops = tuple(stop_sequences)
        self._window = max((len(stop) for stop in self._stops), default=0)
        self._tail = ""

    def feed(self, text: str) -> bool:
        """Append `text`; True when the whole text now ends with a stop string."""
        if not self._stops:
            return False
        self._tail = (self._tail + text)[-self._window :] if self._window else ""
        return any(self._tail.endswith(stop) for stop in self._stops)


class StoppingCriteria:
    """Counts a sequence's new tokens and decides when it finishes."""

    def __init__(
        self,
        max_new_tokens: int,
        eos_token_ids: Iterable[int],
        stop_sequences: Iterable[str] = (),
    ) -> None:
        self.max_new_tokens = max_new_tokens
        self._eos_token_ids = frozenset(eos_token_ids)
        self._matcher = StopSequenceMatcher(stop_sequences)
        self.generated_tokens = 0

    def check(self, token_id: int, text: str) -> FinishReason | None:
        """Record one new token and its text; the reason to stop now, or None to go on."""
        self.generated_tokens += 1
        matched = self._matcher.feed(text)
        if self.generated_tokens >= self.max_new_tokens:
            return "length"
        if token_id in self._eos_token_ids:
            return "eos_token"
        if matched:
            return "stop_sequence"
        return None
