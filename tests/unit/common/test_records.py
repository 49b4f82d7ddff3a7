"""`from_attributes`: every field from the same-named attribute, `given` ones as they are."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from common.records import from_attributes


@dataclass(frozen=True)
class Window:
    start: int
    length: int = 10
    label: str = "w"
    derived: int = field(init=False, default=0)


def test_every_field_comes_from_the_same_named_attribute() -> None:
    source = SimpleNamespace(start=3, length=7, label="x", unrelated="ignored")

    assert from_attributes(Window, source) == Window(start=3, length=7, label="x")


def test_given_fields_win_and_need_no_attribute() -> None:
    source = SimpleNamespace(start=3, length=7)

    assert from_attributes(Window, source, label="given") == Window(3, 7, "given")


def test_a_missing_attribute_is_an_error_not_a_default() -> None:
    with pytest.raises(AttributeError, match="length"):
        from_attributes(Window, SimpleNamespace(start=3, label="x"))


def test_a_prefix_names_the_attributes_each_field_is_read_from() -> None:
    source = SimpleNamespace(win_start=3, win_length=7, win_label="x", start=99)

    assert from_attributes(Window, source, prefix="win_") == Window(start=3, length=7, label="x")
