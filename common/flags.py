"""Checked numeric flags: argparse `type=` callables that accept a number only within its range.

`number(above=0)` is "a number above 0"; the bounds combine, so `number(at_least=0, below=1)`
is a share in [0, 1). A bad value ends argparse with exit code 2 and a message that states the
rule and repeats the value: `argument --rate: must be a number above 0, got -1`.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["number", "whole_number"]


def number(
    *,
    above: float | None = None,
    at_least: float | None = None,
    below: float | None = None,
    at_most: float | None = None,
    infinite: bool = False,
    note: str = "",
) -> Callable[[str], float]:
    """A float flag within the given bounds. Infinity passes only with `infinite` (and the
    bounds); NaN never does. `note` follows the rule in the message, e.g. what a value means."""
    bounds = _Bounds(above, at_least, below, at_most)

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        finite = math.isfinite(value) or (infinite and not math.isnan(value))
        if not (finite and bounds.contain(value)):
            rule = " ".join(filter(None, ["a number", bounds.describe(), note]))
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text}")
        return value

    return parse


def whole_number(
    *, at_least: int | None = None, at_most: int | None = None
) -> Callable[[str], int]:
    """An int flag within [at_least, at_most] (either bound may be left open)."""
    bounds = _Bounds(at_least=at_least, at_most=at_most)

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if not bounds.contain(value):
            rule = " ".join(filter(None, ["a whole number", bounds.describe()]))
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text}")
        return value

    return parse


@dataclass(frozen=True)
class _Bounds:
    above: float | None = None
    at_least: float | None = None
    below: float | None = None
    at_most: float | None = None

    def contain(self, value: float) -> bool:
        return (
            (self.above is None or value > self.above)
            and (self.at_least is None or value >= self.at_least)
            and (self.below is None or value < self.below)
            and (self.at_most is None or value <= self.at_most)
        )

    def describe(self) -> str:
        """The bounds in words: "above 0 and at most 100000", "between 1 and 8", ">= 0", or ""
        for none."""
        closed = self.above is None and self.below is None
        if closed and self.at_least is not None and self.at_most is not None:
            return f"between {self.at_least:g} and {self.at_most:g}"
        words = [
            f"{word} {bound:g}"
            for word, bound in (
                ("above", self.above),
                (">=", self.at_least),
                ("below", self.below),
                ("at most", self.at_most),
            )
            if bound is not None
        ]
        return " and ".join(words)
