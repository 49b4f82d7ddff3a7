"""Checked numeric flags: the bounds, infinity and NaN, and messages that state the rule."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pytest

from common.flags import number, whole_number


@pytest.mark.parametrize(
    ("check", "good", "bad", "message"),
    [
        (number(above=0), ["1e-9", "5"], ["0", "-1", "inf", "nan"], "a number above 0"),
        (number(at_least=0), ["0", "2.5"], ["-0.1", "inf"], "a number >= 0"),
        (number(at_least=0, below=1), ["0", "0.99"], ["1", "-1"], "a number >= 0 and below 1"),
        (
            number(above=0, at_most=100_000),
            ["100000"],
            ["0", "100001"],
            "a number above 0 and at most 100000",
        ),
        (number(above=1), ["1.5"], ["1"], "a number above 1"),
        (
            number(above=0, infinite=True, note="(inf = even)"),
            ["inf"],
            ["0", "nan"],
            "a number above 0 (inf = even)",
        ),
        (
            whole_number(at_least=1, at_most=8),
            ["1", "8"],
            ["0", "9"],
            "a whole number between 1 and 8",
        ),
        (whole_number(at_least=1), ["1", "10000000"], ["0"], "a whole number >= 1"),
    ],
    ids=["above", "at least", "half-open", "above and at most", "above 1", "inf", "whole", "open"],
)
def test_values_inside_pass_and_values_outside_name_the_rule(
    check: Callable[[str], float], good: list[str], bad: list[str], message: str
) -> None:
    for text in good:
        assert check(text) == float(text)
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError) as error:
            check(text)
        assert str(error.value) == f"must be {message}, got {text}"


def test_text_that_is_no_number_says_so() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="not a number: 'fast'"):
        number(above=0)("fast")
    with pytest.raises(argparse.ArgumentTypeError, match=r"not a whole number: '1\.5'"):
        whole_number(at_least=1)("1.5")


def test_argparse_exits_2_with_the_flag_and_the_rule(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="p")
    parser.add_argument("--rate", type=number(above=0))
    assert parser.parse_args(["--rate", "2"]).rate == 2.0
    with pytest.raises(SystemExit) as exited:
        parser.parse_args(["--rate", "-1"])
    assert exited.value.code == 2
    assert "argument --rate: must be a number above 0, got -1" in capsys.readouterr().err
