"""Grammar engines compared: outlines-core (the anchor), llguidance and xgrammar.

For each tokenizer (the built-in tiny model's 1k vocabulary, and a Llama-3-style byte-level BPE
of 128,000 merged tokens and 256 special ones, 128,256 in all, trained here on the Python source
of the standard library and the installed packages: no download) and each grammar (seed 001's
JSON Schema with its bounds, a tool-call schema with `anyOf` and `$ref`, and seed 001's regex),
it measures:

- setup: building the engine's view of the vocabulary (once per tokenizer in the backend);
- compile: one grammar, from nothing (no cache), the median of `--repeats`;
- mask: one generation step, computing the set of allowed tokens and advancing past the token
  a valid document holds there, averaged over that document's tokens and `--repeats` walks.

Figures are printed as they are and as ratios to outlines-core measured in the same run (a ratio
below 1 is faster than the anchor). Everything runs on one thread of the CPU, as the backend's
validation threads do.

    python benchmarks/grammar_engines.py [--repeats 3] [--vocab 128000] [--cache DIR]

The 128k tokenizer takes a minute or two to train the first time; `--cache` keeps it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, Protocol

LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
"""Llama 3's pre-tokenizer split: words, up to three digits, punctuation runs, whitespace."""
SPECIAL_TOKENS = 256
"""Llama 3 reserves 256 special tokens after its 128,000 merges' vocabulary."""
CORPUS_BYTES = 80_000_000

SECTION = "(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)"
ANIMALS = {
    "properties": {
        "location": {"title": "Location", "type": "string"},
        "activity": {"title": "Activity", "type": "string"},
        "animals_seen": {"maximum": 5, "minimum": 1, "title": "Animals Seen", "type": "integer"},
        "animals": {"items": {"type": "string"}, "title": "Animals", "type": "array"},
    },
    "required": ["location", "activity", "animals_seen", "animals"],
    "title": "Animals",
    "type": "object",
    "additionalProperties": False,
}
TOOLS = {
    "type": "object",
    "$defs": {
        "Unit": {"enum": ["celsius", "fahrenheit"]},
        "Day": {"type": "integer", "minimum": 1, "maximum": 14},
    },
    "properties": {
        "function": {
            "anyOf": [
                {
                    "type": "object",
                    "properties": {
                        "_name": {"const": "get_weather"},
                        "location": {"type": "string", "maxLength": 40},
                        "unit": {"$ref": "#/$defs/Unit"},
                    },
                    "required": ["_name", "location", "unit"],
                    "additionalProperties": False,
                },
                {
                    "type": "object",
                    "properties": {
                        "_name": {"const": "get_forecast"},
                        "location": {"type": "string", "maxLength": 40},
                        "days": {"$ref": "#/$defs/Day"},
                    },
                    "required": ["_name", "location", "days"],
                    "additionalProperties": False,
                },
            ]
        }
    },
    "required": ["function"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class Grammar:
    name: str
    kind: str  # "json" or "regex"
    value: Any
    document: str
    """A valid output, compact, whose tokens the mask walk follows."""


GRAMMARS = (
    Grammar(
        "seed 001 schema",
        "json",
        ANIMALS,
        '{"location":"the park by the lake","activity":"bike ride","animals_seen":3,'
        '"animals":["puppy","cat","raccoon"]}',
    ),
    Grammar(
        "tool call",
        "json",
        TOOLS,
        '{"function":{"_name":"get_forecast","location":"Paris, France","days":7}}',
    ),
    Grammar(
        "seed 001 regex", "regex", f"HELLO\\.{SECTION}\\.WORLD\\.{SECTION}", "HELLO.255.WORLD.25"
    ),
)


class Walk(Protocol):
    def step(self, token_id: int) -> None:
        """Compute the allowed tokens, then advance past `token_id` (which must be allowed)."""


class Engine(Protocol):
    name: str

    def compile(self, grammar: Grammar) -> Any: ...

    def walk(self, compiled: Any) -> Walk: ...


class OutlinesCore:
    """Today's engine: a regex from the schema, an index over the whole vocabulary."""

    name = "outlines-core"

    def __init__(self, tokenizer: Any) -> None:
        from outlines_core import Vocabulary  # type: ignore[import-untyped]

        eos = int(tokenizer.eos_token_id)
        special = {int(i) for i in tokenizer.all_special_ids}
        self._vocabulary = Vocabulary(eos, _token_bytes(tokenizer, exclude=special | {eos}))

    def compile(self, grammar: Grammar) -> Any:
        from outlines_core import Index
        from outlines_core.json_schema import (  # type: ignore[import-untyped]
            build_regex_from_schema,
        )

        regex = grammar.value
        if grammar.kind == "json":
            regex = build_regex_from_schema(json.dumps(grammar.value), whitespace_pattern="")
        return Index(regex, self._vocabulary)

    def walk(self, compiled: Any) -> Walk:
        from outlines_core import Guide

        guide = Guide(compiled)

        class _Walk:
            def step(self, token_id: int) -> None:
                allowed = guide.get_tokens()
                assert token_id in allowed, token_id
                guide.advance(token_id)

        return _Walk()


class LLGuidance:
    """Lazy: a lexer automaton and an Earley parser; masks are computed token trie walks."""

    name = "llguidance"

    def __init__(self, tokenizer: Any) -> None:
        import llguidance.hf

        self._tokenizer = llguidance.hf.from_tokenizer(tokenizer)

    def compile(self, grammar: Grammar) -> Any:
        from llguidance import LLMatcher

        if grammar.kind == "json":
            text = LLMatcher.grammar_from_json_schema(
                grammar.value, defaults={"whitespace_flexible": False}
            )
        else:
            text = LLMatcher.grammar_from_regex(grammar.value)
        matcher = LLMatcher(self._tokenizer, text, log_level=0)
        assert not matcher.is_error(), matcher.get_error()
        return matcher

    def walk(self, compiled: Any) -> Walk:
        import torch

        matcher = compiled.deep_copy()
        mask = torch.zeros((self._tokenizer.vocab_size + 31) // 32, dtype=torch.int32)

        class _Walk:
            def step(self, token_id: int) -> None:
                matcher.unsafe_compute_mask_ptr(mask.data_ptr(), mask.numel() * 4)
                assert matcher.consume_token(token_id), matcher.get_error()

        return _Walk()


class XGrammar:
    """Eager: a pushdown automaton with each state's context-independent tokens precomputed."""

    name = "xgrammar"

    def __init__(self, tokenizer: Any) -> None:
        import xgrammar

        self._info = xgrammar.TokenizerInfo.from_huggingface(tokenizer, vocab_size=len(tokenizer))

    def compile(self, grammar: Grammar) -> Any:
        import xgrammar

        compiler = xgrammar.GrammarCompiler(self._info, max_threads=1, cache_enabled=False)
        if grammar.kind == "json":
            schema = json.dumps(grammar.value)
            return compiler.compile_json_schema(schema, any_whitespace=False, separators=(",", ":"))
        return compiler.compile_regex(grammar.value)

    def walk(self, compiled: Any) -> Walk:
        import xgrammar

        matcher = xgrammar.GrammarMatcher(compiled)
        mask = xgrammar.allocate_token_bitmask(1, self._info.vocab_size)

        class _Walk:
            def step(self, token_id: int) -> None:
                matcher.fill_next_token_bitmask(mask)
                assert matcher.accept_token(token_id), token_id

        return _Walk()


ENGINES: tuple[Callable[[Any], Engine], ...] = (OutlinesCore, LLGuidance, XGrammar)


@dataclass
class Figures:
    setup_s: float
    compile_s: dict[str, float]
    mask_s: dict[str, float]
    """Per grammar: seconds per token (mask and advance)."""


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def measure(engine_type: Callable[[Any], Engine], tokenizer: Any, repeats: int) -> Figures | str:
    """The engine's figures on `tokenizer`, or why it could not run."""
    try:
        setup_s, engine = timed(lambda: engine_type(tokenizer))
    except ImportError as exc:
        return f"not installed ({exc.name})"
    figures = Figures(setup_s, {}, {})
    for grammar in GRAMMARS:
        compiles = [timed(partial(engine.compile, grammar)) for _ in range(repeats)]
        figures.compile_s[grammar.name] = statistics.median(t for t, _ in compiles)
        ids = tokenizer.encode(grammar.document, add_special_tokens=False)
        walks = []
        for _ in range(repeats):
            walk = engine.walk(compiles[0][1])
            seconds, _ = timed(partial(walk_all, walk, ids))
            walks.append(seconds / len(ids))
        figures.mask_s[grammar.name] = statistics.median(walks)
    return figures


def walk_all(walk: Walk, ids: list[int]) -> None:
    for token_id in ids:
        walk.step(token_id)


def llama3_style_tokenizer(vocab: int, cache: Path) -> Any:
    """A byte-level BPE of `vocab` merged tokens plus 256 special ones, Llama 3's split and
    byte-level decoding, trained on local Python source (cached)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    path = cache / f"llama3-style-{vocab}.json"
    specials = ["<|begin_of_text|>", "<|end_of_text|>"]
    specials += [f"<|reserved_special_token_{i}|>" for i in range(SPECIAL_TOKENS - 2)]
    if not path.exists():
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tokenizer.train_from_iterator(_corpus(), trainer=trainer)
        tokenizer.add_special_tokens(specials)
        cache.mkdir(parents=True, exist_ok=True)
        tokenizer.save(str(path))
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_file=str(path), bos_token=specials[0], eos_token=specials[1]
    )


def _corpus() -> Iterator[str]:
    """Up to CORPUS_BYTES of the Python source of the standard library and the installed
    packages."""
    budget = CORPUS_BYTES
    paths = sysconfig.get_paths()
    for path in sorted(Path(paths["stdlib"]).rglob("*.py")) + sorted(
        Path(paths["purelib"]).rglob("*.py")
    ):
        if budget <= 0:
            return
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        budget -= len(text)
        yield text


def report(name: str, size: int, results: dict[str, Figures | str]) -> None:
    anchor = results[OutlinesCore.name]
    assert isinstance(anchor, Figures), anchor
    print(f"\n{name}: {size} tokens (ratios: engine / outlines-core, same run)")
    print(f"{'engine':<14} {'what':<26} {'seconds':>12} {'x anchor':>9}")
    for engine, figures in results.items():
        if isinstance(figures, str):
            print(f"{engine:<14} {figures}")
            continue
        rows = [("vocabulary setup", figures.setup_s, anchor.setup_s)]
        rows += [(f"compile {g}", s, anchor.compile_s[g]) for g, s in figures.compile_s.items()]
        rows += [(f"mask/token {g}", s, anchor.mask_s[g]) for g, s in figures.mask_s.items()]
        for what, seconds, base in rows:
            print(f"{engine:<14} {what:<26} {seconds:>12.6f} {seconds / base:>9.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--vocab", type=int, default=128_000, help="merged tokens of the BPE")
    parser.add_argument("--cache", type=Path, help="keep the built tokenizers here")
    args = parser.parse_args()

    import torch

    from tgi_server.model.tiny import ensure_tiny_model

    torch.set_num_threads(1)
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory(prefix="tgis-grammars-") as scratch:
        cache = args.cache or Path(scratch)
        started = time.perf_counter()
        large = llama3_style_tokenizer(args.vocab, cache)
        print(f"128k-style tokenizer ready in {time.perf_counter() - started:.1f} s")
        tokenizers = {
            "tiny model": AutoTokenizer.from_pretrained(ensure_tiny_model(cache)),
            "Llama-3-style BPE": large,
        }
        for name, tokenizer in tokenizers.items():
            results = {}
            for engine_type in ENGINES:
                engine_name = getattr(engine_type, "name", str(engine_type))
                results[engine_name] = measure(engine_type, tokenizer, args.repeats)
            report(name, len(tokenizer), results)


# The anchor's vocabulary, as the backend built it for outlines-core before llguidance.


def _token_bytes(tokenizer: Any, exclude: Iterable[int]) -> dict[bytes, list[int]]:
    """Each token's bytes (byte-level BPE or SentencePiece spelling undone), ids grouped."""
    skip = set(exclude)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    byte_level = backend is not None and "ByteLevel" in str(backend.decoder)
    table: dict[bytes, list[int]] = {}
    for token, token_id in tokenizer.get_vocab().items():
        if token_id in skip:
            continue
        data = _byte_level_bytes(token) if byte_level else _sentencepiece_bytes(token)
        if data:
            table.setdefault(data, []).append(int(token_id))
    return table


def _byte_level_bytes(token: str) -> bytes:
    decoder = _unicode_to_byte()
    try:
        return bytes(decoder[char] for char in token)
    except KeyError:
        return token.encode("utf-8")


def _sentencepiece_bytes(token: str) -> bytes:
    if len(token) == 6 and token.startswith("<0x") and token.endswith(">"):
        return bytes([int(token[3:5], 16)])
    return token.replace("\u2581", " ").encode("utf-8")


@lru_cache(maxsize=1)
def _unicode_to_byte() -> dict[str, int]:
    """The inverse of GPT-2's byte-to-printable-character table used by byte-level BPE."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    codes = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return {chr(code): byte for byte, code in zip(printable, codes, strict=True)}


if __name__ == "__main__":
    main()
