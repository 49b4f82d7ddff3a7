"""Length specs, synthetic prompts and dataset files."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from client.bench.errors import BenchInputError
from client.bench.workload import MAX_LENGTH, LengthDist, Workload, load_dataset, parse_length


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("128", LengthDist("fixed", 128)),
        ("uniform:64:256", LengthDist("uniform", 64, 256)),
        ("normal:100:10", LengthDist("normal", 100, 10)),
        ("lognormal:100:0.5", LengthDist("lognormal", 100, 0.5)),
    ],
)
def test_length_specs_parse(text: str, expected: LengthDist) -> None:
    assert parse_length(text, "--output-len") == expected


@pytest.mark.parametrize(
    "text", ["0", "-3", "1.5", "abc", "uniform:10", "uniform:9:3", "normal:5:-1", "zipf:1:2", "nan"]
)
def test_bad_length_specs_name_the_flag_and_the_forms(text: str) -> None:
    with pytest.raises(BenchInputError, match=r"--prompt-len .* uniform:MIN:MAX"):
        parse_length(text, "--prompt-len")


@given(
    kind=st.sampled_from(["uniform", "normal", "lognormal"]),
    a=st.integers(1, 5000),
    b=st.floats(0, 3),
    seed=st.integers(0, 2**32),
)
def test_every_draw_is_a_length_within_bounds(kind: str, a: int, b: float, seed: int) -> None:
    second = a + b * 100 if kind == "uniform" else b
    dist = parse_length(f"{kind}:{a}:{second}", "x")
    value = dist.sample(random.Random(seed))
    assert 1 <= value <= MAX_LENGTH
    if kind == "uniform":
        assert a <= value <= round(second)


def test_synthetic_prompts_have_the_drawn_number_of_words() -> None:
    workload = Workload(LengthDist("fixed", 17), LengthDist("fixed", 9))
    spec = workload.sample(random.Random(1))
    assert (len(spec.prompt.split()), spec.prompt_len, spec.max_new_tokens) == (17, 17, 9)


def test_a_jsonl_dataset_keeps_its_lengths_and_fills_missing_ones(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "a b c", "max_new_tokens": 5}\n\n{"prompt": "x"}\n')
    specs = load_dataset(path, LengthDist("fixed", 7), random.Random(0))
    assert [(s.prompt, s.prompt_len, s.max_new_tokens) for s in specs] == [
        ("a b c", 3, 5),
        ("x", 1, 7),
    ]


def test_a_text_dataset_is_one_prompt_per_line(tmp_path: Path) -> None:
    path = tmp_path / "d.txt"
    path.write_text("hello there\nsecond\n")
    specs = load_dataset(path, LengthDist("fixed", 4), random.Random(0))
    assert [s.prompt for s in specs] == ["hello there", "second"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json\n", "d.jsonl:1 is not JSON"),
        ('{"text": "x"}\n', 'needs a non-empty string "prompt"'),
        ('{"prompt": "x", "max_new_tokens": 0}\n', "must be a whole number"),
        ("\n\n", "has no prompts"),
    ],
)
def test_bad_dataset_files_say_where(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(content)
    with pytest.raises(BenchInputError, match=message):
        load_dataset(path, LengthDist("fixed", 4), random.Random(0))


def test_a_missing_dataset_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(BenchInputError, match="cannot read"):
        load_dataset(tmp_path / "nope.jsonl", LengthDist("fixed", 4), random.Random(0))
