"""A dataclass built from the same-named attributes of another object.

`from_attributes(Limits, settings)` is `Limits(max_input_tokens=settings.max_input_tokens, ...)`
over every field of `Limits`: the rule for a config whose fields are named after the settings
(or the request, or the flags) it is read from, written once instead of field by field. A
`prefix` reads each field from the attribute of that prefix and the field's name (the router's
`gateway_max_attempts` for the gateway config's `max_attempts`). Fields that are named
otherwise, or that come from elsewhere, are `given`; every other field of the dataclass must be
an attribute of the source (AttributeError names the one that is not).
"""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["from_attributes"]

D = TypeVar("D", bound="DataclassInstance")


def from_attributes(cls: type[D], source: object, *, prefix: str = "", **given: object) -> D:
    """An instance of the dataclass `cls`: each field the attribute of `source` named `prefix`
    and the field's name, except those in `given`, which are taken as they are."""
    values = {
        field.name: getattr(source, prefix + field.name)
        for field in fields(cls)
        if field.init and field.name not in given
    }
    return cls(**values, **given)
