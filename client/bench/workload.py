"""What each request asks for: prompt and output lengths, drawn from a distribution or read from
a dataset file. Pure: every draw takes the random generator it uses.

A length spec is one of `128` (fixed), `uniform:64:256`, `normal:128:32` (clamped to >= 1) or
`lognormal:128:0.5` (median 128, sigma 0.5). Prompts are synthetic words, about one token each
for TGI's tokenizers; output lengths are exact only when the server honours `max_new_tokens`
(the bench asks for `details` so token counts come from the server, never re-tokenised).
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from client.bench.errors import BenchInputError

__all__ = [
    "LengthDist",
    "RequestSpec",
    "Workload",
    "load_dataset",
    "parse_length",
    "synthetic_prompt",
]

MAX_LENGTH = 1_000_000
_WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "was",
    "for",
    "on",
    "that",
    "with",
    "as",
    "by",
    "at",
    "from",
    "his",
    "her",
    "an",
    "were",
    "are",
    "which",
    "this",
    "be",
    "or",
    "had",
    "not",
    "but",
    "what",
    "all",
    "when",
    "there",
    "can",
    "who",
    "been",
    "one",
    "time",
    "out",
    "so",
    "up",
    "if",
    "about",
    "into",
    "than",
    "them",
    "river",
    "mountain",
    "signal",
    "garden",
    "window",
    "quiet",
    "number",
    "yellow",
    "engine",
    "paper",
    "winter",
    "market",
    "silver",
]


@dataclass(frozen=True)
class LengthDist:
    kind: Literal["fixed", "uniform", "normal", "lognormal"]
    a: float
    b: float = 0.0

    def sample(self, rng: random.Random) -> int:
        if self.kind == "fixed":
            value = self.a
        elif self.kind == "uniform":
            value = rng.uniform(self.a, self.b)
        elif self.kind == "normal":
            value = rng.gauss(self.a, self.b)
        else:
            value = rng.lognormvariate(math.log(self.a), self.b)
        return max(1, min(MAX_LENGTH, round(value)))

    def describe(self) -> str:
        if self.kind == "fixed":
            return f"{self.a:g}"
        return f"{self.kind}:{self.a:g}:{self.b:g}"


def parse_length(text: str, what: str) -> LengthDist:
    """A LengthDist from its spec, or BenchInputError naming `what` and the accepted forms."""
    parts = text.strip().split(":")
    try:
        numbers = [float(part) for part in parts[1:]] if len(parts) > 1 else [float(parts[0])]
    except ValueError:
        raise _bad_length(text, what) from None
    kind = parts[0] if len(parts) > 1 else "fixed"
    if not all(math.isfinite(n) for n in numbers):
        raise _bad_length(text, what)
    dist = _build(kind, numbers)
    if dist is None:
        raise _bad_length(text, what)
    return dist


def _build(kind: str, n: list[float]) -> LengthDist | None:
    if kind == "fixed" and len(n) == 1 and 1 <= n[0] <= MAX_LENGTH and n[0] == int(n[0]):
        return LengthDist("fixed", n[0])
    if kind == "uniform" and len(n) == 2 and 1 <= n[0] <= n[1] <= MAX_LENGTH:
        return LengthDist("uniform", n[0], n[1])
    if kind == "normal" and len(n) == 2 and 1 <= n[0] <= MAX_LENGTH and n[1] >= 0:
        return LengthDist("normal", n[0], n[1])
    if kind == "lognormal" and len(n) == 2 and 1 <= n[0] <= MAX_LENGTH and 0 <= n[1] <= 5:
        return LengthDist("lognormal", n[0], n[1])
    return None


def _bad_length(text: str, what: str) -> BenchInputError:
    return BenchInputError(
        f"{what} {text!r} is not a length: use N (a whole number >= 1), uniform:MIN:MAX, "
        "normal:MEAN:STD or lognormal:MEDIAN:SIGMA"
    )


@dataclass(frozen=True)
class RequestSpec:
    """One request to send: its prompt, its prompt length in words, and its max_new_tokens."""

    prompt: str
    prompt_len: int
    max_new_tokens: int


@dataclass(frozen=True)
class Workload:
    """Synthetic lengths, or a dataset's entries drawn at random (their own lengths kept)."""

    prompt_len: LengthDist
    output_len: LengthDist
    dataset: tuple[RequestSpec, ...] = ()

    in_order: bool = False
    """Hand out the dataset's entries one after the other (a replayed trace, whose entries
    belong to its arrivals) instead of at random."""
    _taken: list[int] = field(default_factory=lambda: [0], compare=False, repr=False)

    def sample(self, rng: random.Random) -> RequestSpec:
        if self.dataset and self.in_order:
            index = self._taken[0] % len(self.dataset)
            self._taken[0] += 1
            return self.dataset[index]
        if self.dataset:
            return rng.choice(self.dataset)
        length = self.prompt_len.sample(rng)
        return RequestSpec(synthetic_prompt(length, rng), length, self.output_len.sample(rng))

    def shard(self, index: int, count: int) -> Workload:
        """This process's part when `count` processes share the load: an in-order dataset is
        dealt out as the arrivals are (every `count`-th from `index`); anything else is shared."""
        if not (self.in_order and self.dataset):
            return self
        return replace(self, dataset=self.dataset[index::count], _taken=[0])


def synthetic_prompt(words: int, rng: random.Random) -> str:
    """A prompt of `words` common English words (about one token each)."""
    return " ".join(rng.choice(_WORDS) for _ in range(words))


def load_dataset(path: Path, output_len: LengthDist, rng: random.Random) -> tuple[RequestSpec, ...]:
    """Entries of a JSONL file (`{"prompt": str, "max_new_tokens"?: int}` per line; `output_len`
    fills a missing max_new_tokens) or of a text file (one prompt per non-empty line)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchInputError(f"cannot read the dataset {path}: {exc}") from None
    as_json = path.suffix in (".jsonl", ".json")
    specs = [
        _dataset_entry(line, number, path, as_json, output_len, rng)
        for number, line in enumerate(lines, start=1)
        if line.strip()
    ]
    if not specs:
        raise BenchInputError(f"the dataset {path} has no prompts")
    return tuple(specs)


def _dataset_entry(
    line: str, number: int, path: Path, as_json: bool, output_len: LengthDist, rng: random.Random
) -> RequestSpec:
    if not as_json:
        return RequestSpec(line, len(line.split()), output_len.sample(rng))
    where = f"{path}:{number}"
    try:
        entry = json.loads(line)
    except ValueError:
        raise BenchInputError(f"{where} is not JSON") from None
    prompt = entry.get("prompt") if isinstance(entry, dict) else None
    if not isinstance(prompt, str) or not prompt:
        raise BenchInputError(f'{where} needs a non-empty string "prompt"')
    tokens = entry.get("max_new_tokens", output_len.sample(rng))
    if isinstance(tokens, bool) or not isinstance(tokens, int) or not 1 <= tokens <= MAX_LENGTH:
        raise BenchInputError(f'{where}: "max_new_tokens" must be a whole number >= 1')
    return RequestSpec(prompt, len(prompt.split()), tokens)
